"""The replicator's bounds: retention and the size cap by the collector's prune path, old backlogs skipped."""

from __future__ import annotations

import sqlite3

from edge_store.collector import Collector
from edge_store.outbox import Outbox
from edge_store.registers import LIVE
from edge_store.store import Store
from replicator.points import LIVE_STREAM
from tests.fixtures_influx import SITE, reader_of, replicator_on, v1
from tests.samples import T0, add_live, live

# -- bounds: retention and the size cap, by the collector's prune path --------------------------


def collector_on(store: Store, **kw) -> Collector:
    return Collector(store, reader=None, device="epever", interval_s=1.0, slow_interval_s=60.0,
                     clock_ms=lambda: T0 + 100 * 86_400_000, **kw)


def test_retention_prunes_only_what_the_cloud_acknowledged(influxd, influx_db, store, db_path):
    add_live(store, 20)
    rep = replicator_on(db_path, v1(influxd, influx_db), batch_size=70)  # 10 rows per batch
    rep.sync_once()
    rep.close()
    sent = rep.outbox.watermarks()[LIVE_STREAM]
    assert store.count(LIVE) == 20 and sent == 10
    # 100 days later, retention 90 days: every row is old, the 10 unsent stay.
    assert collector_on(store, retention_days=90, replicating=True).prune_once() == 10
    assert [r["id"] for r in store.rows(LIVE)] == list(range(11, 21))
    # Without a cloud, retention prunes as it always did.
    assert collector_on(store, retention_days=90, replicating=False).prune_once() == 10
    assert store.count(LIVE) == 0


def test_size_cap_drops_sent_rows_first_then_the_oldest_unsent_and_counts_them(db_path, store):
    add_live(store, 6000)
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO replication_watermarks VALUES ('live_samples', 1000, 0)")  # 1000 rows sent
    conn.commit()
    used = store.used_bytes()
    # A cap the unsent rows alone do not pass: only sent rows go, nothing is counted as dropped.
    result = store.enforce_size(int(used * 0.97), keep_unsent=True)
    assert result["dropped_unsent"] == 0 and 0 < result["pruned"] <= 1000
    assert store.used_bytes() <= used * 0.97
    assert min(r["id"] for r in store.rows(LIVE)) > 1 and store.count(LIVE) >= 5000
    # A cap the unsent rows alone pass: every sent row goes first, then the oldest unsent ones.
    result = store.enforce_size(int(used * 0.5), keep_unsent=True)
    ids = [r["id"] for r in store.rows(LIVE)]
    assert min(ids) > 1000 and ids == list(range(min(ids), 6001))  # the newest are kept
    assert result["dropped_unsent"] == min(ids) - 1001 > 0
    assert store.counters()["store.dropped_unsent"] == result["dropped_unsent"]
    assert store.used_bytes() <= used * 0.5
    assert Outbox(db_path, readonly=True).summary()["dropped_rows"] == result["dropped_unsent"]


def test_collector_prune_keeps_the_database_under_max_size_mb(db_path, store):
    n = 0
    while store.used_bytes() <= 1_300_000:
        add_live(store, 1000, start=n)
        n += 1000
    collector = collector_on(store, retention_days=90, max_size_mb=1, replicating=True)
    pruned = collector.prune_once()  # nothing is old enough for retention; the cap decides
    assert store.used_bytes() <= 1_000_000
    assert pruned > 0 and store.counters()["store.dropped_unsent"] == pruned  # nothing was ever sent
    ids = [r["id"] for r in store.rows(LIVE)]
    assert ids == list(range(pruned + 1, n + 1))  # the oldest went


def test_unsent_rows_older_than_max_backlog_age_are_skipped_and_counted(influxd, influx_db, store, db_path):
    add_live(store, 10)
    now = T0 + 10 * 86_400_000
    store.insert_sample(LIVE, now - 1000, True, "epever", live(99))
    rep = replicator_on(db_path, v1(influxd, influx_db), max_backlog_age_days=5, clock_ms=lambda: now)
    done = rep.drain()
    rep.close()
    assert done.rows == 11 and done.points == 7
    summary = rep.outbox.summary(now)
    assert summary["skipped_old"] == 10 and summary["backlog_rows"] == 0
    got = reader_of(influxd, influx_db).select("batteryStatus", ["voltage"], tags={"site": SITE})
    assert [r["time"] for r in got] == [now - 1000]
