"""The measurement catalogue: each register once, each stored column and InfluxDB field described once,
one type per InfluxDB field, the contract's objects in the contract's order, and the code reading it."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from api.families import family
from edge_store import schema
from edge_store.catalogue import BOOLEAN, EPEVER_TRACER, FLOAT, INTEGER, MODELS, STRING
from edge_store.catalogue.epever_tracer import BATTERY_STATE, CHARGING_STAGE, CHARGING_WORD
from edge_store.catalogue.rollup_figures import FIGURES, answer_row
from edge_store.registers import GROUPS, LIVE, registers_of
from replicator import points
from tests.samples import LIVE_VALUES

CAT = EPEVER_TRACER
BOOKKEEPING = {"id", "ts_ms", "ntp_synced", "device"}

# The objects of shared/spec/api.md, keys in the contract's order.
CONTRACT = {
    "battery": ["voltage", "current", "power", "state_of_charge", "temperature", "status.wrong_identifaction_for_rated_voltage",
                "status.battery_inner_resistence_abnormal", "status.temperature_warning_status", "status.battery_status"],
    "solar": ["voltage", "current", "power", "maximum_voltage_today", "minimum_voltage_today"],
    "load": ["voltage", "current", "power"],
    "controller": ["temperature", "device_over_temperature", "current_device_time"],
    "charging": ["input_voltage_status", "charging_status", "running", "fault", *(f"errors.{k}" for k in (
        "charging_mosfet_short_circuit", "charging_or_anti_reverse_mosfet_open_circuit",
        "anti_reverse_mosfet_short_circuit", "input_over_current", "load_over_current", "load_short_circuit",
        "load_mosfet_short_circuit", "disequilibrium_in_three_circuits", "pv_input_short_circuit"))],
    "discharging": ["input_voltage_status", "output_power_load", "running", "fault", *(f"errors.{k}" for k in (
        "short_circuit", "unable_to_discharge", "unable_to_stop_discharging", "output_voltage_abnormal",
        "input_over_voltage", "short_circuit_high_voltage_side", "boost_over_voltage", "output_over_voltage"))],
    "parameters": [
        "rated_charging_current", "rated_load_current", "real_rated_voltage", "battery_rated_voltage", "battery_type",
        "battery_capacity", "temp_compensation_coefficient", "over_voltage_disconnect", "charging_limit_voltage",
        "over_voltage_reconnect", "equalize_charging_voltage", "boost_charging_voltage", "float_charging_voltage",
        "boost_reconnect_voltage", "low_voltage_reconnect", "under_voltage_recover", "under_voltage_warning",
        "low_voltage_disconnect", "discharging_limit_voltage", "default_load_mode", "equalize_duration",
        "boost_duration", "battery_discharge", "battery_charge", "charging_mode"],
    "daily": ["maximum_battery_voltage_today", "minimum_battery_voltage_today", "day_time", "night_time"],
    "energy": ["consumed_today", "consumed_this_month", "consumed_this_year", "total_consumed", "generated_today",
               "generated_this_month", "generated_this_year", "total_generated"],
    "breadcrumb": ["day_time", "current_device_time"],
}


def test_every_register_appears_once_and_every_register_is_described_by_a_field():
    names = [r.name for r in CAT.registers]
    assert len(names) == len(set(names))
    places = Counter((r.table, r.address) for r in CAT.registers)
    assert not [p for p, n in places.items() if n > 1], "two registers at one address"
    assert sorted(r.name for g in GROUPS for r in registers_of(g, CAT.registers)) == sorted(names)
    assert {f.column for f in CAT.fields} == set(names)


def test_every_column_of_the_sample_tables_has_a_catalogue_field():
    # The tables hold every model's columns (edge_store/catalogue/__init__.py); each is described.
    described = {f.column for cat in MODELS.values() for f in cat.fields}
    for group, table in schema.sample_tables.items():
        columns = {c.name for c in table.columns} - BOOKKEEPING
        assert columns == {c.name for cat in MODELS.values() for c in cat.columns(group)}, group
        assert {r.name for r in registers_of(group, CAT.registers)} <= columns, group
        assert columns <= described, (group, columns - described)


def test_every_influxdb_field_has_one_type_and_one_catalogue_field():
    seen: dict[tuple[str, str], str] = {}
    for f in CAT.fields:
        if f.measurement is None:
            continue
        key = (f.measurement, f.influx)
        assert key not in seen, f"{key} is written by two fields"
        seen[key] = f.influx_type
    assert all(t in (FLOAT, BOOLEAN, STRING) for t in seen.values())
    # ... and the renderer writes exactly those, with those types (the rollups besides).
    rendered = {(m, name): t for m, fields in points.field_types().items() for name, t in fields.items()
                if not m.startswith("rollup_") and m != "alerts"}
    assert rendered == seen
    # The alert events are no catalogue field: the shape the fleet and Grafana read (issue 13).
    assert points.field_types()["alerts"] == {"value": FLOAT, "threshold": FLOAT, "event_id": "integer",
                                              "message": STRING}
    assert points.field_types()["rollup_daily"] == {"date": STRING, **{f.name: FLOAT for f in FIGURES}}


def test_numbers_are_floats_in_influxdb_whatever_the_api_answers():
    for f in CAT.fields:
        if f.type in (FLOAT, INTEGER):
            assert f.influx_type == FLOAT, f.key


def test_api_objects_are_the_contracts_in_its_order():
    assert set(CAT.objects()) == set(CONTRACT)
    for obj, keys in CONTRACT.items():
        assert [f.key for f in CAT.object_fields(obj)] == keys, obj


def test_every_object_has_one_measurement_per_register_group():
    for obj in CAT.objects():
        parts = family(obj, obj).parts
        assert len({p.group for p in parts}) == len(parts), obj
        assert parts[0].group == CAT.group(CAT.object_fields(obj)[0])


def test_the_object_from_a_row_equals_the_object_from_its_influxdb_fields():
    row = dict(LIVE_VALUES, battery_status=(1 << 15) | (2 << 4) | 1, charging_equipment_status=(3 << 14) | (1 << 6) | 5,
               discharging_equipment_status=(2 << 12) | (1 << 5) | 3)
    records = {}
    for m in points.MEASUREMENTS[points.LIVE_STREAM]:
        records.setdefault(m.name, {}).update(m.fields(*m.args(row)))
    for obj in ("battery", "solar", "load", "controller", "charging", "discharging", "parameters"):
        fam = family(obj, obj)
        rows = {p.group: row if p.group == LIVE else None for p in fam.parts}
        recs = {p.group: records[p.measurement] if p.group == LIVE else None for p in fam.parts}
        assert fam.from_rows(rows) == fam.from_records(recs), obj


def test_minute_buckets_keep_the_columns_the_catalogue_marks():
    assert schema.MINUTE_METRICS == CAT.minute_columns()
    assert all(CAT.register(c).group == LIVE for c in schema.MINUTE_METRICS)
    assert {f.series for f in CAT.fields if f.series} >= {"battery voltage", "PV power", "state of charge"}


@pytest.mark.parametrize("column", ["battery_status", "charging_equipment_status", "discharging_equipment_status"])
def test_a_status_word_encoded_from_names_decodes_to_them(column):
    fields = CAT.column_fields(column)
    for f in fields:
        values = sorted(set(f.meanings.values())) if f.meanings else [True, False]
        for value in values:
            word = CAT.word(column, **{f.name: value})
            assert f.decode()(word) == value, (f.key, value)
            others = [g for g in fields if g is not f and g.type == BOOLEAN]
            assert not any(g.decode()(word) for g in others), (f.key, value)


def test_unknown_codes_are_named_not_refused():
    assert CAT.enum_name("default_load_mode", 9) == "UNKNOWN_9"
    assert CAT.field("battery", "status.battery_status").decode()(0x000F) == "UNKNOWN_15"


def test_the_sqlite_field_views_name_codes_as_the_catalogue_does(store, db_path):
    # v_latest (migration 0001) spells the battery state and charging stage in SQL: it must agree.
    state, stage = CAT.field("battery", "status.battery_status"), CAT.field("charging", "charging_status")
    for n, (code, name) in enumerate(BATTERY_STATE.items()):
        stage_code = n % len(CHARGING_STAGE)
        store.insert_sample(LIVE, 1_000 + n, True, "epever", dict(
            LIVE_VALUES, battery_status=code, charging_equipment_status=CAT.word(CHARGING_WORD, charging_status=stage_code)))
        with sqlite3.connect(db_path) as conn:
            got = conn.execute("SELECT battery_state, charging_stage FROM v_latest").fetchone()
        assert got == (name, CHARGING_STAGE[stage_code])
        assert got == (state.decode()(code), stage.decode()(stage_code << 2))


def test_a_rollup_row_is_answered_as_each_figure_answers_it():
    rows = [
        {f.column: None for f in FIGURES},
        {f.column: (1234567 if f.column == "covered_ms" else 7 if f.name == "samples" else 12.3456789) for f in FIGURES},
        {f.column: (0 if f.name == "samples" else -0.0004) for f in FIGURES},
    ]
    for row in rows:
        want = {f.name: f.answer(f.stored(row)) for f in FIGURES}
        got = answer_row(row, {})
        assert got == want and list(got) == list(want)
        assert all(type(got[k]) is type(want[k]) for k in want), (got, want)
