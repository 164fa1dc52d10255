"""Shared fixtures: a migrated store on a real SQLite file, background processes, and the fixture modules."""

import pytest

from edge_store import migrate
from edge_store.rollups import RollupSettings
from edge_store.store import Store
from tests.support import KAMMTHAAR, Processes

pytest_plugins = ["tests.fixtures_serial", "tests.fixtures_influx", "tests.fixtures_api", "tests.fixtures_app",
                  "tests.fixtures_postgres", "tests.fixtures_fleet", "tests.fixtures_hostile",
                  "tests.fixtures_reconcile",
                  "tests.fixtures_mqtt", "tests.fixtures_notify"]


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


@pytest.fixture
def processes(tmp_path):
    """Background processes of one test (tests/support.py `Processes`): logs in tmp_path, stopped at teardown."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


@pytest.fixture
def start_kammthaar(processes):
    """Factory: start_kammthaar(*args, env=...) -> Process of `kammthaar --log-level debug ARGS` (log: `.log()`)."""

    def start(*args: str, env: dict, name: str | None = None, **wait):
        return processes.start([*KAMMTHAAR, "--log-level", "debug", *args], name or args[0], env=env, **wait)

    return start


@pytest.fixture
def open_store(db_path):
    """Stores with rollups in a given zone and gap on the test's database file, closed at teardown."""
    opened = []

    def _open(tz="Europe/Paris", max_gap_s=15.0):
        s = Store(db_path, rollups=RollupSettings(tz, max_gap_s))
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()

