"""Shared fixtures: a migrated store on a real SQLite file, and the serial/simulator fixtures."""

import pytest

from edge_store import migrate
from edge_store.store import Store

pytest_plugins = ["tests.fixtures_serial", "tests.fixtures_influx", "tests.fixtures_api"]


@pytest.fixture
def db_path(tmp_path):
    """A database file migrated to head: every test run exercises the migrations."""
    path = tmp_path / "kammthaar.db"
    migrate.upgrade(path)
    return path


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    yield s
    s.close()
