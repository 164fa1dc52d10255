"""Rollups: incremental == rebuild from raw samples, the hot path beside other writers, migration 0005."""

import math
import shutil
import sqlite3
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge_store import migrate
from edge_store.rollups.rebuild import rebuild
from edge_store.registers import LIVE, STATS
from edge_store.rollups import RollupSettings, bucket_means_sql
from edge_store.store import Store
from tests.samples import LIVE_VALUES, STATS_VALUES
from tests.rollup_rows import HOUR, NEW_YORK, PARIS, daily, feed, live, local_ms, minutes, monthly, rows

# -- incremental == rebuild --------------------------------------------------------

# Instants near the DST switches and a month end, where the interesting splits are.
ANCHORS = [
    (PARIS, local_ms(PARIS, 2026, 3, 29, 1)),
    (PARIS, local_ms(PARIS, 2026, 10, 25, 1)),
    (PARIS, local_ms(PARIS, 2026, 3, 31, 22)),
    (NEW_YORK, local_ms(NEW_YORK, 2026, 3, 8, 1)),
    (NEW_YORK, local_ms(NEW_YORK, 2026, 11, 1, 0, 30)),
]

sample_st = st.tuples(
    st.sampled_from([0, 1_000, 5_000, 10_000, 60_000, 600_000, 3_000_000, 7_200_000]),  # step after the previous
    st.sampled_from(["a", "a", "b"]),
    st.floats(0, 500, allow_nan=False), st.floats(0, 200, allow_nan=False), st.floats(-20, 20, allow_nan=False),
    st.floats(10, 15, allow_nan=False), st.booleans(),  # battery voltage; with a device_statistics row
)


def _unique_versions(path):
    versions = [r["version"] for r in daily(path).values()]
    return len(versions) == len(set(versions))


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "kammthaar.db"
    migrate.upgrade(path)
    return path


def _close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _same(inc, reb, what):
    assert inc.keys() == reb.keys(), what
    for key in inc:
        for col, value in inc[key].items():
            if col != "version":
                assert _close(value, reb[key][col]), (what, key, col, value, reb[key][col])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(anchor=st.sampled_from(ANCHORS), max_gap_s=st.sampled_from([15.0, 900.0, 7200.0]),
       stream=st.lists(sample_st, min_size=1, max_size=40), order=st.randoms(use_true_random=False),
       shuffled=st.floats(0, 1), batch=st.booleans(), rebuild_after=st.none() | st.integers(0, 40))
def test_incremental_rollups_equal_a_rebuild_from_raw_samples(template_db, tmp_path, anchor, max_gap_s, stream,
                                                              order, shuffled, batch, rebuild_after):
    tz, t = anchor
    path = tmp_path / f"p{uuid.uuid4().hex}.db"  # hypothesis reuses tmp_path: never an old file's WAL
    shutil.copy(template_db, path)
    samples = []
    for step, device, pv, load, current, volts, with_stats in stream:
        t += step
        samples.append((t, device, live(pv_power=pv, load_power=load, battery_current=current, battery_voltage=volts),
                        with_stats))
    # Arrival order: in order, or with a share of the samples moved elsewhere (late or early).
    arrivals = list(samples)
    for _ in range(int(shuffled * len(arrivals))):
        i, j = order.randrange(len(arrivals)), order.randrange(len(arrivals))
        arrivals.insert(j, arrivals.pop(i))
    settings_ = RollupSettings(tz, max_gap_s)
    store = Store(path, rollups=settings_)
    other = Store(path)  # another writer: a rebuild from it lands between the collector's samples
    try:
        if batch:
            store.insert_samples(LIVE, [{"ts_ms": ts, "ntp_synced": True, "device": dev, **v}
                                        for ts, dev, v, _ in arrivals])
        else:
            for i, (ts, dev, v, _) in enumerate(arrivals):
                if i == rebuild_after:
                    rebuild(other, settings_)
                store.insert_sample(LIVE, ts, True, dev, v)
                if rebuild_after is not None and i >= rebuild_after:  # no version given twice, ever
                    assert _unique_versions(path)
        for ts, dev, v, with_stats in arrivals:
            if with_stats:
                store.insert_sample(STATS, ts, True, dev, {**STATS_VALUES, "generated_today": v["pv_power"] / 100})
        incremental = daily(path), monthly(path), minutes(path)
        assert _unique_versions(path)
        rebuild(store, settings_)
        rebuilt = daily(path), monthly(path), minutes(path)
    finally:
        store.close()
        other.close()
    for what, inc, reb in zip(("daily", "monthly", "minute"), incremental, rebuilt):
        _same(inc, reb, what)

    # And both agree with a plain trapezoid sum over the samples of each device in (time, arrival) order.
    for dev in {d for _, d, _, _ in samples}:
        pts = sorted((ts, i, v) for i, (ts, d, v, _) in enumerate(arrivals) if d == dev)
        covered = energy = 0.0
        for (t0, _, v0), (t1, _, v1) in zip(pts, pts[1:]):
            if 0 < t1 - t0 <= max_gap_s * 1000:
                covered += t1 - t0
                energy += (t1 - t0) * (v0["pv_power"] + v1["pv_power"]) / 2 / 3.6e9
        days = [r for (d, _), r in incremental[0].items() if d == dev]
        assert sum(r["covered_ms"] for r in days) == covered
        assert math.isclose(sum(r["energy_generated_kwh"] for r in days), energy, rel_tol=1e-9, abs_tol=1e-9)
        assert sum(r["samples"] for r in days) == len(pts)


# -- the hot path, other writers, migration 0005 ---------------------------------------

def _raw_minutes(db_path):
    """Minute buckets straight from the raw samples: each sample counted once."""
    conn = sqlite3.connect(db_path)
    try:
        return {(d, m): (n, s) for d, m, n, s in conn.execute(
            "SELECT device, ts_ms - ts_ms % 60000, count(*), sum(battery_voltage) FROM live_samples GROUP BY 1, 2")}
    finally:
        conn.close()


def test_an_in_order_sample_of_the_open_minute_changes_only_its_day_row(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    feed(store, t - 120_000, t + 10_000, 5_000, pv_power=100.0)
    days, closed = daily(db_path), rows(db_path, "rollup_minute", "minute_ms")
    store.insert_sample(LIVE, t + 15_000, True, "epever", live(pv_power=100.0, battery_voltage=14.0))
    after = daily(db_path)
    assert rows(db_path, "rollup_minute", "minute_ms") == closed  # the open minute is read from its samples
    key = ("epever", "2026-06-10")
    assert {k: r for k, r in after.items() if k != key} == {k: r for k, r in days.items() if k != key}
    assert after[key]["samples"] == days[key]["samples"] + 1
    assert after[key]["version"] > max(r["version"] for r in days.values())
    assert after[key]["energy_generated_kwh"] == pytest.approx(days[key]["energy_generated_kwh"] + 100 * 5 / 3.6e6)
    bucket = minutes(db_path)[("epever", t)]
    assert bucket["samples"] == 4 and bucket["battery_voltage_max"] == 14.0


def test_a_rebuild_while_the_writer_runs_keeps_versions_unique_and_each_sample_counted_once(open_store, db_path):
    writer = open_store(PARIS)
    other = Store(db_path)  # the rebuild runs on another connection, as `kammthaar rollups rebuild` would
    try:
        t = local_ms(PARIS, 2026, 6, 10, 12)
        feed(writer, t - 24 * HOUR, t - 24 * HOUR + 60_000, 5_000, pv_power=50.0)
        feed(writer, t, t + 30_000, 5_000, pv_power=100.0)
        # Yesterday only: today's open row is re-stamped, so the writer re-reads the versions.
        rebuild(other, RollupSettings(PARIS, 15.0), from_day="2026-06-09", to_day="2026-06-09")
        top = max(r["version"] for r in daily(db_path).values())
        writer.insert_sample(LIVE, t + 35_000, True, "epever", live(pv_power=100.0))
        assert _unique_versions(db_path) and daily(db_path)[("epever", "2026-06-10")]["version"] > top
        feed(writer, t + 40_000, t + 90_000, 5_000, pv_power=100.0)
        # Today: the rebuild counts the open minute from raw samples and closes it; the writer goes on.
        rebuild(other, RollupSettings(PARIS, 15.0), from_day="2026-06-10", to_day="2026-06-10")
        feed(writer, t + 95_000, t + 115_000, 5_000, pv_power=100.0)
        assert _unique_versions(db_path)
        assert {k: (b["samples"], pytest.approx(b["battery_voltage_sum"])) for k, b in minutes(db_path).items()} \
            == _raw_minutes(db_path)
        incremental = daily(db_path), monthly(db_path)
        rebuild(other, RollupSettings(PARIS, 15.0))
        for what, inc, reb in zip(("daily", "monthly"), incremental, (daily(db_path), monthly(db_path))):
            _same(inc, reb, what)
    finally:
        other.close()


def test_a_rebuild_before_the_writer_has_an_open_row_still_never_reuses_a_version(open_store, db_path):
    # Only device_statistics rows so far: the writer has no open row whose version would show the rebuild.
    writer = open_store(PARIS)
    other = Store(db_path)
    try:
        t = local_ms(PARIS, 2026, 6, 10, 12)
        writer.insert_sample(STATS, t, True, "epever", STATS_VALUES)
        writer.insert_sample(STATS, t - 24 * HOUR, True, "epever", STATS_VALUES)
        rebuild(other, RollupSettings(PARIS, 15.0), from_day="2026-06-09", to_day="2026-06-09")
        top = max(r["version"] for r in daily(db_path).values())
        writer.insert_sample(STATS, t + 1_000, True, "epever", {**STATS_VALUES, "generated_today": 2.0})
        assert _unique_versions(db_path)
        row = daily(db_path)[("epever", "2026-06-10")]
        assert row["version"] > top and row["device_generated_kwh"] == 2.0
        # The same after a late sample, the other path that opens no row.
        rebuild(other, RollupSettings(PARIS, 15.0), from_day="2026-06-10", to_day="2026-06-10")
        top = max(r["version"] for r in daily(db_path).values())
        writer.insert_sample(LIVE, t - 24 * HOUR - 60_000, True, "epever", LIVE_VALUES)
        writer.insert_sample(LIVE, t - 24 * HOUR - 120_000, True, "epever", LIVE_VALUES)
        assert _unique_versions(db_path) and daily(db_path)[("epever", "2026-06-09")]["version"] > top
    finally:
        other.close()


def test_migration_0005_keeps_the_statistics_and_its_downgrade_gives_them_back(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path, "0004")
    conn = sqlite3.connect(path)
    cols = ("device, {key}, timezone, start_ms, end_ms, battery_voltage_min, battery_voltage_max, energy_generated_kwh, "
            "energy_consumed_kwh, battery_charge_ah, battery_discharge_ah, samples, first_ts_ms, last_ts_ms, "
            "covered_ms, device_generated_kwh, device_consumed_kwh, device_stats_ts_ms, version")
    may_30, may_31, june = (local_ms(PARIS, 2026, 5, 30), local_ms(PARIS, 2026, 5, 31), local_ms(PARIS, 2026, 6, 1))
    with conn:
        for day, start, end, kwh, stats_ts, version in (("2026-05-30", may_30, may_31, 1.5, may_30 + HOUR, 1),
                                                        ("2026-05-31", may_31, june, 2.0, may_31 + HOUR, 2)):
            conn.execute(f"INSERT INTO rollup_daily ({cols.format(key='day')}) VALUES "
                         "('epever', ?, ?, ?, ?, 12.0, 14.0, ?, 0.5, 1.0, 0.5, 100, ?, ?, 5000, ?, 0.2, ?, ?)",
                         (day, PARIS, start, end, kwh, start, start + 500_000, kwh + 0.1, stats_ts, version))
        conn.execute(f"INSERT INTO rollup_monthly ({cols.format(key='month')}) VALUES "
                     "('epever', '2026-05', ?, ?, ?, 12.0, 14.0, 3.5, 1.0, 2.0, 1.0, 200, ?, ?, 10000, 40.0, 9.0, ?, 3)",
                     (PARIS, local_ms(PARIS, 2026, 5, 1), june, may_30, may_31 + 500_000, may_31 + HOUR))
        conn.execute("INSERT INTO replication_watermarks (stream, position, updated_ms) VALUES "
                     "('rollup_monthly', 3, 0), ('rollup_daily', 2, 0)")
    conn.close()

    migrate.upgrade(path)
    month = monthly(path)[("epever", "2026-05")]
    assert (month["start_ms"], month["end_ms"]) == (local_ms(PARIS, 2026, 5, 1), june)
    assert month["energy_generated_kwh"] == pytest.approx(3.5) and month["samples"] == 200
    # The device's own monthly figures moved to the day of the month's last device_statistics row.
    assert (month["device_generated_kwh"], month["device_consumed_kwh"], month["version"]) == (40.0, 9.0, 2)
    # Month versions are now their newest day's (2, under the old watermark 3): every month goes once more.
    conn = sqlite3.connect(path)
    assert dict(conn.execute("SELECT stream, position FROM replication_watermarks")) == \
        {"rollup_monthly": 0, "rollup_daily": 2}
    conn.close()
    store = Store(path, rollups=RollupSettings(PARIS, 15.0))
    feed(store, june + HOUR, june + HOUR + 10_000, 5_000, battery_voltage=13.0)  # one open minute
    store.close()
    assert minutes(path)[("epever", june + HOUR)]["samples"] == 3

    migrate.downgrade(path, "0004")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    months = {r["month"]: dict(r) for r in conn.execute("SELECT * FROM rollup_monthly")}
    assert months["2026-05"]["device_generated_kwh"] == 40.0 and months["2026-05"]["samples"] == 200
    assert set(months) == {"2026-05", "2026-06"}
    # The open minute went to rollup_minute.
    assert conn.execute("SELECT samples FROM rollup_minute WHERE minute_ms = ?", (june + HOUR,)).fetchone()[0] == 3
    assert "open_minute_ms" not in {r[1] for r in conn.execute("PRAGMA table_info(rollup_daily)")}
    conn.close()
    migrate.upgrade(path)
    assert monthly(path)[("epever", "2026-05")]["device_generated_kwh"] == 40.0


def test_bucket_means_read_closed_minutes_and_the_open_one_as_the_view_does(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for i in range(0, 400, 7):  # 12:00:00 to 12:06:39, the last minute still open
        store.insert_sample(LIVE, t + i * 1000, True, "epever", live(battery_voltage=12.0 + i / 100))
    store.insert_sample(LIVE, t + 62_000, True, "epever", live(battery_voltage=15.0))  # late, closed minute
    store.insert_sample(LIVE, t + 361_000, True, "epever", live(battery_voltage=11.0))  # late, open minute
    conn = sqlite3.connect(db_path)
    try:
        for every in (60_000, 300_000):
            lean = conn.execute(bucket_means_sql("battery_voltage"),
                                {"every_ms": every, "device": "epever", "start_ms": t, "end_ms": t + HOUR}).fetchall()
            view = conn.execute("SELECT minute_ms - minute_ms % ?1 AS b, sum(battery_voltage_sum) / sum(samples) "
                                "FROM minute_buckets WHERE device = ?2 AND minute_ms >= ?3 AND minute_ms < ?4 "
                                "GROUP BY b ORDER BY b", (every, "epever", t, t + HOUR)).fetchall()
            raw = conn.execute("SELECT ts_ms - ts_ms % ?1 AS b, avg(battery_voltage) FROM live_samples "
                               "WHERE device = ?2 AND ts_ms >= ?3 AND ts_ms < ?4 GROUP BY b ORDER BY b",
                               (every, "epever", t, t + HOUR)).fetchall()
            assert [b for b, _ in lean] == [b for b, _ in view] == [b for b, _ in raw]
            assert [m for _, m in lean] == pytest.approx([m for _, m in view]) == [m for _, m in raw]
        # The range is over minutes: the open minute counts only when it starts inside it.
        assert conn.execute(bucket_means_sql("battery_voltage"), {"every_ms": 60_000, "device": "epever", "start_ms": t,
                                                                  "end_ms": t + 360_000}).fetchall()[-1][0] == t + 300_000
    finally:
        conn.close()
    with pytest.raises(ValueError):
        bucket_means_sql("pv_power; DROP TABLE live_samples")
