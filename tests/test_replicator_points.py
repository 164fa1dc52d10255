"""Rows to points: the measurements, fields and types of spec/influx.md, serialised by influxdb-client."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point

from tests import status_words as status
from edge_store.registers import LIVE, SETTINGS, STATS, registers_of
from replicator import line_protocol, points
from replicator.points import (
    BOOLEAN,
    CLOCK_STREAM,
    DAILY_STREAM,
    FLOAT,
    LIVE_STREAM,
    MEASUREMENTS,
    MONTHLY_STREAM,
    SETTINGS_STREAM,
    STATS_STREAM,
    STRING,
    Renderer,
)
from tests.samples import LIVE_VALUES

F, B, S = FLOAT, BOOLEAN, STRING

# The types, decided once. Changing one of these is a field type conflict in every
# existing bucket: it takes a new field name, never an edit here.
PINNED_TYPES = {
    "batteryStatus": dict(voltage=F, current=F, power=F, state_of_charge=F, temperature=F,
                          wrong_identifaction_for_rated_voltage=B, battery_inner_resistence_abnormal=B,
                          temperature_warning_status=S, battery_status=S, real_rated_voltage=F),
    "solarData": dict(voltage=F, current=F, power=F, maximum_voltage_today=F, minimum_voltage_today=F),
    "loadData": dict(voltage=F, current=F, power=F),
    "controllerData": dict(temperature=F, device_over_temperature=B, current_device_time=S),
    "chargingEquipmentStatus": dict(
        input_voltage_status=S, charging_status=S, running=B, fault=B, charging_mosfet_short_circuit=B,
        charging_or_anti_reverse_mosfet_open_circuit=B, anti_reverse_mosfet_short_circuit=B, input_over_current=B,
        load_over_current=B, load_short_circuit=B, load_mosfet_short_circuit=B, disequilibrium_in_three_circuits=B,
        pv_input_short_circuit=B),
    "dischargingEquipmentStatus": dict(
        input_voltage_status=S, output_power_load=S, running=B, fault=B, short_circuit=B, unable_to_discharge=B,
        unable_to_stop_discharging=B, output_voltage_abnormal=B, input_over_voltage=B,
        short_circuit_high_voltage_side=B, boost_over_voltage=B, output_over_voltage=B),
    "dailyStatistics": dict(maximum_battery_voltage_today=F, minimum_battery_voltage_today=F, day_time=B, night_time=B),
    "energyStatistics": dict(consumed_today=F, consumed_this_month=F, consumed_this_year=F, total_consumed=F,
                             generated_today=F, generated_this_month=F, generated_this_year=F, total_generated=F),
    "batteryParameters": dict(
        rated_charging_current=F, rated_load_current=F, battery_rated_voltage=S, battery_type=S, battery_capacity=F,
        temp_compensation_coefficient=F, over_voltage_disconnect=F, charging_limit_voltage=F,
        over_voltage_reconnect=F, equalize_charging_voltage=F, boost_charging_voltage=F, float_charging_voltage=F,
        boost_reconnect_voltage=F, low_voltage_reconnect=F, under_voltage_recover=F, under_voltage_warning=F,
        low_voltage_disconnect=F, discharging_limit_voltage=F, default_load_mode=S, equalize_duration=F,
        boost_duration=F, battery_discharge=F, battery_charge=F, charging_mode=S),
    "rollup_daily": dict(date=S, **{k: F for k in (
        "battery_voltage_min", "battery_voltage_max", "pv_voltage_min", "pv_voltage_max", "soc_min", "soc_max",
        "battery_temperature_min", "battery_temperature_max", "energy_generated_kwh", "energy_consumed_kwh",
        "battery_charge_ah", "battery_discharge_ah", "battery_charge_kwh", "battery_discharge_kwh",
        "samples", "covered_s", "device_generated_kwh",
        "device_consumed_kwh")}),
}
PINNED_TYPES["rollup_monthly"] = {("month" if k == "date" else k): v for k, v in PINNED_TYPES["rollup_daily"].items()}

# The `alerts` measurement agreed for issue 13 (its tags: site, device, rule, severity, state).
PINNED_TYPES["alerts"] = dict(value=F, threshold=F, event_id="integer", message=S)

PYTHON_TYPE = {FLOAT: float, BOOLEAN: bool, STRING: str, "integer": int}

STATS_VALUES = {r.name: 1.0 + i for i, r in enumerate(registers_of(STATS))}
SETTINGS_VALUES = {r.name: (2 if r.kind == "enum" else 100 if r.divisor == 1 else 14.4) for r in registers_of(SETTINGS)}
CLOCK_VALUES = {"device_time": "2026-06-21 12:00:00"}
ROLLUP_VALUES = dict(
    device="epever", timezone="Europe/Paris", start_ms=1_782_079_200_000, end_ms=1_782_165_600_000,
    battery_voltage_min=12.1, battery_voltage_max=14.4, pv_voltage_min=0.0, pv_voltage_max=21.5, soc_min=40.0,
    soc_max=100.0, battery_temperature_min=None, battery_temperature_max=None, energy_generated_kwh=1.234,
    energy_consumed_kwh=0.5, battery_charge_ah=80.0, battery_discharge_ah=40.5, battery_charge_kwh=1.05,
    battery_discharge_kwh=0.49, samples=17280, first_ts_ms=1,
    last_ts_ms=2, covered_ms=86_395_000, device_generated_kwh=1.25, device_consumed_kwh=0.49,
    device_stats_ts_ms=3, version=7,
)


def row(values, **extra):
    return {"id": 1, "ts_ms": 1_764_000_000_123, "ntp_synced": True, "device": "epever", **values, **extra}


ROWS = {
    LIVE_STREAM: row(LIVE_VALUES),
    STATS_STREAM: row(STATS_VALUES),
    SETTINGS_STREAM: row(SETTINGS_VALUES),
    CLOCK_STREAM: row(CLOCK_VALUES),
    DAILY_STREAM: dict(ROLLUP_VALUES, day="2026-06-21"),
    MONTHLY_STREAM: dict(ROLLUP_VALUES, month="2026-06"),
    points.ALERTS_STREAM: dict(id=7, ts_ms=1_764_000_000_123, rule="battery_voltage_low", device="epever",
                               severity="critical", state="firing", value=11.5, threshold=11.8,
                               message="battery_voltage_low on epever: battery.voltage = 11.5 is below 11.8"),
}


def test_an_alert_event_is_one_point_tagged_with_its_rule_severity_and_state():
    r = points.Renderer("van")
    [line] = r.lines(points.ALERTS_STREAM, ROWS[points.ALERTS_STREAM])
    assert line.startswith("alerts,device=epever,rule=battery_voltage_low,severity=critical,site=van,state=firing "
                           "event_id=7i,")
    assert line.endswith(" 1764000000123") and [line] == [p.to_line_protocol() for p in
                                                          r.points(points.ALERTS_STREAM, ROWS[points.ALERTS_STREAM])]


def test_field_types_are_pinned_and_one_per_field():
    assert points.field_types() == PINNED_TYPES


def test_every_point_carries_exactly_its_declared_fields_with_their_python_types():
    for stream, measurements in MEASUREMENTS.items():
        for m in measurements:
            fields = m.fields(*m.args(ROWS[stream]))
            assert set(fields) == set(m.types), (stream, m.name)
            for name, value in fields.items():
                if value is not None:
                    assert type(value) is PYTHON_TYPE[m.types[name]], (m.name, name, value)


def test_a_measurement_fed_by_two_streams_gets_disjoint_fields_from_each():
    # Rows of two groups polled in the same millisecond land on one point: their fields merge, never clash.
    seen: dict[str, set] = {}
    for measurements in MEASUREMENTS.values():
        for m in measurements:
            assert not seen.get(m.name, set()) & set(m.types), m.name
            seen.setdefault(m.name, set()).update(m.types)


def test_every_measurement_of_the_spec_is_produced():
    names = {m.name for ms in MEASUREMENTS.values() for m in ms}
    assert names == set(PINNED_TYPES)


def test_integers_from_the_store_go_out_as_floats_never_as_influx_integers():
    # state_of_charge and battery_capacity are INTEGER columns; 54.0 W is a whole number.
    renderer = Renderer("van")
    lines = renderer.lines(LIVE_STREAM, ROWS[LIVE_STREAM]) + renderer.lines(SETTINGS_STREAM, ROWS[SETTINGS_STREAM])
    text = "\n".join(lines)
    assert "state_of_charge=80," in text or "state_of_charge=80 " in text
    assert "power=54," in text  # influxdb-client writes the float 54.0 as `54`: a float in line protocol
    assert "battery_capacity=100," in text
    assert not re.search(r"=-?\d+i[, ]", text), "an integer field slipped out"


def test_a_live_row_yields_its_seven_points_decoded_and_flattened():
    live = dict(ROWS[LIVE_STREAM], charging_equipment_status=(1 << 13) | (2 << 2) | 1, night=True,
                discharging_equipment_status=(1 << 11) | (3 << 12), battery_status=(1 << 8) | (1 << 4) | 2)
    got = {m.name: m.fields(*m.args(live)) for m in MEASUREMENTS[LIVE_STREAM]}
    assert got["batteryStatus"] == {
        "voltage": 13.1, "current": -1.5, "power": 54.0, "state_of_charge": 80.0, "temperature": -3.5,
        "wrong_identifaction_for_rated_voltage": False, "battery_inner_resistence_abnormal": True,
        "temperature_warning_status": "OVER_TEMP", "battery_status": "UNDER_VOLTAGE", "real_rated_voltage": 12.0}
    assert got["solarData"] == {"voltage": 18.2, "current": 3.1, "power": 56.42}
    assert got["loadData"] == {"voltage": 13.1, "current": 1.0, "power": 13.1}
    assert got["controllerData"] == {"temperature": 25.0, "device_over_temperature": False}
    charging = got["chargingEquipmentStatus"]
    assert charging["charging_status"] == "BOOST" and charging["running"] is True
    assert charging["charging_mosfet_short_circuit"] is True and charging["load_short_circuit"] is False
    discharging = got["dischargingEquipmentStatus"]
    assert discharging["output_power_load"] == "OVERLOAD" and discharging["short_circuit"] is True
    assert got["dailyStatistics"] == {"day_time": False, "night_time": True}


def test_slow_groups_and_rollups_yield_their_measurements():
    r = Renderer("van")
    stats = {m.name: m.fields(*m.args(ROWS[STATS_STREAM])) for m in MEASUREMENTS[STATS_STREAM]}
    assert stats["solarData"] == {"maximum_voltage_today": 1.0, "minimum_voltage_today": 2.0}
    assert stats["dailyStatistics"] == {"maximum_battery_voltage_today": 3.0, "minimum_battery_voltage_today": 4.0}
    assert stats["energyStatistics"]["total_generated"] == 12.0
    params = MEASUREMENTS[SETTINGS_STREAM][0].fields(*MEASUREMENTS[SETTINGS_STREAM][0].args(ROWS[SETTINGS_STREAM]))
    assert params["battery_type"] == "GEL" and params["battery_rated_voltage"] == "24V"
    assert params["default_load_mode"] == status.enum_name("default_load_mode", 2)
    assert params["float_charging_voltage"] == 14.4 and params["battery_capacity"] == 100.0
    assert r.lines(CLOCK_STREAM, ROWS[CLOCK_STREAM]) == [
        'controllerData,device=epever,site=van current_device_time="2026-06-21 12:00:00" 1764000000123']
    (daily,) = r.lines(DAILY_STREAM, ROWS[DAILY_STREAM])
    assert daily.startswith('rollup_daily,device=epever,site=van ') and daily.endswith(" 1782079200000")
    assert 'date="2026-06-21"' in daily and "covered_s=86395," in daily and "samples=17280," in daily
    assert "battery_temperature_min" not in daily  # NULL: no field, never a made-up value
    (monthly,) = r.lines(MONTHLY_STREAM, ROWS[MONTHLY_STREAM])
    assert 'month="2026-06"' in monthly


# -- the fast path is the client's serialisation, byte for byte ------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 13.0, 1e21, 1e-7, 12.35])
optional_floats = st.none() | floats
words = st.integers(0, 0xFFFF)


def live_rows():
    fields = {}
    for reg in registers_of(LIVE):
        if reg.kind == "bool":
            fields[reg.name] = st.booleans() | st.sampled_from([0, 1])  # sqlite hands back 0/1
        elif reg.kind == "bits":
            fields[reg.name] = words
        elif reg.optional:
            fields[reg.name] = optional_floats
        elif reg.is_float:
            fields[reg.name] = floats
        else:
            fields[reg.name] = st.integers(0, 100) | floats
    return st.fixed_dictionaries({"device": names, "ts_ms": st.integers(0, 2**53), "id": st.integers(1, 10**9),
                                  **fields})


def settings_rows():
    fields = {r.name: (st.integers(0, 15) if r.kind == "enum" else floats | st.integers(0, 0xFFFF))
              for r in registers_of(SETTINGS)}
    return st.fixed_dictionaries({"device": names, "ts_ms": st.integers(0, 2**53), **fields})


def clock_rows():
    return st.fixed_dictionaries({"device": names, "ts_ms": st.integers(0, 2**53), "device_time": names})


def reference(renderer, stream, r):
    return [line for line in (p.to_line_protocol() for p in renderer.points(stream, r)) if line]


@settings(max_examples=300, deadline=None)
@given(site=names, rows=st.lists(live_rows(), min_size=1, max_size=4))
def test_live_lines_equal_influxdb_client_point_serialisation(site, rows):
    renderer = Renderer(site)
    for r in rows:  # several rows: the caches must never hand back another row's text
        assert renderer.lines(LIVE_STREAM, r) == reference(renderer, LIVE_STREAM, r)


@settings(max_examples=100, deadline=None)
@given(site=names, settings_row=settings_rows(), clock=clock_rows(),
       stats=st.fixed_dictionaries({"device": names, "ts_ms": st.integers(0, 2**53),
                                    **{r.name: floats for r in registers_of(STATS)}}))
def test_slow_group_lines_equal_influxdb_client_point_serialisation(site, settings_row, clock, stats):
    renderer = Renderer(site)
    assert renderer.lines(SETTINGS_STREAM, settings_row) == reference(renderer, SETTINGS_STREAM, settings_row)
    assert renderer.lines(CLOCK_STREAM, clock) == reference(renderer, CLOCK_STREAM, clock)
    assert renderer.lines(STATS_STREAM, stats) == reference(renderer, STATS_STREAM, stats)


def test_negative_zero_and_non_finite_values():
    r = Renderer("van")
    live = dict(ROWS[LIVE_STREAM], battery_current=-0.0, pv_power=math.nan, load_power=math.inf)
    lines = r.lines(LIVE_STREAM, live)
    assert lines == reference(r, LIVE_STREAM, live)
    assert "current=0," in lines[0]  # -0.0 A is written as the one zero
    solar = next(line for line in lines if line.startswith("solarData"))
    assert "power" not in solar  # NaN has no line protocol: the field is left out, as the client does


# -- our serialiser is influxdb-client's, byte for byte, on any text and value ---------------

field_values = floats | st.booleans() | st.integers(-2**63, 2**63 - 1) | names | st.none()


@settings(max_examples=300, deadline=None)
@given(measurement=names.filter(lambda n: not n.startswith("#")),  # a comment line: the client warns
       tags=st.dictionaries(names, names | st.none(), max_size=3),
       fields=st.dictionaries(names, field_values, max_size=5), ts=st.none() | st.integers(0, 2**62))
def test_line_protocol_text_equals_point_to_line_protocol(measurement, tags, fields, ts):
    point = Point(measurement)
    for k, v in tags.items():
        point.tag(k, v)
    for k, v in fields.items():
        point.field(k, v)
    if ts is not None:
        point.time(ts, points.PRECISION)
    text = line_protocol.fields_text(fields)
    ours = (line_protocol.measurement_text(measurement) + line_protocol.tags_text(tags) + text
            + line_protocol.time_text(ts)) if text else ""
    assert ours == point.to_line_protocol()
