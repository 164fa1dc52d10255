"""Shared fixtures: a migrated store on a real SQLite file, and the serial/simulator fixtures."""

import subprocess
import sys

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


@pytest.fixture
def kammthaar():
    """Start `kammthaar ARGS` (debug logs on stderr); whatever is still running at teardown is killed."""
    started: list[subprocess.Popen] = []

    def start(*args, env) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "kammthaar.cli", "--log-level", "debug", *args],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
