"""The replicator killed with SIGKILL at random moments while draining a backlog: the cloud ends equal to the store."""

from __future__ import annotations

import random
import signal
import sqlite3
import time

from edge_store.outbox import Outbox
from edge_store.registers import STATS
from tests.fixtures_influx import SITE, assert_cloud_equals_store, cli_env, reader_of
from tests.samples import STATS_VALUES, T0, add_live
from tests.support import KAMMTHAAR, kammthaar

KILLS = 50


def live_watermark(db) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT position FROM replication_watermarks WHERE stream = 'live_samples'").fetchone()
        return row[0] if row else 0
    finally:
        conn.close()


def test_replicator_killed_50_times_while_draining_the_cloud_equals_the_store(influxd, influx_db, store, db_path,
                                                                              processes):
    env = cli_env(db_path, cloud_url=influxd.url, cloud_api="v1", cloud_database=influx_db,
                  cloud_batch_size="35", cloud_interval_s="0.05")  # 5 live rows a request: many windows
    rng = random.Random(20261125)
    add_live(store, 300)
    progressed = 0
    for k in range(KILLS):
        # The collector goes on meanwhile: the backlog never runs dry.
        add_live(store, 150, start=300 + 150 * k)
        store.insert_sample(STATS, T0 + k * 60_000 + 7, True, "epever", STATS_VALUES)
        before = live_watermark(db_path)
        proc = processes.start([*KAMMTHAAR, "replicate"], "replicate", env=env)
        try:
            proc.wait_for(lambda: live_watermark(db_path) != before, 30, "the replicator sent nothing", poll_s=0.002)
            time.sleep(rng.uniform(0.0, 0.08))
        finally:
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        progressed += live_watermark(db_path) > before

    assert progressed == KILLS
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert Outbox(db_path, readonly=True).summary()["backlog_rows"] > 0  # killed while draining, every time

    done = kammthaar("replicate", "--once", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = Outbox(db_path, readonly=True).summary()
    assert summary["backlog_rows"] == 0 and summary["dead_letters"] == 0
    counts = assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)
    assert counts["batteryStatus"] == store.count("live") == 300 + 150 * KILLS
    assert counts["energyStatistics"] == KILLS
