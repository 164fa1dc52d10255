"""Issue 17: costs that do not grow with the days stored.

The query plans that matter are pinned (`EXPLAIN QUERY PLAN` of the statements
the real code runs, caught with the driver's trace callback): the backlog
summary, the replicator's change detection, the monthly read and the prune
search an index, never scan the live table or the minute buckets. And the
figures read that way equal the ones counted: backlog from ids (also after a
prune out of id order), the largest version, the monthly view through 0006.
"""

import sqlite3
from contextlib import contextmanager

import pytest

from api.sources import MONTHLY, LocalSource
from edge_store import migrate
from edge_store.outbox import BY_NAME, STREAMS, Outbox
from edge_store.registers import LIVE, STATS
from edge_store.rollups import sql as rollup_sql
from edge_store.rollups.rebuild import rebuild
from tests.samples import LIVE_VALUES, STATS_VALUES
from tests.rollup_rows import HOUR, PARIS, daily, local_ms, monthly, without_battery_kwh

SAMPLE_TABLES = ("live_samples", "device_statistics", "device_settings", "device_clock")
NEVER_SCANNED = (*SAMPLE_TABLES, "rollup_minute")
DAY = 24 * HOUR


@contextmanager
def traced(db):
    """The statements a Database runs on this thread's connection meanwhile (expanded SQL)."""
    seen: list[str] = []
    with db.reading("trace") as conn:
        conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        with db.reading("trace") as conn:
            conn.set_trace_callback(None)


def plans(db_path, statements) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of each SELECT/DELETE statement: statement -> plan lines."""
    conn = sqlite3.connect(db_path)
    try:
        out = {}
        for sql in statements:
            if sql.split(None, 1)[0].upper() in ("SELECT", "DELETE", "WITH"):
                out[sql] = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        return out
    finally:
        conn.close()


def assert_no_scan(found: dict[str, list[str]], tables=NEVER_SCANNED) -> None:
    assert found
    for sql, lines in found.items():
        for line in lines:
            assert not any(line.startswith(f"SCAN {t}") for t in tables), (sql, lines)


def fill(store, start, days, step_ms=60_000):
    """Live samples every step_ms and a device_statistics row per hour, over `days` days."""
    for t in range(start, start + days * DAY, step_ms):
        store.insert_sample(LIVE, t, True, "epever", LIVE_VALUES)
        if t % HOUR == 0:
            store.insert_sample(STATS, t, True, "epever", STATS_VALUES)


@pytest.fixture
def filled(open_store, db_path):  # noqa: F811
    store = open_store(PARIS)
    fill(store, local_ms(PARIS, 2026, 5, 30), 3)
    return store


def catch_up(outbox):
    for name, (_, head) in outbox.pending().items():
        outbox.commit(BY_NAME[name], head, points=0, bytes_sent=0)


# -- the plans --------------------------------------------------------------------------

def test_backlog_summary_searches_indexes_nothing_sent_and_caught_up(filled, db_path):
    outbox = Outbox(filled.db)
    with traced(filled.db) as seen:
        outbox.summary()
        catch_up(outbox)
        outbox.summary()
    found = plans(db_path, seen)
    assert_no_scan(found, (*NEVER_SCANNED, "rollup_monthly", "d"))
    lines = [line for p in found.values() for line in p]
    assert "SEARCH live_samples USING INTEGER PRIMARY KEY (rowid>?)" in lines  # the first unsent sample
    assert "SEARCH rollup_daily USING INDEX ix_rollup_daily_open" in " | ".join(lines)


def test_change_detection_reads_no_table_whole(filled, db_path):
    outbox = Outbox(filled.db)
    with traced(filled.db) as seen:
        outbox.pending()
    found = plans(db_path, seen)
    # Not even rollup_daily: the largest version is rollup_versions and the open rows' partial index.
    assert_no_scan(found, (*NEVER_SCANNED, "rollup_daily", "rollup_monthly"))
    assert any("ix_rollup_daily_open" in line for p in found.values() for line in p)


def test_monthly_read_and_the_replicators_month_rows_look_months_up_by_index(filled, db_path):
    local = LocalSource(str(db_path), site="s", device="epever")
    with traced(local.db) as seen:
        assert [m["month"] for m in local.periods("s", MONTHLY, "2026-05", "2026-06")] == ["2026-05", "2026-06"]
    outbox = Outbox(filled.db)
    with traced(filled.db) as seen_replicator:
        assert len(outbox.rows_after(BY_NAME["rollup_monthly"], 0, 10)) == 2
    for statements in (seen, seen_replicator):
        found = plans(db_path, [s for s in statements if "rollup_monthly" in s])
        assert_no_scan(found, ("d", "s", "rollup_daily"))
        lines = " | ".join(line for p in found.values() for line in p)
        assert "SEARCH d USING INDEX ix_rollup_daily_month" in lines
        assert "SEARCH s USING INDEX ix_rollup_daily_month" in lines  # the device's own monthly figures


@pytest.mark.parametrize("keep_unsent", [False, True])
def test_prune_statements_search_the_time_indexes(filled, db_path, keep_unsent):
    filled.record_error("timeout", "input:0x3100+18", "no answer", device="epever",
                        ts_ms=local_ms(PARIS, 2026, 5, 30, 1))
    if keep_unsent:
        catch_up(Outbox(filled.db))
    with traced(filled.db) as seen:
        assert filled.prune(local_ms(PARIS, 2026, 5, 31), keep_unsent=keep_unsent) > 0
    found = plans(db_path, seen)
    assert_no_scan(found)
    lines = " | ".join(line for p in found.values() for line in p)
    for index in ("ix_live_samples_ts", "ix_device_statistics_ts", "ix_collector_errors_ts", "ix_rollup_minute_minute"):
        assert f"USING COVERING INDEX {index} (" in lines or f"USING INDEX {index} (" in lines, (index, lines)


# -- the figures --------------------------------------------------------------------------

def counted(db_path, table, after):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE id > ?", (after,)).fetchone()[0]
    finally:
        conn.close()


def test_backlog_from_ids_equals_the_count_after_prunes_out_of_id_order(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for i in range(40):
        store.insert_sample(LIVE, t + i * 5_000, True, "epever", LIVE_VALUES)
    # The clock stepped back two days for a while, then forward again: ids 41-50 are older samples.
    for i in range(10):
        store.insert_sample(LIVE, t - 2 * DAY + i * 5_000, False, "epever", LIVE_VALUES)
    for i in range(40, 60):
        store.insert_sample(LIVE, t + i * 5_000, True, "epever", LIVE_VALUES)
    assert store.prune(t - DAY) >= 10  # ids 41-50 go, out of id order (and their minute bucket)
    outbox = Outbox(store.db)
    assert store.rows_kept(LIVE) == store.count(LIVE) == 60
    for mark in (0, 20, 40, 45, 50, 55, 70):
        outbox.commit(BY_NAME["live_samples"], mark, points=0, bytes_sent=0)
        with store.db.writing("test") as conn:  # the watermark only moves forward: set it for the check
            conn.execute("UPDATE replication_watermarks SET position = ? WHERE stream = 'live_samples'", (mark,))
        summary = outbox.summary(now=t + DAY)
        assert summary["backlog_by_stream"]["live_samples"] == counted(db_path, "live_samples", mark), mark
    # The oldest rows go: gaps below the oldest row are forgotten, the figure stays right.
    store.prune(t + 45 * 5_000)
    assert store.rows_kept(LIVE) == store.count(LIVE) == 15
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM sample_id_gaps").fetchone()[0] == 0


def test_size_cap_deletes_in_chunks_and_keeps_the_backlog_figure_exact(open_store, db_path, monkeypatch):
    import edge_store.store as store_mod

    monkeypatch.setattr(store_mod, "PRUNE_CHUNK_ROWS", 7)
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for i in range(30):
        store.insert_sample(LIVE, t + i * 5_000, True, "epever", LIVE_VALUES)
    for i in range(30):  # stored later with older times: the size cap deletes these first
        store.insert_sample(LIVE, t - DAY + i * 5_000, True, "epever", LIVE_VALUES)
    assert store._delete_oldest(0.5, sent_only=False, count_unsent=True) == (31, 31)
    assert store.rows_kept(LIVE) == store.count(LIVE) == 29
    assert Outbox(store.db).summary()["backlog_by_stream"]["live_samples"] == 29


def test_prune_steps_hold_one_chunk_each_and_end_as_one_prune_would(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for i in range(95):
        store.insert_sample(LIVE, t + i * 60_000, True, "epever", LIVE_VALUES)
    steps = []
    done = False
    while not done:
        n, done = store.prune_step(t + 90 * 60_000, chunk_rows=10, budget_s=0)
        steps.append(n)
    assert max(steps) <= 10 + 10  # the chunk that used the budget up, and at most one of the next table
    assert store.count(LIVE) == 5
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT min(minute_ms) FROM rollup_minute").fetchone()[0] >= t + 89 * 60_000
    conn.close()


def test_largest_version_without_reading_the_table_equals_the_tables(open_store, db_path):
    store = open_store(PARIS)
    conn = sqlite3.connect(db_path)

    def both():
        return (conn.execute(rollup_sql.MAX_VERSION).fetchone()[0],
                conn.execute("SELECT coalesce(max(version), 0) FROM rollup_daily").fetchone()[0])

    assert both() == (0, 0)
    t = local_ms(PARIS, 2026, 6, 10, 23, 59)
    for i in range(30):  # across midnight: the open row moves to the next day
        store.insert_sample(LIVE, t + i * 5_000, True, "epever", LIVE_VALUES)
        a, b = both()
        assert a == b
    store.insert_sample(LIVE, t - DAY, True, "epever", LIVE_VALUES)  # late: a closed row changes
    store.insert_sample(STATS, t - DAY, True, "epever", STATS_VALUES)
    assert both()[0] == both()[1]
    rebuild(store, store.rollups.settings)
    assert both()[0] == both()[1]
    outbox = Outbox(store.db)
    assert outbox.pending()["rollup_daily"][1] == outbox.pending()["rollup_monthly"][1] == both()[1]
    # The changed rows are the ones above a version, found through the open rows and the gate.
    everything = {(r["device"], r["day"]) for r in outbox.rows_after(BY_NAME["rollup_daily"], 0, 100)}
    assert everything == set(daily(db_path))
    top = both()[1]
    assert outbox.rows_after(BY_NAME["rollup_daily"], top, 100) == []
    store.insert_sample(LIVE, t + 31 * 5_000, True, "epever", LIVE_VALUES)
    assert [r["version"] for r in outbox.rows_after(BY_NAME["rollup_daily"], top, 100)] == [top + 1]
    backlog = outbox.summary()["backlog_by_stream"]  # nothing sent: every row
    assert (backlog["rollup_daily"], backlog["rollup_monthly"]) == (len(daily(db_path)), len(monthly(db_path))) == (3, 1)
    for name in ("rollup_daily", "rollup_monthly"):
        outbox.commit(BY_NAME[name], top, points=0, bytes_sent=0)
    backlog = outbox.summary()["backlog_by_stream"]  # sent up to top: the one day changed since, its month
    assert (backlog["rollup_daily"], backlog["rollup_monthly"]) == (1, 1)
    conn.close()


def test_migration_0006_keeps_the_monthly_rows_and_goes_down_and_up_with_data(open_store, db_path):
    store = open_store(PARIS)
    fill(store, local_ms(PARIS, 2026, 5, 30), 3, step_ms=300_000)
    store.insert_sample(LIVE, local_ms(PARIS, 2026, 5, 29), True, "epever", LIVE_VALUES)  # late: id out of order
    store.insert_sample(LIVE, local_ms(PARIS, 2026, 6, 2), True, "epever", LIVE_VALUES)
    store.prune(local_ms(PARIS, 2026, 5, 30))
    store.close()
    # Migration 0015's columns go below it and come back as estimates: compared without them.
    before, days = without_battery_kwh(monthly(db_path)), without_battery_kwh(daily(db_path))
    assert set(before) == {("epever", "2026-05"), ("epever", "2026-06")}
    assert before[("epever", "2026-05")]["device_generated_kwh"] is not None
    gaps = sqlite3.connect(db_path).execute("SELECT * FROM sample_id_gaps").fetchall()
    migrate.downgrade(db_path, "0005")
    assert monthly(db_path) == before and daily(db_path) == days
    migrate.upgrade(db_path)
    assert without_battery_kwh(monthly(db_path)) == before and without_battery_kwh(daily(db_path)) == days
    conn = sqlite3.connect(db_path)
    # Rebuilt by the upgrade from the holes in the ids, and the largest version from the rows.
    assert conn.execute("SELECT * FROM sample_id_gaps").fetchall() == gaps != []
    assert conn.execute(rollup_sql.MAX_VERSION).fetchone()[0] == \
        conn.execute("SELECT max(version) FROM rollup_daily").fetchone()[0]
    conn.close()
    assert [s.name for s in STREAMS][-1] == "rollup_monthly"
