"""Rollups on real SQLite files: worked examples with hand-computed answers, incremental == rebuild."""

import os
import sqlite3
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from edge_store import commands, config
from edge_store.errors import StoreError
from edge_store.rollups.rebuild import ensure_built, rebuild
from edge_store.registers import LIVE, STATS
from edge_store.rollups import RollupSettings
from edge_store.schema import MINUTE_METRICS
from tests.samples import LIVE_VALUES, STATS_VALUES
from tests.support import kammthaar
from tests.rollup_rows import HOUR, NEW_YORK, PARIS, daily, feed, live, local_ms, minutes, monthly


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
