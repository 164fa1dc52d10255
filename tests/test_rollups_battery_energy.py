"""Battery energy in and out (kWh, migration 0015): battery power integrated by sign, by hand; rebuild; migration."""

import sqlite3

import pytest

from edge_store import migrate
from edge_store.registers import LIVE
from edge_store.rollups import RollupSettings
from edge_store.rollups.meta import META_TIMEZONE, read_meta
from edge_store.rollups.rebuild import ensure_built, rebuild
from edge_store.store import Store
from tests.rollup_rows import HOUR, PARIS, daily, live, local_ms, monthly

# (seconds after 23:59:40 local, battery volts, battery amps): charging, a zero crossing at midnight's
# neighbour, discharging across midnight, then a sample that arrives late.
SAMPLES = [(0, 13.0, 4.0), (10, 13.2, 2.0), (20, 12.8, -2.0), (30, 12.6, -3.0), (40, 12.5, -1.0)]
LATE = (25, 12.7, 1.0)


def hand_kwh(samples, lo_s, hi_s):
    """(in, out) kWh of the battery power v×i over [lo_s, hi_s]: trapezoids, split where the power
    crosses zero, and at lo/hi by linear interpolation of the power."""
    charge = discharge = 0.0
    pts = sorted((t, v * i) for t, v, i in samples)
    for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
        a, b = max(t0, lo_s), min(t1, hi_s)
        if a >= b:
            continue
        pa, pb = (p0 + (p1 - p0) * (x - t0) / (t1 - t0) for x in (a, b))
        if pa * pb < 0:  # two triangles
            z = a + (b - a) * abs(pa) / (abs(pa) + abs(pb))
            parts = [((z - a) * pa / 2), ((b - z) * pb / 2)]
        else:
            parts = [(b - a) * (pa + pb) / 2]
        for joules in parts:
            if joules > 0:
                charge += joules
            else:
                discharge -= joules
    return charge / 3.6e6, discharge / 3.6e6


def test_battery_kwh_is_the_battery_power_integrated_by_sign_as_by_hand(open_store, db_path):
    store = open_store(PARIS)
    t0 = local_ms(PARIS, 2026, 6, 10, 23, 59, 40)
    for s, volts, amps in SAMPLES:
        store.insert_sample(LIVE, t0 + s * 1000, True, "epever", live(battery_voltage=volts, battery_current=amps))
    store.insert_sample(LIVE, t0 + LATE[0] * 1000, True, "epever",
                        live(battery_voltage=LATE[1], battery_current=LATE[2]))
    every = [*SAMPLES, LATE]
    days = daily(db_path)
    for key, lo, hi in (("2026-06-10", 0, 20), ("2026-06-11", 20, 40)):
        row = days[("epever", key)]
        charge, discharge = hand_kwh(every, lo, hi)
        assert row["battery_charge_kwh"] == pytest.approx(charge, rel=1e-12, abs=1e-15)
        assert row["battery_discharge_kwh"] == pytest.approx(discharge, rel=1e-12, abs=1e-15)
    assert days[("epever", "2026-06-10")]["battery_charge_kwh"] > 0
    assert days[("epever", "2026-06-11")]["battery_discharge_kwh"] > 0
    months = monthly(db_path)
    assert months[("epever", "2026-06")]["battery_charge_kwh"] == pytest.approx(hand_kwh(every, 0, 40)[0])
    # The rebuild computes the same figures from the raw samples.
    rebuild(store, RollupSettings(PARIS, 15.0))
    rebuilt = daily(db_path)
    for key in days:
        for column in ("battery_charge_kwh", "battery_discharge_kwh", "battery_charge_ah", "battery_discharge_ah"):
            assert rebuilt[key][column] == pytest.approx(days[key][column], rel=1e-12, abs=1e-15)


def test_migration_0015_goes_down_and_up_and_the_next_start_rebuilds_the_exact_figures(tmp_path):
    path = tmp_path / "m.db"
    settings = RollupSettings(PARIS, 15.0)
    migrate.upgrade(path)
    store = Store(path, rollups=settings)
    t = local_ms(PARIS, 2026, 6, 10, 8)
    for i in range(360):  # an hour at 2 A, 12.0 V → 12.6 V
        store.insert_sample(LIVE, t + i * 10_000, True, "epever",
                            live(battery_voltage=12.0 + i / 599, battery_current=2.0))
    store.close()
    exact = daily(path)[("epever", "2026-06-10")]
    assert exact["battery_charge_kwh"] == pytest.approx(2.0 * (12.0 + 359 / 599 / 2) * 3590 / 3.6e6)

    migrate.downgrade(path, "0007")
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(rollup_daily)")}
    assert "battery_charge_kwh" not in columns
    assert monthly(path)[("epever", "2026-06")]["battery_charge_ah"] == pytest.approx(exact["battery_charge_ah"])

    migrate.upgrade(path)
    # Filled as an estimate (Ah × mid voltage) and marked for a rebuild...
    row = daily(path)[("epever", "2026-06-10")]
    mid = (row["battery_voltage_min"] + row["battery_voltage_max"]) / 2
    assert row["battery_charge_kwh"] == pytest.approx(row["battery_charge_ah"] * mid / 1000)
    assert row["battery_discharge_kwh"] == 0.0
    store = Store(path, rollups=settings)
    try:
        with store.db.reading("t") as db:
            assert read_meta(db, META_TIMEZONE).startswith("mixed:")
        # ...which the collector's start (ensure_built) does: the exact figures again.
        assert ensure_built(store, settings) is not None
        with store.db.reading("t") as db:
            assert read_meta(db, META_TIMEZONE) == PARIS
    finally:
        store.close()
    again = daily(path)[("epever", "2026-06-10")]
    assert again["battery_charge_kwh"] == pytest.approx(exact["battery_charge_kwh"], rel=1e-12)
    assert monthly(path)[("epever", "2026-06")]["battery_charge_kwh"] == pytest.approx(exact["battery_charge_kwh"])
    assert again["version"] > exact["version"]  # replicated again, with the new fields
