"""Storage: the ``Store`` interface (``runyard.store.base``) and ``open_store``.

Importing this package is cheap: the SQL implementation (SQLAlchemy, numpy) is imported only
when ``open_store`` is called, so client code may import ``runyard.store`` freely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runyard.store.base import Store

__all__ = ["open_store"]


def open_store(url: str) -> Store:
    """A store for a database URL: ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST/DB``.

    The schema is not created or migrated: check ``store.schema_state()`` and call
    ``store.upgrade()`` (``runyard db upgrade``) as needed.
    """
    from runyard.store.sql import SqlStore

    return SqlStore(url)
