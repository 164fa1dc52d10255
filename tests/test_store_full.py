"""A store whose filesystem fills: the real collector and simulator on a small tmpfs the test mounts (the
tests run as root, as CI does), a ballast file filling it, `kammthaar status` and `kammthaar serve`'s
/health reading the collector's state while the store cannot write."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from edge_store import migrate
from edge_store.outbox import STREAMS, Outbox
from edge_store.registers import LIVE
from edge_store.rollups import RollupSettings
from edge_store.store import Store
from edge_store.write_failures import read_state
from tests.fixtures_serial import collector_env, counters, wait_for_rows
from tests.samples import FROZEN, ZONE, add_live
from tests.support import KAMMTHAAR, kammthaar, rows_in

MB = 1_000_000


@pytest.fixture
def card(tmp_path):
    """Factory: card(size_mb) -> the directory of a new tmpfs of that size; unmounted at teardown."""
    mounted: list[Path] = []

    def mount(size_mb: int) -> Path:
        where = tmp_path / f"card{len(mounted)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path, leave_bytes: int = 0) -> int:
    """Write `path` until its filesystem has at most `leave_bytes` free (0: until it refuses); bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb") as fh:
        while True:
            st = os.statvfs(path.parent)
            room = st.f_bavail * st.f_frsize - leave_bytes
            if room <= 0:
                break
            try:
                fh.write(chunk[:min(len(chunk), room)])
                fh.flush()
            except OSError:  # ENOSPC: full
                break
            written += min(len(chunk), room)
    return written


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_a_full_filesystem_costs_a_few_log_lines_and_writing_resumes(card, serial_pair, start_simulator,
                                                                     processes, api_servers, tmp_path):
    root = card(16)
    db = root / "k.db"
    migrate.upgrade(db)
    start_simulator("--port", serial_pair.device, *FROZEN)
    env = collector_env(db, serial_pair.client, modbus_interval_s="0.05", store_min_free_mb="0")
    collector = processes.start([*KAMMTHAAR, "collect"], "collector", env=env)  # the default log level
    wait_for_rows(db, "live_samples", 20, collector)
    assert read_state(str(db))["failing"] is False
    started = time.monotonic()

    fill(root / "ballast")
    state = collector.wait_for(lambda: (s := read_state(str(db))) and s["episode_failures"] >= 40 and s, 120,
                               "the collector met no failed writes", poll_s=0.1)
    collector.assert_alive()
    assert state["failing"] is True and "database or disk is full" in state["last_error"]
    status = kammthaar("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "store writes: !! FAILING since" in status.stdout and "database or disk is full" in status.stdout
    server = api_servers(tmp_path / "api", "full-card", store_path=db, api_sources="local")
    health = server.client().get("/health").json()
    writes = health["store"]["writes"]
    assert writes["failing"] is True and writes["failed_writes"] >= 40 and health["status"] == "degraded"
    stuck = rows_in(db, "live_samples")

    os.unlink(root / "ballast")  # space returns
    collector.wait_for(lambda: rows_in(db, "live_samples") > stuck + 20, 60, "no sample stored after the space "
                       "returned", poll_s=0.1)
    collector.wait_for(lambda: read_state(str(db))["failing"] is False, 30, "still failing", poll_s=0.1)
    elapsed_s = time.monotonic() - started
    failed = read_state(str(db))["failed_writes"]
    assert server.client().get("/health").json()["store"]["writes"]["failing"] is False
    server.stop()
    assert collector.stop() == 0
    assert integrity(db) == "ok"
    assert counters(db)["store.write_failures"] == failed >= 40

    log = collector.log()
    assert "could not store live sample: could not store" not in log  # said once
    errors = [line for line in log.splitlines() if " ERROR " in line]
    # The first failure, then one line a minute at most: not one per failed write.
    assert 1 <= len(errors) <= 1 + math.ceil(elapsed_s / 60), errors
    assert "could not store" in errors[0] and "one line a minute" in errors[0]
    assert 1 <= log.count("the store writes again") <= 1 + math.ceil(elapsed_s / 60)
    # Every failed write is told, in a count: at the end of its episode, a minute later, or at the stop.
    told = [int(n) for n in re.findall(r"(\d+) (?:failed writes|writes failed)", log)]
    assert max(told) >= 30, log[-3000:]
    assert len(log.splitlines()) < 20 + len(errors), log[-3000:]


def test_below_min_free_mb_replicated_samples_go_first_and_the_file_stops_growing(card, serial_pair,
                                                                                  start_simulator, processes):
    root = card(48)
    db = root / "k.db"
    migrate.upgrade(db)
    # Old samples one second apart, with their rollups (as the collector's zone: no rebuild at its start).
    with Store(db, rollups=RollupSettings(ZONE, 0.15)) as store:
        n = 0
        while store.used_bytes() < 10 * MB:
            add_live(store, 5_000, start=n)
            n += 5_000
    sent = n * 2 // 3  # the cloud acknowledged these
    outbox = Outbox(db)
    try:
        outbox.commit(next(s for s in STREAMS if s.name == "live_samples"), sent, points=sent * 7, bytes_sent=1)
    finally:
        outbox.close()
    # 2 MB below a floor of 14 MB: about a quarter of the samples must go, only replicated ones.
    fill(root / "ballast", leave_bytes=12 * MB)
    size_before = os.path.getsize(db)
    start_simulator("--port", serial_pair.device, *FROZEN)
    env = collector_env(db, serial_pair.client, modbus_interval_s="0.05", store_min_free_mb="14",
                        store_retention_days="36500", cloud_url="http://127.0.0.1:9", cloud_api="v1",
                        cloud_database="never-reached")
    collector = processes.start([*KAMMTHAAR, "collect"], "collector", env=env)
    collector.wait_for(lambda: "min_free_mb=14" in collector.log(), 60, "no pruning for the floor", poll_s=0.1)
    before = rows_in(db, "live_samples")
    collector.wait_for(lambda: rows_in(db, "live_samples") >= before + 100, 60, "no new samples", poll_s=0.1)
    assert collector.stop() == 0
    assert integrity(db) == "ok"
    with Store(db, readonly=True) as store:
        ids = [r["id"] for r in store.rows(LIVE)]
    assert 1 not in ids and max(ids) > n  # the oldest went, the collector kept storing
    assert set(range(sent + 1, n + 1)) <= set(ids)  # no unsent sample went: replicated ones were enough
    assert "store.dropped_unsent" not in counters(db)
    assert os.path.getsize(db) <= size_before  # the new samples took the freed pages: the file did not grow
    log = collector.log()
    assert "the filesystem has less than min_free_mb=14 free: pruned the" in log
