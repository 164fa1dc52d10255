"""The EPEVER Tracer's catalogue: its registers, what their codes mean, and every field clients see.

`REGISTERS` is one line per register of `shared/spec/epever-tracer.md`: its
name is also the store's column. Reads are planned into contiguous blocks
from it and decoded by edge_store/registers.py; the simulator serves it.
`FIELDS` is one line per value of the API objects of `shared/spec/api.md`
and per InfluxDB field (docs/influx-schema.md, generated), in the order of their keys
(edge_store/catalogue/fields.py says what a line holds).
Key spellings, misspellings included, are the ones existing clients read.
"""

from __future__ import annotations

from ..registers import CLOCK, DISCRETE, HOLDING, INPUT, LIVE, SETTINGS, STATS, Register
from .fields import BOOLEAN, INTEGER, STRING, Catalogue, Field


def _r(name, address, kind, table, group, divisor=1, unit="", low=None, high=None, optional=False, doc=""):
    return Register(name, address, kind, table, group, divisor, unit, low, high, optional, doc)


V, A, W, C, KWH = "V", "A", "W", "°C", "kWh"

REGISTERS: tuple[Register, ...] = (
    # Live values (FC 4), read every interval_s.
    _r("pv_voltage", 0x3100, "u16", INPUT, LIVE, 100, V, 0, 250, doc="PV array voltage"),
    _r("pv_current", 0x3101, "u16", INPUT, LIVE, 100, A, 0, 150, doc="PV array current"),
    _r("pv_power", 0x3102, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="PV array power"),
    _r("battery_power", 0x3106, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="battery charging power"),
    _r("load_voltage", 0x310C, "u16", INPUT, LIVE, 100, V, 0, 100, doc="load voltage"),
    _r("load_current", 0x310D, "u16", INPUT, LIVE, 100, A, 0, 150, doc="load current"),
    _r("load_power", 0x310E, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="load power"),
    _r("battery_temperature", 0x3110, "s16", INPUT, LIVE, 100, C, -60, 120, doc="battery temperature"),
    _r("controller_temperature", 0x3111, "s16", INPUT, LIVE, 100, C, -60, 150, doc="temperature inside the controller"),
    _r("state_of_charge", 0x311A, "u16", INPUT, LIVE, 1, "%", 0, 100, doc="battery state of charge"),
    _r("remote_battery_temperature", 0x311B, "s16", INPUT, LIVE, 100, C, -60, 120, optional=True,
       doc="remote battery temperature sensor (optional)"),
    _r("battery_real_rated_voltage", 0x311D, "u16", INPUT, LIVE, 100, V, 0, 100, doc="battery real rated voltage"),
    _r("battery_status", 0x3200, "bits", INPUT, LIVE, doc="battery status word (raw)"),
    _r("charging_equipment_status", 0x3201, "bits", INPUT, LIVE, doc="charging equipment status word (raw)"),
    _r("discharging_equipment_status", 0x3202, "bits", INPUT, LIVE, doc="discharging equipment status word (raw)"),
    _r("battery_voltage", 0x331A, "u16", INPUT, LIVE, 100, V, 0, 100, doc="battery voltage"),
    _r("battery_current", 0x331B, "s32", INPUT, LIVE, 100, A, -200, 200,
       doc="battery current, + charging, - discharging"),
    _r("device_over_temperature", 0x2000, "bool", DISCRETE, LIVE, doc="device over temperature"),
    _r("night", 0x200C, "bool", DISCRETE, LIVE, doc="1 at night, 0 by day"),
    # Statistics kept by the device (FC 4), read every slow_interval_s.
    _r("maximum_pv_voltage_today", 0x3300, "u16", INPUT, STATS, 100, V, 0, 250),
    _r("minimum_pv_voltage_today", 0x3301, "u16", INPUT, STATS, 100, V, 0, 250),
    _r("maximum_battery_voltage_today", 0x3302, "u16", INPUT, STATS, 100, V, 0, 100),
    _r("minimum_battery_voltage_today", 0x3303, "u16", INPUT, STATS, 100, V, 0, 100),
    _r("consumed_today", 0x3304, "u32", INPUT, STATS, 100, KWH, 0),
    _r("consumed_this_month", 0x3306, "u32", INPUT, STATS, 100, KWH, 0),
    _r("consumed_this_year", 0x3308, "u32", INPUT, STATS, 100, KWH, 0),
    _r("total_consumed", 0x330A, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_today", 0x330C, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_this_month", 0x330E, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_this_year", 0x3310, "u32", INPUT, STATS, 100, KWH, 0),
    _r("total_generated", 0x3312, "u32", INPUT, STATS, 100, KWH, 0),
    # Rated data (FC 4) and settings (FC 3), read every slow_interval_s.
    _r("rated_charging_current", 0x3005, "u16", INPUT, SETTINGS, 100, A, 0, 300),
    _r("rated_load_current", 0x300E, "u16", INPUT, SETTINGS, 100, A, 0, 300),
    _r("battery_type", 0x9000, "enum", HOLDING, SETTINGS),
    _r("battery_capacity", 0x9001, "u16", HOLDING, SETTINGS, 1, "Ah"),
    _r("temp_compensation_coefficient", 0x9002, "u16", HOLDING, SETTINGS, 100, "mV/°C/2V"),
    _r("over_voltage_disconnect", 0x9003, "u16", HOLDING, SETTINGS, 100, V),
    _r("charging_limit_voltage", 0x9004, "u16", HOLDING, SETTINGS, 100, V),
    _r("over_voltage_reconnect", 0x9005, "u16", HOLDING, SETTINGS, 100, V),
    _r("equalize_charging_voltage", 0x9006, "u16", HOLDING, SETTINGS, 100, V),
    _r("boost_charging_voltage", 0x9007, "u16", HOLDING, SETTINGS, 100, V),
    _r("float_charging_voltage", 0x9008, "u16", HOLDING, SETTINGS, 100, V),
    _r("boost_reconnect_voltage", 0x9009, "u16", HOLDING, SETTINGS, 100, V),
    _r("low_voltage_reconnect", 0x900A, "u16", HOLDING, SETTINGS, 100, V),
    _r("under_voltage_recover", 0x900B, "u16", HOLDING, SETTINGS, 100, V),
    _r("under_voltage_warning", 0x900C, "u16", HOLDING, SETTINGS, 100, V),
    _r("low_voltage_disconnect", 0x900D, "u16", HOLDING, SETTINGS, 100, V),
    _r("discharging_limit_voltage", 0x900E, "u16", HOLDING, SETTINGS, 100, V),
    _r("battery_rated_voltage", 0x9067, "enum", HOLDING, SETTINGS),
    _r("default_load_mode", 0x906A, "enum", HOLDING, SETTINGS),
    _r("equalize_duration", 0x906B, "u16", HOLDING, SETTINGS, 1, "min"),
    _r("boost_duration", 0x906C, "u16", HOLDING, SETTINGS, 1, "min"),
    _r("battery_discharge", 0x906D, "u16", HOLDING, SETTINGS, 1, "%", 0, 100),
    _r("battery_charge", 0x906E, "u16", HOLDING, SETTINGS, 1, "%", 0, 100),
    _r("charging_mode", 0x9070, "enum", HOLDING, SETTINGS),
    # The device clock (FC 3): local time of the device, no zone.
    _r("device_time", 0x9013, "clock", HOLDING, CLOCK, doc="device clock, YYYY-MM-DD HH:MM:SS"),
)

# -- what the codes mean -------------------------------------------------------------------

BATTERY_STATE = {0: "NORMAL", 1: "OVER_VOLTAGE", 2: "UNDER_VOLTAGE", 3: "OVER_DISCHARGE", 4: "FAULT"}
TEMPERATURE_WARNING = {0: "NORMAL", 1: "OVER_TEMP", 2: "LOW_TEMP"}
CHARGING_INPUT = {0: "NORMAL", 1: "NO_INPUT_POWER", 2: "HIGHER_INPUT", 3: "INPUT_VOLTAGE_ERROR"}
CHARGING_STAGE = {0: "NO_CHARGING", 1: "FLOAT", 2: "BOOST", 3: "EQUALIZATION"}
DISCHARGING_INPUT = {0: "NORMAL", 1: "LOW", 2: "HIGH", 3: "NO_ACCESS"}
OUTPUT_POWER_LOAD = {0: "LIGHT", 1: "MODERATE", 2: "RATED", 3: "OVERLOAD"}

BATTERY_TYPE = {0: "USER_DEFINED", 1: "SEALED", 2: "GEL", 3: "FLOODED",
                **{i: "LIFEPO4" for i in range(4, 8)}, **{i: "LI_NICOMN_O2" for i in range(8, 13)}}
BATTERY_RATED_VOLTAGE = {0: "AUTO", 1: "12V", 2: "24V", 3: "36V", 4: "48V", 5: "60V",
                         6: "110V", 7: "120V", 8: "220V", 9: "240V"}
DEFAULT_LOAD_MODE = {0: "OFF", 1: "ON"}
CHARGING_MODE = {0: "VOLTAGE_COMPENSATION", 1: "SOC"}

# bit -> the boolean of the object's `errors`
CHARGING_ERRORS = {
    13: "charging_mosfet_short_circuit",
    12: "charging_or_anti_reverse_mosfet_open_circuit",
    11: "anti_reverse_mosfet_short_circuit",
    10: "input_over_current",
    9: "load_over_current",
    8: "load_short_circuit",
    7: "load_mosfet_short_circuit",
    6: "disequilibrium_in_three_circuits",
    4: "pv_input_short_circuit",
}
DISCHARGING_ERRORS = {
    11: "short_circuit",
    10: "unable_to_discharge",
    9: "unable_to_stop_discharging",
    8: "output_voltage_abnormal",
    7: "input_over_voltage",
    6: "short_circuit_high_voltage_side",
    5: "boost_over_voltage",
    4: "output_over_voltage",
}

# -- the fields ------------------------------------------------------------------------------

BATTERY_WORD, CHARGING_WORD, DISCHARGING_WORD = "battery_status", "charging_equipment_status", \
    "discharging_equipment_status"


def _f(key, column, objects, measurement, **kw) -> Field:
    return Field(key, column, (objects,) if isinstance(objects, str) else objects, measurement, **kw)


def _flag(key, column, bit, obj, measurement) -> Field:
    return _f(key, column, obj, measurement, type=BOOLEAN, shift=bit, width=1)


def _code(key, column, shift, width, meanings, obj, measurement) -> Field:
    return _f(key, column, obj, measurement, type=STRING, shift=shift, width=width, meanings=meanings)


def _setting(name, meanings=None) -> Field:
    if meanings is not None:
        return _f(name, name, "parameters", "batteryParameters", type=STRING, meanings=meanings)
    return _f(name, name, "parameters", "batteryParameters")


def _vip(obj, measurement, prefix, what) -> tuple[Field, ...]:
    return tuple(_f(q, f"{prefix}_{q}", obj, measurement, series=f"{what} {q}") for q in ("voltage", "current", "power"))


FIELDS: tuple[Field, ...] = (
    # battery (live): /battery/..., /batterie/...
    _f("voltage", "battery_voltage", "battery", "batteryStatus", series="battery voltage"),
    _f("current", "battery_current", "battery", "batteryStatus", series="battery current",
       description="+ charging, - discharging"),
    _f("power", "battery_power", "battery", "batteryStatus", series="battery power"),
    _f("state_of_charge", "state_of_charge", "battery", "batteryStatus", series="state of charge"),
    _f("temperature", "battery_temperature", "battery", "batteryStatus", series="battery temperature"),
    _flag("status.wrong_identifaction_for_rated_voltage", BATTERY_WORD, 15, "battery", "batteryStatus"),
    _flag("status.battery_inner_resistence_abnormal", BATTERY_WORD, 8, "battery", "batteryStatus"),
    _code("status.temperature_warning_status", BATTERY_WORD, 4, 4, TEMPERATURE_WARNING, "battery", "batteryStatus"),
    _code("status.battery_status", BATTERY_WORD, 0, 4, BATTERY_STATE, "battery", "batteryStatus"),
    # solar and load (live)
    *_vip("solar", "solarData", "pv", "PV"),
    *_vip("load", "loadData", "load", "load"),
    # controller (live)
    _f("temperature", "controller_temperature", "controller", "controllerData", bucketed=True),
    _f("device_over_temperature", "device_over_temperature", "controller", "controllerData", type=BOOLEAN),
    # charging and discharging equipment: the status words
    _code("input_voltage_status", CHARGING_WORD, 14, 2, CHARGING_INPUT, "charging", "chargingEquipmentStatus"),
    _code("charging_status", CHARGING_WORD, 2, 2, CHARGING_STAGE, "charging", "chargingEquipmentStatus"),
    _flag("running", CHARGING_WORD, 0, "charging", "chargingEquipmentStatus"),
    _flag("fault", CHARGING_WORD, 1, "charging", "chargingEquipmentStatus"),
    *(_flag(f"errors.{name}", CHARGING_WORD, bit, "charging", "chargingEquipmentStatus")
      for bit, name in CHARGING_ERRORS.items()),
    _code("input_voltage_status", DISCHARGING_WORD, 14, 2, DISCHARGING_INPUT, "discharging",
          "dischargingEquipmentStatus"),
    _code("output_power_load", DISCHARGING_WORD, 12, 2, OUTPUT_POWER_LOAD, "discharging", "dischargingEquipmentStatus"),
    _flag("running", DISCHARGING_WORD, 0, "discharging", "dischargingEquipmentStatus"),
    _flag("fault", DISCHARGING_WORD, 1, "discharging", "dischargingEquipmentStatus"),
    *(_flag(f"errors.{name}", DISCHARGING_WORD, bit, "discharging", "dischargingEquipmentStatus")
      for bit, name in DISCHARGING_ERRORS.items()),
    # battery parameters: rated data and settings, and the rated voltage the controller detected
    _setting("rated_charging_current"),
    _setting("rated_load_current"),
    # A live register: it rides on the live batteryStatus point (no extra point per sample).
    _f("real_rated_voltage", "battery_real_rated_voltage", "parameters", "batteryStatus", type=INTEGER,
       description="system rated voltage the controller detected (V); null when unknown"),
    _setting("battery_rated_voltage", BATTERY_RATED_VOLTAGE),
    _setting("battery_type", BATTERY_TYPE),
    *(_setting(name) for name in (
        "battery_capacity", "temp_compensation_coefficient", "over_voltage_disconnect", "charging_limit_voltage",
        "over_voltage_reconnect", "equalize_charging_voltage", "boost_charging_voltage", "float_charging_voltage",
        "boost_reconnect_voltage", "low_voltage_reconnect", "under_voltage_recover", "under_voltage_warning",
        "low_voltage_disconnect", "discharging_limit_voltage")),
    _setting("default_load_mode", DEFAULT_LOAD_MODE),
    *(_setting(name) for name in ("equalize_duration", "boost_duration", "battery_discharge", "battery_charge")),
    _setting("charging_mode", CHARGING_MODE),
    # the device's energy counters (stats)
    *(_f(name, name, "energy", "energyStatistics", description="kWh") for name in (
        "consumed_today", "consumed_this_month", "consumed_this_year", "total_consumed",
        "generated_today", "generated_this_month", "generated_this_year", "total_generated")),
    # the device's statistics of today (stats), and day or night (live)
    _f("maximum_battery_voltage_today", "maximum_battery_voltage_today", "daily", "dailyStatistics"),
    _f("minimum_battery_voltage_today", "minimum_battery_voltage_today", "daily", "dailyStatistics"),
    _f("maximum_voltage_today", "maximum_pv_voltage_today", "solar", "solarData"),
    _f("minimum_voltage_today", "minimum_pv_voltage_today", "solar", "solarData"),
    _f("day_time", "night", ("daily", "breadcrumb"), "dailyStatistics", type=BOOLEAN, invert=True),
    _f("night_time", "night", "daily", "dailyStatistics", type=BOOLEAN),
    # the device clock
    _f("current_device_time", "device_time", ("controller", "breadcrumb"), "controllerData", type=STRING,
       description="device clock, local time: YYYY-MM-DD HH:MM:SS"),
    # Stored only: the optional remote sensor is in no object of the contract nor in InfluxDB yet.
    _f("remote_battery_temperature", "remote_battery_temperature", (), None),
)

EPEVER_TRACER = Catalogue("epever-tracer", REGISTERS, FIELDS, summary=tuple(
    f for f in FIELDS if (f.column, f.key) in ((BATTERY_WORD, "status.battery_status"), (CHARGING_WORD, "charging_status"))))
