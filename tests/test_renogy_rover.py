"""The Renogy Rover as data: every value of shared/spec/renogy-rover.md decoded from hand-computed register
words, the derived columns, and the one vocabulary (null in the API, absent from InfluxDB where it lacks one)."""

from __future__ import annotations

import pytest

from api.families import family
from api.sources import CloudSource, LocalSource
from edge_store.catalogue import EPEVER_TRACER, MODELS, RENOGY_ROVER, Catalogue, absent, check_vocabulary
from edge_store.catalogue.renogy_rover import serial_text, version_text
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS, decode_block, plan_blocks, registers_of
from edge_store.schema import MINUTE_METRICS
from edge_store.status_report import live_lines
from replicator.influxql import InfluxQLReader
from replicator.points import Renderer
from tests.fixtures_influx import SITE, replicator_on, v1

R = RENOGY_ROVER

# The words a Rover serves, per block, computed by hand from the spec's table.
WORDS = {
    (SETTINGS, 0x000A): [
        0x1828,  # 0x000A hi 24 V max system voltage, lo 40 A rated charging current
        0x1400,  # 0x000B hi 20 A rated load current, lo 0 controller
        0x2020, 0x524E, 0x472D, 0x4354, 0x524C, 0x2D52, 0x5652, 0x3430,  # "  RNG-CTRL-RVR40"
        0x0003, 0x0201,  # software V03.02.01
        0x0001, 0x0000,  # hardware V01.00.00
        0x1501, 0xFFFF,  # serial 1501FFFF
        0x0001,  # 0x001A lo: unit 1
    ],
    (SETTINGS, 0xE002): [
        200,  # E002 battery capacity Ah
        0xFF0C,  # E003 hi: automatic, lo: 12 V recognised
        3,  # E004 gel
        160, 155, 146, 144, 138, 132, 126, 120, 111, 106,  # E005-E00E, 0.1 V
        0x6414,  # E00F hi 100 %, lo 20 %
        5, 60, 120, 30, 5,  # E010 delay s, E011 equalize min, E012 boost min, E013 interval d, E014 mV/°C/2V
    ],
    (LIVE, 0x0100): [
        85, 131, 1234,  # 0x0100 SOC %, battery 13.1 V, charging 12.34 A
        0x1F8A,  # 0x0103 controller 31 °C, battery 0x8A = -10 °C (sign-magnitude)
        130, 250, 33,  # load 13.0 V 2.50 A 33 W
        187, 850, 159,  # PV 18.7 V 8.50 A 159 W
        0,  # 0x010A write-only load switch
        *([0xEEEE] * 21),  # 0x010B-0x011F: the statistics, not decoded with the live group
        0xE405,  # 0x0120 hi: load on, 100 %; lo: 5 float
        0x0021, 0x0000,  # 0x0121 B21 controller temperature high, B16 over-discharge
    ],
    (STATS, 0x010B): [
        121, 144, 1550, 420, 220, 55,  # min/max battery V, max charging/discharging A, max W
        35, 12, 456, 160,  # Ah today, Wh today
        410, 3, 97,  # operating days, over-discharges, full charges
        0x0001, 0x2345,  # total charged Ah: 74565, a non-zero high word
        0x0000, 0x5000,  # total discharged Ah: 20480
        0x0002, 0x0010,  # total generated Wh: 131088
        0x0000, 0xC350,  # total consumed Wh: 50000
    ],
}

EXPECTED = {
    SETTINGS: dict(
        max_system_voltage=24, rated_charging_current=40, rated_load_current=20, product_type=0,
        device_model="RNG-CTRL-RVR40", software_version=0x00030201, hardware_version=0x00010000,
        serial_number=0x1501FFFF, device_address=1, battery_capacity=200, system_voltage_setting=255,
        recognized_voltage=12, renogy_battery_type=3, over_voltage_disconnect=16.0, charging_limit_voltage=15.5,
        equalize_charging_voltage=14.6, boost_charging_voltage=14.4, float_charging_voltage=13.8,
        boost_reconnect_voltage=13.2, low_voltage_reconnect=12.6, under_voltage_warning=12.0,
        low_voltage_disconnect=11.1, discharging_limit_voltage=10.6, end_of_charge_soc=100, end_of_discharge_soc=20,
        over_discharge_delay_s=5, equalize_duration=60, boost_duration=120, equalize_interval_days=30,
        temp_compensation_coefficient=5),
    LIVE: dict(
        state_of_charge=85, battery_voltage=13.1, charging_current=12.34, controller_temperature=31,
        battery_temperature=-10, load_voltage=13.0, load_current=2.5, load_power=33, pv_voltage=18.7,
        pv_current=8.5, pv_power=159, load_state=0xE4, charging_state=5, fault_bits=0x00210000),
    STATS: dict(
        minimum_battery_voltage_today=12.1, maximum_battery_voltage_today=14.4, maximum_charging_current_today=15.5,
        maximum_discharging_current_today=4.2, maximum_charging_power_today=220, maximum_discharging_power_today=55,
        charged_today_ah=35, discharged_today_ah=12, generated_today=0.456, consumed_today=0.16, operating_days=410,
        over_discharges=3, full_charges=97, total_charged_ah=74565, total_discharged_ah=20480,
        total_generated=131.088, total_consumed=50.0),
}
DERIVED = dict(battery_current=9.84, battery_power=161.65, device_over_temperature=True)


def decoded(group: str) -> dict:
    """A group read whole as the reader decodes it: its blocks, the derived columns."""
    values: dict = {}
    for block in plan_blocks(registers_of(group, R.registers), R.max_gap):
        values.update(decode_block(block, WORDS[(group, block.start)]))
    return R.derive(group, values)


def test_the_rover_reads_each_group_in_the_blocks_its_spec_advises_with_function_3():
    planned = {g: [b.label for b in plan_blocks(registers_of(g, R.registers), R.max_gap)] for g in R.groups()}
    assert planned == {LIVE: ["holding:0x0100+35"], STATS: ["holding:0x010B+21"],
                       SETTINGS: ["holding:0x000A+17", "holding:0xE002+19"]}
    assert CLOCK not in R.groups()  # no clock: never read


@pytest.mark.parametrize("group", [SETTINGS, LIVE, STATS])
def test_every_value_of_the_spec_decodes_from_hand_computed_words(group):
    got = decoded(group)
    want = {**EXPECTED[group], **(DERIVED if group == LIVE else {})}
    assert got == want
    assert {c.name for c in R.columns(group)} == set(want)  # every register of the spec, nothing else


@pytest.mark.parametrize("word,controller,battery", [(0x8519, -5, 25), (0x0085, 0, -5), (0xBC81, -60, -1)])
def test_a_temperature_byte_is_sign_magnitude_not_twos_complement(word, controller, battery):
    (block,) = plan_blocks([R.register("controller_temperature"), R.register("battery_temperature")])
    assert decode_block(block, [word]) == {"controller_temperature": controller, "battery_temperature": battery}


def test_versions_serial_and_codes_read_as_the_manuals_write_them():
    settings, live = decoded(SETTINGS), decoded(LIVE)
    assert version_text(settings["software_version"]) == "V03.02.01"
    assert serial_text(settings["serial_number"]) == "1501FFFF"
    own = {f.key: f.decode()(live[f.column]) for f in R.fields if f.column in ("load_state", "charging_state")}
    assert own == {"load_on": True, "load_brightness": 100.0, "charging_state": "FLOAT"}
    faults = R.decode_word("fault_bits", live["fault_bits"])["faults"]
    assert {k for k, v in faults.items() if v} == {"controller_temperature_high", "battery_over_discharge"}
    assert R.enum_name("renogy_battery_type", settings["renogy_battery_type"]) == "GEL"


def test_a_value_both_models_have_is_one_column_one_field_one_key():
    check_vocabulary()
    shared = [f for f in R.fields if f.objects]
    assert shared and all(f in EPEVER_TRACER.fields for f in shared)  # the Tracer's very lines
    assert R.register("generated_today").unit == EPEVER_TRACER.register("generated_today").unit == "kWh"
    assert absent(R, LIVE) == ("night", "remote_battery_temperature", "battery_real_rated_voltage", "battery_status",
                               "charging_equipment_status", "discharging_equipment_status")
    assert absent(EPEVER_TRACER, LIVE) == ("charging_current", "load_state", "charging_state", "fault_bits")


def test_two_models_giving_one_key_two_meanings_are_refused():
    twisted = tuple(f if f.key != "voltage" or "battery" not in f.objects else
                    type(f)(**{**f.__dict__, "column": "load_voltage"}) for f in R.fields)
    other = Catalogue("twisted", R.registers, twisted, derived=R.derived)
    with pytest.raises(ValueError, match="battery.voltage"):
        check_vocabulary({**MODELS, "twisted": other})


@pytest.fixture
def rover_rows(store):
    """A Rover's sample of each group stored through the real store; the rows as read back."""
    for group in R.groups():
        values = {**dict.fromkeys(absent(R, group)), **decoded(group)}
        store.insert_sample(group, 1_780_000_000_000, True, "rover", values)
    return {group: store.latest(group) for group in (LIVE, STATS, SETTINGS, CLOCK)}


def test_a_rover_sample_is_stored_with_null_where_it_lacks_a_value_and_a_partial_one_is_refused(store, rover_rows):
    assert rover_rows[LIVE]["battery_status"] is None and rover_rows[LIVE]["battery_current"] == 9.84
    assert rover_rows[STATS]["generated_this_month"] is None and rover_rows[STATS]["total_generated"] == 131.088
    assert rover_rows[SETTINGS]["device_model"] == "RNG-CTRL-RVR40" and rover_rows[CLOCK] is None
    partial = decoded(LIVE)
    del partial["battery_voltage"]
    with pytest.raises(Exception, match="battery_voltage"):
        store.insert_sample(LIVE, 1_780_000_001_000, True, "rover", partial)


def test_the_api_answers_every_key_with_null_where_the_rover_lacks_it(rover_rows):
    battery = family("battery", "battery", R)
    assert battery.from_rows(rover_rows) == {
        "voltage": 13.1, "current": 9.84, "power": 161.65, "state_of_charge": 85, "temperature": -10.0,
        "status": {"wrong_identifaction_for_rated_voltage": None, "battery_inner_resistence_abnormal": None,
                   "temperature_warning_status": None, "battery_status": None}}
    for obj in ("battery", "solar", "controller", "charging", "parameters", "daily", "energy", "breadcrumb"):
        rover, tracer = family(obj, obj, R), family(obj, obj, EPEVER_TRACER)
        assert rover.from_rows(rover_rows) == tracer.from_rows(rover_rows), obj  # same keys, same values
        assert rover.schema == tracer.schema
    charging = family("charging", "charging", R)
    assert charging.primary.measurement == "batteryStatus"  # its time: the live row's
    answer = charging.from_rows(rover_rows)
    assert set(answer.pop("errors").values()) == {None} and set(answer.values()) == {None}


def test_influxdb_gets_only_the_values_the_rover_has_never_a_zero_for_the_others(rover_rows):
    renderer = Renderer("van", models={"rover": "renogy-rover"})
    lines = [line for group, stream in ((LIVE, "live_samples"), (STATS, "device_statistics"),
                                        (SETTINGS, "device_settings")) for line in renderer.lines(stream, rover_rows[group])]
    points = {line.split(",", 1)[0]: line for line in lines}
    assert set(points) == {"batteryStatus", "solarData", "loadData", "controllerData", "dailyStatistics",
                           "energyStatistics", "batteryParameters"}
    assert "battery_status" not in points["batteryStatus"] and "real_rated_voltage" not in points["batteryStatus"]
    assert "current=9.84" in points["batteryStatus"] and "temperature=-10" in points["batteryStatus"]
    assert "device_over_temperature=true" in points["controllerData"]
    assert "this_month" not in points["energyStatistics"] and "total_generated=131.088" in points["energyStatistics"]
    assert "battery_type" not in points["batteryParameters"]
    # The reference renderer (influxdb-client points) agrees.
    reference = [p.to_line_protocol() for p in renderer.points("live_samples", rover_rows[LIVE])]
    assert reference == renderer.lines("live_samples", rover_rows[LIVE])


def test_kammthaar_status_shows_a_rover_sample_with_the_rovers_own_codes(rover_rows):
    text = live_lines(rover_rows[LIVE], R)
    assert "battery 13.10 V +9.84 A 85 % -10.0 °C (FLOAT)" in text and "pv 18.70 V 159.0 W; load 33.0 W" in text


def test_the_rollups_keep_a_rover_with_null_where_it_has_no_monthly_counter(open_store):
    store = open_store()
    assert set(MINUTE_METRICS) <= {c.name for c in R.columns(LIVE)}  # every bucketed value, every model
    for i in range(3):
        store.insert_sample(LIVE, 1_780_000_000_000 + i * 5000, True, "rover",
                            {**dict.fromkeys(absent(R, LIVE)), **decoded(LIVE)})
    store.insert_sample(STATS, 1_780_000_010_000, True, "rover", {**dict.fromkeys(absent(R, STATS)), **decoded(STATS)})
    (day,) = store.db.query("rollup", "SELECT samples, energy_generated_kwh, battery_charge_ah, device_generated_kwh, "
                                      "device_month_generated_kwh FROM rollup_daily WHERE device = 'rover'").fetchall()
    # 159 W for 10 s; 9.84 A for 10 s; the device's own figure of the day, and no monthly one.
    assert day == (3, pytest.approx(159 * 10 / 3.6e6), pytest.approx(9.84 * 10 / 3600), 0.456, None)


def test_the_store_and_influxdb_answer_a_rover_alike_after_replication(rover_rows, db_path, influxd, influx_db):
    rep = replicator_on(db_path, v1(influxd, influx_db), models={"rover": "renogy-rover"})
    try:
        rep.sync_once()
    finally:
        rep.close()
    local = LocalSource(str(db_path), site=SITE, device="rover")
    cloud = CloudSource(lambda: InfluxQLReader(influxd.url, database=influx_db), device="rover",
                        timezone_name="UTC", catalogue=R)
    for obj in ("battery", "solar", "load", "controller", "charging", "discharging", "parameters", "daily",
                "energy", "breadcrumb"):
        f = family(obj, obj, R)
        here, there = local.newest(SITE, f), cloud.newest(SITE, f)
        assert there is not None and here == there, obj
        assert obj in ("charging", "discharging", "breadcrumb") or {v for v in here.value.values() if not isinstance(v, dict)} - {None}
    assert cloud.newest_ts(SITE, LIVE) == local.newest_ts(SITE, LIVE) and cloud.newest_ts(SITE, CLOCK) is None
