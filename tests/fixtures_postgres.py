"""A real PostgreSQL for the state tests: Debian's `postgresql`, a throwaway cluster on a free loopback port.

`Postgres` runs `initdb` (trust authentication, loopback only) into a fresh directory and
`postgres` itself as a tests/support.py `Process`, so it is stopped at teardown like every
server of the suite. PostgreSQL refuses to run as root: as root the cluster belongs to the
`postgres` system user (the package creates it) and both run through `runuser`.
`database()` creates an empty database and gives its SQLAlchemy URL (psycopg 3).
The class is plain so bench/ could start the same server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support import Process, free_port, port_open

# Debian's server binaries (not on PATH), the newest version installed (the Makefile's system-deps).
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/nonexistent"))
SYSTEM_USER = "postgres"


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *argv] if os.geteuid() == 0 else argv


class Postgres:
    """A PostgreSQL cluster of its own in a temp directory, on a free loopback port."""

    def __init__(self, log_dir: Path):
        # Not under pytest's tmp dir: as root that is 0700 and the postgres user could not enter it;
        # the processes also run from here (a checkout under /root is not theirs to enter).
        self.dir = Path(tempfile.mkdtemp(prefix="kammthaar-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log_dir = Path(log_dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, SYSTEM_USER)
        self.process: Process | None = None

    def start(self, timeout_s: float = 60) -> "Postgres":
        import subprocess

        done = subprocess.run(_as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                                         "postgres", "--no-sync", "-E", "UTF8"]),
                              capture_output=True, text=True, timeout=120, cwd=self.dir)
        assert done.returncode == 0, done.stderr[-2000:]
        self.process = Process(_as_owner([str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                                          "-c", "listen_addresses=127.0.0.1",
                                          "-c", f"unix_socket_directories={self.dir}",
                                          "-c", "fsync=off", "-c", "max_connections=60"]),
                               self.log_dir / "postgres.log", cwd=self.dir)
        self.process.start(ready=lambda: port_open(self.port) and self._accepts(), timeout_s=timeout_s)
        return self

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database: its SQLAlchemy URL."""
        import psycopg

        name = "k" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """One PostgreSQL for the session; each test takes its own database (`postgres.database()`)."""
    server = Postgres(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()
