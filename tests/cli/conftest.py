"""The CLI tests drive a live server like the end-to-end tests."""

from tests.e2e.conftest import clean_env, server  # noqa: F401 - fixtures
