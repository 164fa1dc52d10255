"""Rollups on real SQLite files: worked examples with hand-computed answers, incremental == rebuild."""

import math
import os
import shutil
import sqlite3
import subprocess
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge_store import commands, config, migrate
from edge_store.errors import StoreError
from edge_store.rollups.rebuild import ensure_built, rebuild
from edge_store.registers import LIVE, STATS
from edge_store.rollups import RollupSettings, bucket_means_sql
from edge_store.schema import MINUTE_METRICS
from edge_store.store import Store
from tests.samples import LIVE_VALUES, STATS_VALUES
from tests.support import kammthaar

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
HOUR = 3_600_000

def local_ms(tz, *args):
    """UTC ms of a local wall time (the first one when it repeats)."""
    return round(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def live(**values):
    return {**LIVE_VALUES, **values}


def rows(db_path, table, key):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return {(r["device"], r[key]): dict(r) for r in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.close()


def daily(db_path):
    """Day rows without the open minute: it is in minutes(), and a rebuild closes it."""
    return {k: {c: v for c, v in r.items() if not c.startswith("open_")}
            for k, r in rows(db_path, "rollup_daily", "day").items()}


def monthly(db_path):
    return rows(db_path, "rollup_monthly", "month")


def minutes(db_path):
    """Every minute bucket, the open minutes included; a minute is open or closed, never both."""
    conn = sqlite3.connect(db_path)
    try:
        (duplicates,) = conn.execute("SELECT count(*) - count(DISTINCT device || ' ' || minute_ms) "
                                     "FROM minute_buckets").fetchone()
    finally:
        conn.close()
    assert duplicates == 0
    return rows(db_path, "minute_buckets", "minute_ms")


@pytest.fixture
def open_store(db_path):
    """Stores with rollups in a given zone and gap on the test's database file, closed at teardown."""
    opened = []

    def _open(tz=PARIS, max_gap_s=15.0):
        s = Store(db_path, rollups=RollupSettings(tz, max_gap_s))
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


def feed(store, start_ms, end_ms, step_ms, device="epever", **values):
    """Live samples every step_ms from start_ms to end_ms inclusive, constant values."""
    t = start_ms
    while t <= end_ms:
        store.insert_sample(LIVE, t, True, device, live(**values))
        t += step_ms


# -- worked examples -------------------------------------------------------------

def test_constant_100_w_for_a_whole_day_is_2_4_kwh_covering_86400_s(open_store, db_path):
    store = open_store(PARIS)
    # 23:59:55 the day before to 00:00:05 the day after, every 10 s: the first and
    # last intervals straddle midnight and are split 5 s / 5 s.
    start = local_ms(PARIS, 2026, 6, 9, 23, 59, 55)
    end = local_ms(PARIS, 2026, 6, 11, 0, 0, 5)
    feed(store, start, end, 10_000, pv_power=100.0, load_power=50.0, battery_current=2.0)
    day = daily(db_path)[("epever", "2026-06-10")]
    assert day["energy_generated_kwh"] == pytest.approx(2.4, abs=1e-9)
    assert day["energy_consumed_kwh"] == pytest.approx(1.2, abs=1e-9)
    assert day["battery_charge_ah"] == pytest.approx(48.0, abs=1e-9)
    assert day["battery_discharge_ah"] == 0.0
    assert day["covered_ms"] == 86_400_000
    assert day["samples"] == 8640
    assert day["first_ts_ms"] == local_ms(PARIS, 2026, 6, 10, 0, 0, 5)
    assert day["last_ts_ms"] == local_ms(PARIS, 2026, 6, 10, 23, 59, 55)
    assert day["end_ms"] - day["start_ms"] == 24 * HOUR
    assert day["timezone"] == PARIS
    # The 5 s on each side went to the neighbour days: 100 W × 5 s.
    assert daily(db_path)[("epever", "2026-06-09")]["energy_generated_kwh"] == pytest.approx(100 * 5 / 3.6e6)
    assert daily(db_path)[("epever", "2026-06-11")]["covered_ms"] == 5_000


@pytest.mark.parametrize("day,hours", [((2026, 3, 29), 23), ((2026, 10, 25), 25)])
def test_paris_dst_days_are_single_days_of_23_and_25_hours(open_store, db_path, day, hours):
    store = open_store(PARIS)
    start = local_ms(PARIS, *day)
    end = start + hours * HOUR
    assert end == local_ms(PARIS, 2026, day[1], day[2] + 1)  # the next local midnight
    feed(store, start, end, 10_000, pv_power=100.0)
    days = daily(db_path)
    key = "%04d-%02d-%02d" % day
    assert sorted(k for _, k in days) == [key, "%04d-%02d-%02d" % (day[0], day[1], day[2] + 1)]
    row = days[("epever", key)]
    assert row["energy_generated_kwh"] == pytest.approx(hours / 10, abs=1e-9)  # 2.3 and 2.5 kWh
    assert row["covered_ms"] == hours * HOUR
    assert row["end_ms"] - row["start_ms"] == hours * HOUR
    assert row["samples"] == hours * 360


def test_two_hour_gap_contributes_nothing_and_shows_in_covered_time(open_store, db_path):
    store = open_store(PARIS, max_gap_s=15.0)
    midnight = local_ms(PARIS, 2026, 6, 10)
    feed(store, midnight, midnight + 10 * HOUR, 10_000, pv_power=100.0)
    feed(store, midnight + 12 * HOUR, midnight + 24 * HOUR - 10_000, 10_000, pv_power=100.0)
    row = daily(db_path)[("epever", "2026-06-10")]
    # 0-10 h and 12-24 h minus the last 10 s (no sample at midnight): 22 h less 10 s.
    covered = 22 * HOUR - 10_000
    assert row["covered_ms"] == covered
    assert row["energy_generated_kwh"] == pytest.approx(100 * covered / 3.6e9, abs=1e-9)
    view = sqlite3.connect(db_path).execute("SELECT covered_s, energy_generated_kwh FROM v_daily").fetchone()
    assert view == (79190.0, 2.2)


def test_a_gap_of_exactly_the_limit_counts_one_ms_more_does_not(open_store, db_path):
    store = open_store(PARIS, max_gap_s=15.0)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for ts in (t, t + 15_000, t + 30_001):
        store.insert_sample(LIVE, ts, True, "epever", live(pv_power=360.0))
    row = daily(db_path)[("epever", "2026-06-10")]
    assert row["covered_ms"] == 15_000
    assert row["energy_generated_kwh"] == pytest.approx(360 * 15 / 3.6e6)


def test_month_boundary_splits_an_interval_by_time_at_the_interpolated_value(open_store, db_path):
    store = open_store(PARIS, max_gap_s=30.0)
    # A ramp from 0 W to 200 W across local midnight 31 March → 1 April: 100 W at midnight.
    before = local_ms(PARIS, 2026, 3, 31, 23, 59, 50)
    store.insert_sample(LIVE, before, True, "epever", live(pv_power=0.0))
    store.insert_sample(LIVE, before + 20_000, True, "epever", live(pv_power=200.0))
    march_j, april_j = 10 * (0 + 100) / 2, 10 * (100 + 200) / 2  # joules
    days, months = daily(db_path), monthly(db_path)
    for key, joules in (("2026-03-31", march_j), ("2026-04-01", april_j)):
        assert days[("epever", key)]["energy_generated_kwh"] == pytest.approx(joules / 3.6e6)
        assert days[("epever", key)]["covered_ms"] == 10_000
    for key, joules in (("2026-03", march_j), ("2026-04", april_j)):
        assert months[("epever", key)]["energy_generated_kwh"] == pytest.approx(joules / 3.6e6)
        assert months[("epever", key)]["covered_ms"] == 10_000
        assert months[("epever", key)]["samples"] == 1
    assert months[("epever", "2026-04")]["start_ms"] == local_ms(PARIS, 2026, 4, 1)
    assert months[("epever", "2026-03")]["end_ms"] - months[("epever", "2026-03")]["start_ms"] == (31 * 24 - 1) * HOUR


def test_negative_current_day_is_split_into_charge_and_discharge_ah(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 8)
    feed(store, t, t + HOUR, 10_000, battery_current=2.0)  # an hour charging at 2 A
    feed(store, t + HOUR + 10_000, t + 3 * HOUR + 10_000, 10_000, battery_current=-1.0)  # two hours at -1 A
    row = daily(db_path)[("epever", "2026-06-10")]
    # The interval from +2 A to -1 A crosses zero after 2/3 of its 10 s.
    crossing_charge = (20 / 3) * 2 / 2 / 3600
    crossing_discharge = (10 / 3) * 1 / 2 / 3600
    assert row["battery_charge_ah"] == pytest.approx(2.0 + crossing_charge, abs=1e-9)
    assert row["battery_discharge_ah"] == pytest.approx(2.0 + crossing_discharge, abs=1e-9)


def test_minute_buckets_hold_sum_min_max_and_count(open_store, db_path):
    store = open_store(PARIS)
    minute = local_ms(PARIS, 2026, 6, 10, 12)
    for i, volts in enumerate((12.5, 13.5, 13.0)):
        store.insert_sample(LIVE, minute + 1_000 + i * 20_000, True, "epever", live(battery_voltage=volts))
    store.insert_sample(LIVE, minute + 60_000, True, "epever", live(battery_voltage=12.0))
    buckets = minutes(db_path)
    b = buckets[("epever", minute)]
    assert b["samples"] == 3
    assert b["battery_voltage_sum"] / b["samples"] == pytest.approx(13.0)
    assert (b["battery_voltage_min"], b["battery_voltage_max"]) == (12.5, 13.5)
    assert b["pv_power_sum"] == pytest.approx(3 * LIVE_VALUES["pv_power"])
    assert buckets[("epever", minute + 60_000)]["samples"] == 1
    assert set(MINUTE_METRICS) >= {"battery_voltage", "battery_current", "battery_power", "state_of_charge",
                                   "battery_temperature", "pv_voltage", "pv_current", "pv_power", "load_voltage",
                                   "load_current", "load_power", "controller_temperature"}


def test_min_and_max_of_the_day_and_month(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    for i, (bv, pv, soc, temp) in enumerate([(12.1, 0.0, 55, 20.5), (14.2, 35.5, 90, -2.0), (13.0, 18.0, 70, 10.0)]):
        store.insert_sample(LIVE, t + i * 5_000, True, "epever", live(battery_voltage=bv, pv_voltage=pv,
                                                                   state_of_charge=soc, battery_temperature=temp))
    for row in (daily(db_path)[("epever", "2026-06-10")], monthly(db_path)[("epever", "2026-06")]):
        assert (row["battery_voltage_min"], row["battery_voltage_max"]) == (12.1, 14.2)
        assert (row["pv_voltage_min"], row["pv_voltage_max"]) == (0.0, 35.5)
        assert (row["soc_min"], row["soc_max"]) == (55, 90)
        assert (row["battery_temperature_min"], row["battery_temperature_max"]) == (-2.0, 20.5)


def test_device_reported_values_come_from_the_last_device_statistics_row_of_the_day(open_store, db_path):
    store = open_store(PARIS)

    def stats(h, m, day=10, **values):
        store.insert_sample(STATS, local_ms(PARIS, 2026, 6, day, h, m), True, "epever", {**STATS_VALUES, **values})

    stats(10, 0, generated_today=1.0, consumed_today=0.2, generated_this_month=9.0)
    stats(23, 59, generated_today=2.5, consumed_today=0.7, generated_this_month=10.5, consumed_this_month=4.0)
    stats(0, 1, day=11, generated_today=0.01, consumed_today=0.0, generated_this_month=10.51)
    stats(12, 0, generated_today=1.5, consumed_today=0.4)  # arrives late: older than 23:59, loses
    day = daily(db_path)[("epever", "2026-06-10")]
    assert (day["device_generated_kwh"], day["device_consumed_kwh"]) == (2.5, 0.7)
    assert day["device_stats_ts_ms"] == local_ms(PARIS, 2026, 6, 10, 23, 59)
    assert daily(db_path)[("epever", "2026-06-11")]["device_generated_kwh"] == 0.01
    month = monthly(db_path)[("epever", "2026-06")]
    assert month["device_generated_kwh"] == 10.51  # generated_this_month of the month's last row
    assert day["samples"] == 0 and day["energy_generated_kwh"] == 0.0


def test_late_sample_replaces_the_trapezoid_it_falls_into(open_store, db_path):
    store = open_store(PARIS, max_gap_s=30.0)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    store.insert_sample(LIVE, t, True, "epever", live(pv_power=100.0))
    store.insert_sample(LIVE, t + 20_000, True, "epever", live(pv_power=100.0))
    assert daily(db_path)[("epever", "2026-06-10")]["energy_generated_kwh"] == pytest.approx(2000 / 3.6e6)
    store.insert_sample(LIVE, t + 10_000, True, "epever", live(pv_power=300.0))  # late
    row = daily(db_path)[("epever", "2026-06-10")]
    assert row["energy_generated_kwh"] == pytest.approx((10 * 200 + 10 * 200) / 3.6e6)
    assert row["covered_ms"] == 20_000 and row["samples"] == 3


def test_late_sample_from_yesterday_lands_in_yesterday(open_store, db_path):
    store = open_store(PARIS)
    today = local_ms(PARIS, 2026, 6, 10, 9)
    feed(store, today, today + 60_000, 10_000, pv_power=100.0)
    yesterday = local_ms(PARIS, 2026, 6, 9, 21)
    store.insert_sample(LIVE, yesterday, True, "epever", live(battery_voltage=11.0))
    days = daily(db_path)
    assert days[("epever", "2026-06-09")]["samples"] == 1
    assert days[("epever", "2026-06-09")]["battery_voltage_min"] == 11.0
    assert days[("epever", "2026-06-10")]["samples"] == 7
    assert days[("epever", "2026-06-10")]["battery_voltage_min"] == LIVE_VALUES["battery_voltage"]


def test_versions_are_strictly_increasing_and_find_exactly_the_changed_rows(open_store, db_path):
    store = open_store(PARIS)
    feed(store, local_ms(PARIS, 2026, 5, 31, 12), local_ms(PARIS, 2026, 5, 31, 12, 1), 10_000)
    feed(store, local_ms(PARIS, 2026, 6, 10, 12), local_ms(PARIS, 2026, 6, 10, 12, 1), 10_000)
    watermark_d = max(r["version"] for r in daily(db_path).values())
    watermark_m = max(r["version"] for r in monthly(db_path).values())
    store.insert_sample(LIVE, local_ms(PARIS, 2026, 5, 31, 13), True, "epever", LIVE_VALUES)  # late, into May
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT day FROM rollup_daily WHERE version > ?", (watermark_d,)).fetchall() == [("2026-05-31",)]
    assert conn.execute("SELECT month FROM rollup_monthly WHERE version > ?", (watermark_m,)).fetchall() == [("2026-05",)]
    # Every change took a version above any version ever given: no two rows share one.
    for table in ("rollup_daily", "rollup_monthly"):
        versions = [v for (v,) in conn.execute(f"SELECT version FROM {table}")]
        assert len(versions) == len(set(versions))


def test_views_show_local_dates_and_rounded_values_in_the_sqlite3_shell(open_store, db_path):
    store = open_store(PARIS)
    midnight = local_ms(PARIS, 2026, 10, 25)
    feed(store, midnight, midnight + 25 * HOUR, 60_000, pv_power=100.0, battery_voltage=13.456)
    store = None
    out = subprocess.run(["sqlite3", str(db_path),
                          "SELECT day, battery_voltage_min, energy_generated_kwh, covered_s, covered_pct FROM v_daily "
                          "LIMIT 2; SELECT month, samples FROM v_monthly;"],
                         capture_output=True, text=True, check=True).stdout.split()
    # Newest first; with 60 s samples and a 15 s gap nothing is integrated.
    assert out == ["2026-10-26|13.46|0.0|0.0|0.0", "2026-10-25|13.46|0.0|0.0|0.0", "2026-10|1501"]


def test_timezone_change_is_followed_by_a_rebuild_at_collector_start(open_store, db_path, tmp_path):
    paris = open_store(PARIS)
    # 20:00 to 02:00 UTC: two local days in Paris (UTC+2), one in New York (UTC-4).
    start = round(datetime(2026, 6, 10, 20, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
    feed(paris, start, start + 6 * HOUR, 10_000, pv_power=100.0)
    paris.close()
    assert sorted(k for _, k in daily(db_path)) == ["2026-06-10", "2026-06-11"]
    cfg_path = tmp_path / "k.toml"
    cfg_path.write_text(f'[site]\ntimezone = "{NEW_YORK}"\n[store]\npath = "{db_path}"\n'
                        '[modbus]\ninterval_s = 5.0\n[rollups]\ngap_factor = 3.0\n')
    collector = commands.build_collector(config.load(str(cfg_path), environ={}))
    try:
        days = daily(db_path)
        assert sorted(k for _, k in days) == ["2026-06-10", "2026-06-11"]
        assert days[("epever", "2026-06-10")]["energy_generated_kwh"] == pytest.approx(0.6, abs=1e-9)
        assert days[("epever", "2026-06-10")]["start_ms"] == local_ms(NEW_YORK, 2026, 6, 10)
        assert days[("epever", "2026-06-10")]["timezone"] == NEW_YORK
        assert monthly(db_path)[("epever", "2026-06")]["timezone"] == NEW_YORK
        # A row of the old zone with nothing behind it in the new one is emptied, not deleted.
        assert days[("epever", "2026-06-11")]["samples"] == 0
        assert days[("epever", "2026-06-11")]["covered_ms"] == 0
        # The collector's store goes on in the new zone.
        collector.store.insert_sample(LIVE, start + 6 * HOUR + 10_000, True, "epever", live(pv_power=100.0))
        assert daily(db_path)[("epever", "2026-06-10")]["covered_ms"] == 6 * HOUR + 10_000
    finally:
        collector.store.close()
    # A writer still configured for Paris keeps its samples, leaves the statistics of the other zone
    # alone and marks them, so the next start rebuilds whatever zone it runs in.
    before = daily(db_path)
    late_writer = open_store(PARIS)
    row_id = late_writer.insert_sample(LIVE, start + 7 * HOUR, True, "epever", live(pv_power=100.0))
    late_writer.insert_sample(STATS, start + 7 * HOUR, True, "epever", STATS_VALUES)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT ts_ms FROM live_samples WHERE id = ?", (row_id,)).fetchone() == (start + 7 * HOUR,)
    assert conn.execute("SELECT value FROM rollup_meta WHERE key = 'timezone'").fetchone()[0].startswith("mixed:")
    conn.close()
    assert daily(db_path) == before
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    env.update({"KAMMTHAAR_STORE_PATH": str(db_path), "KAMMTHAAR_SITE_TIMEZONE": NEW_YORK})
    status = kammthaar("status", env=env, timeout_s=60)
    assert status.returncode == 0, status.stderr
    assert "rollups: !! WAITING FOR A REBUILD" in status.stdout
    with pytest.raises(StoreError, match="every day"):
        rebuild(late_writer, RollupSettings(NEW_YORK, 15.0), from_day="2026-06-10")
    assert ensure_built(late_writer, RollupSettings(NEW_YORK, 15.0)) is not None
    assert daily(db_path)[("epever", "2026-06-10")]["samples"] == before[("epever", "2026-06-10")]["samples"] + 1
    status = kammthaar("status", env=env, timeout_s=60)
    assert f"rollups: days of {NEW_YORK}" in status.stdout


def test_rebuild_from_to_touches_only_those_days(open_store, db_path):
    store = open_store(PARIS)
    for day in range(10, 15):
        t = local_ms(PARIS, 2026, 6, day, 12)
        feed(store, t, t + 5 * 60_000, 10_000, pv_power=100.0 + day)
    before = daily(db_path)
    conn = sqlite3.connect(db_path)
    # Spoil a minute bucket inside and one outside the range: only the inside one is recomputed.
    inside, outside = local_ms(PARIS, 2026, 6, 12, 12), local_ms(PARIS, 2026, 6, 14, 12)
    with conn:
        conn.execute("UPDATE rollup_minute SET samples = 999 WHERE minute_ms IN (?, ?)", (inside, outside))
    result = rebuild(store, RollupSettings(PARIS, 15.0), from_day="2026-06-11", to_day="2026-06-13")
    assert result.days == 3 and result.months == 1
    after = daily(db_path)
    for key in before:
        changed = after[key]["version"] != before[key]["version"]
        # The open row (the newest sample's day) is re-stamped too: the writer re-reads after a rebuild.
        assert changed == ("2026-06-11" <= key[1] <= "2026-06-13" or key[1] == "2026-06-14"), key
        assert after[key]["energy_generated_kwh"] == pytest.approx(before[key]["energy_generated_kwh"], rel=1e-12)
    assert minutes(db_path)[("epever", inside)]["samples"] == 6
    assert minutes(db_path)[("epever", outside)]["samples"] == 999


def test_partial_rebuild_in_another_zone_is_refused(open_store, db_path):
    store = open_store(PARIS)
    store.insert_sample(LIVE, local_ms(PARIS, 2026, 6, 10, 12), True, "epever", LIVE_VALUES)
    with pytest.raises(StoreError, match="every day"):
        rebuild(store, RollupSettings(NEW_YORK, 15.0), from_day="2026-06-10")


def test_prune_removes_samples_and_minute_buckets_never_daily_or_monthly_rows(open_store, db_path):
    store = open_store(PARIS)
    first = local_ms(PARIS, 2026, 6, 10, 12)
    for day in range(3):
        feed(store, first + day * 24 * HOUR, first + day * 24 * HOUR + 10 * 60_000, 10_000, pv_power=100.0)
    stats_before = daily(db_path), monthly(db_path)
    cutoff = first + 24 * HOUR + 5 * 60_000 + 30_000  # halfway through a minute of day 2
    deleted = store.prune(cutoff)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT min(ts_ms) FROM live_samples").fetchone()[0] >= cutoff
    kept = sorted(m for _, m in minutes(db_path))
    assert kept[0] == cutoff - 30_000  # the bucket holding the cutoff stays while it has samples
    assert all(m + 60_000 > cutoff for m in kept)
    # Day 1: 61 samples in 11 minutes; day 2 before 12:05:30: 33 samples, whole minutes 12:00 to 12:04.
    assert deleted == (61 + 11) + (33 + 5)
    assert (daily(db_path), monthly(db_path)) == stats_before
    # A rebuild cannot recompute days whose samples are gone: it leaves them as they were.
    result = rebuild(store, RollupSettings(PARIS, 15.0))
    assert result.skipped_days == ["2026-06-10", "2026-06-11"]
    after = daily(db_path)
    for key in (("epever", "2026-06-10"), ("epever", "2026-06-11")):
        assert after[key] == stats_before[0][key]
    assert after[("epever", "2026-06-12")]["samples"] == 61
    assert monthly(db_path)[("epever", "2026-06")]["samples"] == 3 * 61


def test_row_ids_are_never_reused_with_rollups(open_store):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    ids = [store.insert_sample(LIVE, t + i * 1000, True, "epever", LIVE_VALUES) for i in range(5)]
    store.prune(before_ms=t + HOUR)
    assert store.count(LIVE) == 0
    assert store.insert_sample(LIVE, t + 2 * HOUR, True, "epever", LIVE_VALUES) > max(ids)


def test_refused_sample_leaves_the_rollups_untouched(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    store.insert_sample(LIVE, t, True, "epever", live(pv_power=100.0))
    before = daily(db_path), minutes(db_path)
    partial = live()
    del partial["battery_voltage"]
    with pytest.raises(StoreError):
        store.insert_sample(LIVE, t + 5_000, True, "epever", partial)
    assert (daily(db_path), minutes(db_path)) == before


def test_refused_batch_leaves_the_rollups_equal_to_a_rebuild(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    feed(store, t, t + 20_000, 5_000, pv_power=100.0)
    partial = live()
    del partial["battery_voltage"]
    good = {"ts_ms": t + 25_000, "ntp_synced": True, "device": "epever", **live(pv_power=500.0)}
    bad = {"ts_ms": t + 30_000, "ntp_synced": True, "device": "epever", **partial}
    with pytest.raises(StoreError):
        store.insert_samples(LIVE, [good, bad])
    # The next sample integrates from the last stored one, not from the refused batch.
    store.insert_sample(LIVE, t + 35_000, True, "epever", live(pv_power=100.0))
    incremental = daily(db_path), monthly(db_path)
    rebuild(store, RollupSettings(PARIS, 15.0))
    assert _strip_versions(daily(db_path), monthly(db_path)) == _strip_versions(*incremental)


def _strip_versions(*tables):
    return [{k: {c: v for c, v in row.items() if c != "version"} for k, row in t.items()} for t in tables]


def test_cli_rollups_rebuild_prints_a_summary_and_bad_dates_exit_2(open_store, db_path):
    store = open_store(PARIS)
    t = local_ms(PARIS, 2026, 6, 10, 12)
    feed(store, t, t + 60_000, 10_000, pv_power=100.0)
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    env.update({"KAMMTHAAR_STORE_PATH": str(db_path), "KAMMTHAAR_SITE_TIMEZONE": PARIS})
    run = lambda *a: kammthaar("rollups", "rebuild", *a, env=env, timeout_s=60)  # noqa: E731
    proc = run("--from", "2026-06-10", "--to", "2026-06-10")
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt 1 days and 1 months in Europe/Paris" in proc.stdout
    proc = run("--from", "10/06/2026")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "YYYY-MM-DD" in proc.stderr


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
