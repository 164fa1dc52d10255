"""The commit window (issue 12, `[store] commit_window_s`): polls held in memory and committed together. A
SIGKILL loses at most the polls held since the last commit, never a committed row; a stop commits them."""

from __future__ import annotations

import random
import sqlite3
import time

from edge_store.registers import LIVE
from edge_store.store import Store
from tests.fixtures_serial import assert_rows_equal_served, collector_env
from tests.samples import FROZEN, expected_values

KILLS = 10
INTERVAL_S, WINDOW_S = 0.05, 0.5


def logged(log: str, what: str) -> list[int]:
    """The numbers after `what` in the log's lines that have it (`stored live id=`, `held live ts_ms=`)."""
    return [int(line.split(what)[1].split()[0]) for line in log.splitlines() if what in line]


def test_collector_killed_with_a_window_loses_only_what_it_held(serial_pair, start_simulator, tmp_path,
                                                                 start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN)
    db = tmp_path / "k.db"
    env = collector_env(db, serial_pair.client, modbus_interval_s=str(INTERVAL_S), modbus_slow_interval_s="0.2",
                        store_commit_window_s=str(WINDOW_S))
    rng = random.Random(20261204)
    committed: set[int] = set()
    must_be_stored: set[int] = set()
    lost_in_all = 0
    for _ in range(KILLS):
        proc = start_kammthaar("collect", env=env)
        proc.wait_for(lambda: "stored " in proc.log(), 60, "nothing stored", poll_s=0.005)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.kill()
        log = proc.log()
        committed |= set(logged(log, "stored live id="))
        # What was held before the last commit was in it; what was held after it is what the kill lost:
        # at most one window of polls (they run on a grid and never burst).
        last = log.rfind("stored live id=")
        must_be_stored |= set(logged(log[:last], "held live ts_ms="))
        lost = logged(log[last:], "held live ts_ms=")
        assert len(lost) <= WINDOW_S / INTERVAL_S + 1, lost
        lost_in_all += len(lost)

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store(db, readonly=True) as store:
        rows = store.rows(LIVE)
        assert committed <= {r["id"] for r in rows}
        assert must_be_stored <= {r["ts_ms"] for r in rows}
        assert assert_rows_equal_served(store, expected_values()) >= len(committed)
    # The kills found polls held, or the window held nothing.
    assert lost_in_all > 0


def test_a_stop_commits_what_the_window_holds_for_every_device_on_the_bus(serial_pair, start_simulator, tmp_path,
                                                                          start_kammthaar):
    """Two units on one bus with the default 30 s window: the first round is committed at once (a start
    shows that it reads), the next ones are held; SIGTERM commits them, every device's, before the exit."""
    start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer",
                    "--device", "unit=2,model=epever-tracer")
    config = tmp_path / "devices.toml"
    config.write_text('[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n\n'
                      '[[devices]]\nname = "side"\nmodel = "epever-tracer"\nunit = 2\n')
    db = tmp_path / "k.db"
    proc = start_kammthaar("--config", str(config), "collect", env=collector_env(
        db, serial_pair.client, modbus_interval_s=str(INTERVAL_S), store_commit_window_s="30"))
    proc.wait_for(lambda: "stored live id=" in proc.log(), 20, "the first round was not committed at once")
    proc.wait_for(lambda: len(logged(proc.log(), "held live ts_ms=")) >= 20, 30, "fewer than 20 polls")
    assert proc.stop(30) == 0
    log = proc.log()
    with Store(db, readonly=True) as store:
        rows = store.rows(LIVE)
    for device in ("roof", "side"):
        held = [int(line.split("ts_ms=")[1].split()[0]) for line in log.splitlines()
                if "held live ts_ms=" in line and line.rstrip().endswith(f"device={device}")]
        assert len(held) >= 5, device
        assert sorted(r["ts_ms"] for r in rows if r["device"] == device) == sorted(held), device
    assert len(logged(log, "stored live id=")) == len(rows)
