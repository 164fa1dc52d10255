"""The simulator's model over simulated days: encodable values, physics, counters, determinism, speed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_store.catalogue.epever_tracer import REGISTERS as EPEVER_TRACER
from edge_store.registers import encode
from edge_store.simulator.model import BOOST, FLOAT, NO_CHARGING, SolarDay

START = "2024-06-21T10:00:00+00:00"
ZONE = "Europe/Berlin"

class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def model_at(start: datetime, tz: str = "UTC", seed: int = 1) -> tuple[SolarDay, FakeClock]:
    clock = FakeClock()
    return SolarDay(seed=seed, start=start, speed=1.0, tz=ZoneInfo(tz), clock=clock), clock


def local_moment(model: SolarDay, clock: FakeClock, when: datetime) -> dict:
    """The snapshot at a device-local wall-clock time (naive `when` in the model's zone)."""
    clock.now = (when.replace(tzinfo=model.tz) - model.start).total_seconds()
    return model.snapshot()


# -- the model -------------------------------------------------------------------


@pytest.mark.parametrize("start, tz", [
    (datetime(2024, 6, 18, tzinfo=timezone.utc), "Europe/Berlin"),
    (datetime(2024, 12, 28, tzinfo=timezone.utc), "America/New_York"),
    (datetime(2025, 3, 28, tzinfo=timezone.utc), "Europe/Berlin"),  # across a DST change
])
def test_model_values_are_encodable_and_inside_register_bounds_for_days(start, tz):
    model, clock = model_at(start, tz)
    for minute in range(0, 6 * 24 * 60, 7):
        clock.now = minute * 60.0
        snap = model.snapshot()
        assert set(snap) >= {r.name for r in EPEVER_TRACER}
        for reg in EPEVER_TRACER:
            value = snap[reg.name]
            encode(reg, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert reg.low is None or value >= reg.low, (reg.name, value)
                assert reg.high is None or value <= reg.high, (reg.name, value)
        assert snap["battery_power"] >= 0
        assert snap["consumed_today"] <= snap["consumed_this_month"] <= snap["total_consumed"]
        assert snap["generated_today"] <= snap["generated_this_year"] <= snap["total_generated"]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), zone=st.sampled_from(["UTC", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]),
       start=st.datetimes(datetime(2001, 1, 1), datetime(2098, 12, 1), timezones=st.just(timezone.utc)))
def test_any_seed_start_and_zone_stays_encodable_and_in_bounds(seed, zone, start):
    model, clock = model_at(start, zone, seed)
    for minute in range(0, 2 * 24 * 60, 23):
        clock.now = minute * 60.0
        snap = model.snapshot()
        for reg in EPEVER_TRACER:
            value = snap[reg.name]
            encode(reg, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert (reg.low is None or value >= reg.low) and (reg.high is None or value <= reg.high), reg.name


def test_pv_current_is_zero_at_night_and_positive_at_noon():
    model, clock = model_at(datetime(2024, 6, 18, tzinfo=timezone.utc), ZONE)
    for day in (18, 19, 20):
        night = local_moment(model, clock, datetime(2024, 6, day, 1, 30))
        assert night["pv_current"] == 0 and night["pv_power"] == 0
        assert night["night"] is True
        assert (night["charging_equipment_status"] >> 2) & 3 == NO_CHARGING
        assert night["charging_equipment_status"] >> 14 == 1  # NO_INPUT_POWER
        assert night["battery_current"] < 0  # the load runs on the battery
        noon = local_moment(model, clock, datetime(2024, 6, day, 13, 0))
        assert noon["pv_current"] > 0 and noon["pv_voltage"] > noon["battery_voltage"]
        assert noon["night"] is False
        assert (noon["charging_equipment_status"] >> 2) & 3 in (BOOST, FLOAT)
        assert noon["charging_equipment_status"] & 1 == 1


def test_soc_rises_by_day_and_falls_at_night():
    model, clock = model_at(datetime(2024, 6, 20, tzinfo=timezone.utc))
    morning = local_moment(model, clock, datetime(2024, 6, 20, 5, 0))
    midday = local_moment(model, clock, datetime(2024, 6, 20, 11, 0))
    assert midday["state_of_charge"] > morning["state_of_charge"]
    assert midday["battery_current"] > 0
    evening = local_moment(model, clock, datetime(2024, 6, 20, 21, 0))
    dawn = local_moment(model, clock, datetime(2024, 6, 21, 3, 30))
    assert dawn["state_of_charge"] < evening["state_of_charge"]
    assert dawn["battery_voltage"] < midday["battery_voltage"]


def test_battery_nearly_full_floats_and_a_drained_one_reports_under_voltage():
    seen_float = seen_low = False
    model, clock = model_at(datetime(2024, 6, 20, tzinfo=timezone.utc))
    for hour in range(24 * 3):
        clock.now = hour * 3600.0
        snap = model.snapshot()
        seen_float |= (snap["charging_equipment_status"] >> 2) & 3 == FLOAT and snap["state_of_charge"] >= 97
    model, clock = model_at(datetime(2024, 12, 1, tzinfo=timezone.utc), seed=1)
    for hour in range(24 * 30):
        clock.now = hour * 3600.0
        snap = model.snapshot()
        if snap["battery_status"] & 0xF in (2, 3):  # UNDER_VOLTAGE, OVER_DISCHARGE
            seen_low = True
            assert snap["battery_voltage"] < 12.0
    assert seen_float and seen_low


def test_energy_counters_and_daily_extremes_reset_at_the_device_midnight():
    # New York is UTC-4 in June: UTC midnight is 20:00 on the device and must not reset anything.
    model, clock = model_at(datetime(2024, 6, 20, 12, tzinfo=timezone.utc), "America/New_York")
    before_utc = local_moment(model, clock, datetime(2024, 6, 20, 19, 50))
    after_utc = local_moment(model, clock, datetime(2024, 6, 20, 20, 10))
    assert after_utc["consumed_today"] > before_utc["consumed_today"] > 0
    late = local_moment(model, clock, datetime(2024, 6, 20, 23, 59))
    early = local_moment(model, clock, datetime(2024, 6, 21, 0, 1))
    assert late["consumed_today"] > 0.2 and late["generated_today"] > 0.2
    assert early["consumed_today"] < 0.01 and early["generated_today"] == 0
    assert early["maximum_pv_voltage_today"] == 0 and late["maximum_pv_voltage_today"] > 15
    assert early["consumed_this_month"] >= late["consumed_this_month"]  # same month: keeps counting
    assert early["device_time"] == datetime(2024, 6, 21, 0, 1)


def test_month_and_year_counters_reset_at_the_device_new_year():
    model, clock = model_at(datetime(2024, 12, 31, 12, tzinfo=timezone.utc), ZONE)
    old = local_moment(model, clock, datetime(2024, 12, 31, 23, 58))
    new = local_moment(model, clock, datetime(2025, 1, 1, 0, 2))
    assert old["generated_this_year"] > 300 and old["consumed_this_month"] > 10
    for name in ("consumed_this_month", "consumed_this_year", "generated_this_month", "generated_this_year"):
        assert new[name] < 0.01, name
    assert new["total_consumed"] > old["total_consumed"]
    assert new["total_generated"] >= old["total_generated"]


def test_model_is_deterministic_for_a_seed_whatever_the_polling():
    start = datetime(2024, 4, 2, 6, tzinfo=timezone.utc)
    often, often_clock = model_at(start, ZONE, seed=5)
    once, once_clock = model_at(start, ZONE, seed=5)
    other, other_clock = model_at(start, ZONE, seed=6)
    for second in range(0, 2 * 86400, 137):
        often_clock.now = second
        often.snapshot()
    for clock in (often_clock, once_clock, other_clock):
        clock.now = 2 * 86400 + 0.5
    assert often.snapshot() == once.snapshot()
    assert other.snapshot() != once.snapshot()
    assert once.sim_time == start + timedelta(days=2, seconds=0.5)


def test_speed_zero_freezes_every_value():
    clock = FakeClock()
    model = SolarDay(seed=2, start=datetime.fromisoformat(START), speed=0, tz=ZoneInfo(ZONE), clock=clock)
    first = model.snapshot()
    clock.now = 5000.0
    assert model.snapshot() == first
    assert first["device_time"] == datetime(2024, 6, 21, 12, 0)  # 10:00 UTC is noon in Berlin


def test_speed_scales_simulated_time():
    clock = FakeClock()
    model = SolarDay(start=datetime.fromisoformat(START), speed=600, clock=clock)
    clock.now = 6.0
    assert model.sim_time == datetime.fromisoformat(START) + timedelta(hours=1)
    assert model.snapshot()["device_time"] == datetime(2024, 6, 21, 11, 0)
