"""Fixtures for real links: a socat pty pair standing in for the RS485 adapter, the simulator as a process;
and what the collector tests share (its environment, waiting for its rows, checking them)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from edge_store.registers import registers_of
from edge_store.store import Store
from tests.samples import GROUPS, ZONE
from tests.support import SIMULATOR_READY, Process, clean_env, rows_in, simulator_command

SOCAT = shutil.which("socat") or "/usr/bin/socat"


class SerialPair:
    """Two ptys joined by socat: `device` is the simulator's end, `client` the collector's end."""

    def __init__(self, directory: Path):
        self.device = str(directory / "dev-sim")
        self.client = str(directory / "dev-collector")
        self._socat = Process([SOCAT, "-d", "-d", f"pty,raw,echo=0,link={self.device}",
                               f"pty,raw,echo=0,link={self.client}"], directory / "socat.log")

    def plug(self) -> None:
        """Start socat and wait until both links exist."""
        if self._socat.alive():
            raise RuntimeError("the serial pair is already plugged in")
        self._socat.start(ready=lambda: os.path.exists(self.device) and os.path.exists(self.client), timeout_s=5.0)

    def unplug(self) -> None:
        """Stop socat: both ptys disappear, as when the adapter is pulled."""
        self._socat.stop(5)
        for link in (self.device, self.client):
            if os.path.lexists(link):  # socat removes its links on SIGTERM; not on SIGKILL
                os.unlink(link)

    def replug(self) -> None:
        """Start socat again with the same link names (new ptys behind them)."""
        self.plug()


@pytest.fixture
def serial_pair(tmp_path):
    """A fresh socat pty pair for one test; socat is stopped at teardown."""
    pair = SerialPair(tmp_path)
    pair.plug()
    yield pair
    pair.unplug()


@pytest.fixture
def second_serial_pair(tmp_path):
    """Another socat pty pair in the same test: a second bus."""
    directory = tmp_path / "bus2"
    directory.mkdir()
    pair = SerialPair(directory)
    pair.plug()
    yield pair
    pair.unplug()


@pytest.fixture
def start_simulator(processes):
    """Factory: start_simulator(*args, ready=True, timeout_s=15) -> Process of the simulator.

    Waits for the simulator's "listening on" line (it is logged once the port is
    open or the socket bound) and checks the process is alive; its log is
    `proc.log()`. Every simulator started is stopped at teardown.
    """

    def start(*args: str, ready: bool = True, timeout_s: float = 15.0) -> Process:
        return processes.start(simulator_command(*args), "simulator",
                               ready_line=SIMULATOR_READY if ready else None, timeout_s=timeout_s)

    return start


# -- the collector ------------------------------------------------------------------------------

def collector_env(db, port, **overrides) -> dict:
    """`kammthaar collect` polling fast into `db` from `port` (the simulator's zone)."""
    settings = dict(store_path=db, modbus_port=port, modbus_interval_s="0.1", modbus_slow_interval_s="0.5",
                    modbus_timeout_s="0.2", modbus_retries="2", site_timezone=ZONE)
    settings.update(overrides)
    return clean_env(**settings)


def wait_for_rows(db, group_table: str, at_least: int, proc: Process, limit_s: float = 30.0) -> int:
    """Rows of `group_table` once there are `at_least`, while `proc` (the collector) stays alive."""
    try:
        return proc.wait_for(lambda: (n := rows_in(db, group_table)) >= at_least and n, limit_s,
                             f"{group_table}: fewer than {at_least} rows", poll_s=0.1)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {rows_in(db, group_table)} rows") from None


def counters(db) -> dict[str, int]:
    """The store's counters, or none while the collector is still creating the file."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT name, value FROM counters"))
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return {}


def assert_rows_equal_served(store: Store, expected: dict) -> int:
    """Every stored row of every group holds exactly what the frozen simulator serves; how many rows."""
    checked = 0
    for group in GROUPS:
        for row in store.rows(group):
            for reg in registers_of(group):
                assert row[reg.name] == expected[reg.name], (group, row["id"], reg.name)
            checked += 1
    return checked
