"""Store.write_round (issue 12): a poll round, or a commit window of rounds, in one transaction: the same
rows, rollups and counters as one transaction per sample, and far fewer pages written."""

import sqlite3
import struct
from pathlib import Path

import pytest

from edge_store import migrate
from edge_store.errors import StoreError
from edge_store.registers import LIVE, STATS
from edge_store.rollups import RollupSettings
from edge_store.store import Store
from tests.rollup_rows import daily, minutes
from tests.samples import STATS_VALUES, T0, live

ZONE = "Europe/Paris"
STEP_MS = 5_000  # [modbus] interval_s's default
WINDOW = 7  # the samples a 30 s window holds at 5 s polls (Collector.commit_due)


def row(i: int, device: str = "roof", **extra) -> dict:
    return {"ts_ms": T0 + i * STEP_MS, "ntp_synced": True, "device": device, **live(i), **extra}


def stats(i: int, device: str = "roof") -> dict:
    return {"ts_ms": T0 + i * STEP_MS, "ntp_synced": True, "device": device, **STATS_VALUES}


def rounds(n: int) -> list[list[tuple[str, dict]]]:
    """`n` poll rounds of two devices on one bus; every 12th round also reads the device statistics."""
    out = []
    for i in range(n):
        batch = [(LIVE, row(i, "roof")), (LIVE, row(i, "side", battery_current=-0.5))]
        if i % 12 == 0:
            batch += [(STATS, stats(i, "roof")), (STATS, stats(i, "side"))]
        out.append(batch)
    return out


def new_store(tmp_path: Path, name: str) -> Store:
    path = tmp_path / f"{name}.db"
    migrate.upgrade(path)
    return Store(path, rollups=RollupSettings(ZONE, 3 * STEP_MS))


def test_a_window_of_rounds_stores_what_one_commit_per_sample_stores(tmp_path):
    """Rows, ids, daily rows and minute buckets: the same, whether each sample is its own transaction or
    seven rounds of two devices are one."""
    data = rounds(40)
    one_by_one, batched = new_store(tmp_path, "single"), new_store(tmp_path, "window")
    single_ids = [one_by_one.insert_sample(g, r["ts_ms"], True, r["device"],
                                           {k: v for k, v in r.items() if k not in ("ts_ms", "ntp_synced", "device")})
                  for batch in data for g, r in batch]
    window_ids = []
    for i in range(0, len(data), WINDOW):
        window_ids += batched.write_round([s for batch in data[i:i + WINDOW] for s in batch])
    assert window_ids == single_ids
    for group in (LIVE, STATS):
        assert batched.rows(group) == one_by_one.rows(group)
    assert daily(batched.path) == daily(one_by_one.path)
    assert minutes(batched.path) == minutes(one_by_one.path)
    one_by_one.close()
    batched.close()


def test_errors_of_a_round_are_logged_and_counted_in_its_transaction(store):
    ids = store.write_round([(LIVE, row(0))], [("timeout", "live", "no answer from unit 2", "side", T0),
                                              ("timeout", "live", "no answer from unit 2", "side", T0 + 5000),
                                              ("crc", "stats", "bad CRC", "roof", T0 + 5000)])
    assert len(ids) == 1 and store.count(LIVE) == 1
    assert [(e["device"], e["kind"], e["ts_ms"]) for e in reversed(store.errors())] == [
        ("side", "timeout", T0), ("side", "timeout", T0 + 5000), ("roof", "crc", T0 + 5000)]
    assert {k: v for k, v in store.counters().items() if k.startswith("modbus_errors.")} == {
        "modbus_errors.timeout": 2, "modbus_errors.crc": 1}
    assert store.write_round([], []) == []


def test_a_bad_sample_refuses_the_whole_round(store):
    bad = row(1)
    del bad["battery_voltage"]
    with pytest.raises(StoreError, match="battery_voltage"):
        store.write_round([(LIVE, row(0)), (LIVE, bad)], [("timeout", "live", "x", "roof", T0)])
    assert store.count(LIVE) == 0 and store.errors() == []


def wal_frames(path: Path) -> int:
    """Frames in the WAL file (auto-checkpoint off, so every frame of every commit is there)."""
    data = (Path(str(path) + "-wal")).read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    return (len(data) - 32) // (24 + page_size)


def test_a_window_of_seven_polls_writes_at_most_a_third_of_the_pages(tmp_path):
    """What the card takes per sample is pages: seven polls in one commit write each shared page (the
    tables' last leaves, their indexes, sqlite_sequence, the day row) once instead of seven times."""
    frames = {}
    for name, size in (("single", 1), ("window", WINDOW)):
        store = new_store(tmp_path, name)
        with store.db.writing("warm up") as conn:  # the day row and the first leaves exist already
            conn.execute("PRAGMA wal_autocheckpoint=0")
        store.write_round([(LIVE, row(-1))])
        sqlite3.connect(store.path).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        samples = [(LIVE, row(i)) for i in range(84)]  # 7 minutes at 5 s
        for i in range(0, len(samples), size):
            store.write_round(samples[i:i + size])
        frames[name] = wal_frames(store.path)
        store.close()
    print(frames)
    assert frames["window"] * 3 <= frames["single"], frames


def test_a_round_the_store_cannot_write_for_now_is_kept_and_written_with_the_next(db_path):
    """A busy store (another writer holds the lock past the busy timeout) loses nothing held: the round
    is written with the next commit, in order."""
    import sqlite3

    from edge_store.bus import Reading
    from edge_store.collector import Collector
    from edge_store.modbus_reader import GroupRead
    from edge_store.registers import LIVE
    from edge_store.store import Store
    from tests.samples import live

    store = Store(db_path, busy_timeout_ms=50)
    collector = Collector(store, None, commit_window_s=0.0)
    blocker = sqlite3.connect(db_path)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        collector.hold([Reading("epever", LIVE, 1_000 + i, True, GroupRead(LIVE, live(i))) for i in range(3)])
        assert collector.commit() == []  # database is locked: kept
        blocker.rollback()
        collector.hold([Reading("epever", LIVE, 2_000, True, GroupRead(LIVE, live(9)))])
        assert len(collector.commit()) == 4
        rows = [r[0] for r in blocker.execute("SELECT ts_ms FROM live_samples ORDER BY id")]
        assert rows == [1_000, 1_001, 1_002, 2_000]
    finally:
        blocker.close()
        store.close()
