"""Alembic migrations of the Runyard database (run programmatically by ``runyard.store.sql.migrate``).

Migrations are frozen history: they never import ``runyard.store.sql.schema``, whose tables
must always equal what the newest migration builds (``tests/store/test_schema.py`` checks).
New migration: ``alembic -c src/runyard/store/migrations/alembic.ini revision -m "why"``
with ``RUNYARD_DATABASE_URL`` pointing at a database at head, then edit the file.
"""
