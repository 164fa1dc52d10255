"""The collector killed with SIGKILL at random moments while writing: nothing committed is lost."""

from __future__ import annotations

import random
import sqlite3
import time

from edge_store.registers import LIVE
from edge_store.store import Store
from tests.fixtures_serial import assert_rows_equal_served, collector_env
from tests.samples import FROZEN, GROUPS, expected_values

KILLS = 50


def test_collector_killed_50_times_loses_no_committed_row(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN)
    db = tmp_path / "k.db"
    env = collector_env(db, serial_pair.client, modbus_interval_s="0.05", modbus_slow_interval_s="0.1")
    rng = random.Random(20261124)
    committed: set[int] = set()
    for _ in range(KILLS):
        proc = start_kammthaar("collect", env=env)
        proc.wait_for(lambda: "stored " in proc.log(), 60, "nothing stored", poll_s=0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        # Each id is logged once its transaction committed: every logged one must be there.
        committed |= {int(l.split("id=")[1].split()[0]) for l in proc.log().splitlines() if "stored live id=" in l}

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store(db, readonly=True) as store:
        ids = {r["id"] for r in store.rows(LIVE)}
        assert committed <= ids, sorted(committed - ids)[:10]
        # No partial row: every stored row of every group is exactly what was served.
        assert assert_rows_equal_served(store, expected_values()) >= len(committed)
        assert len(ids) >= KILLS
        assert all(store.count(g) > 0 for g in GROUPS)
