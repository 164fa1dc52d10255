"""The Renogy Rover's catalogue (Rover / Wanderer / SRNE family): its registers and fields.

`REGISTERS` is one line per value of `shared/spec/renogy-rover.md` (function 3,
high word first, two sign-magnitude bytes in one register, an ASCII model string).
The models share one vocabulary: a value the EPEVER Tracer also has is stored in
the same column, in the same unit (energy in kWh: the Rover counts Wh, divisor
1000), and its field is the EPEVER's very `Field` line (same API key, InfluxDB
measurement and field); a field the Rover lacks is null in the API objects and
absent from InfluxDB. Battery current and power and the over-temperature flag
have no register of their own: they are derived (`DERIVED`) as the spec says.
The Rover's own values (charging state, fault bits, Ah counters, ...) are
stored and described here, in no API object and not replicated.

Groups: the live block 0x0100-0x0122 is read whole every poll (`max_gap`); the
day's statistics and counters (0x010B-0x011F) and the system info and settings
with the slow groups. The Rover has no clock.

Settings 0xE005-0xE00E are stored as the device gives them, 12 V based (the spec:
on 24/36/48 V systems the real threshold is that times system V / 12; unverified).
"""

from __future__ import annotations

from ..registers import HOLDING, LIVE, SETTINGS, STATS, Register
from .epever_tracer import FIELDS as EPEVER_FIELDS
from .fields import BOOLEAN, INTEGER, STRING, Catalogue, Derived, Field


def _r(name, address, kind, group, divisor=1, unit="", low=None, high=None, doc=""):
    return Register(name, address, kind, HOLDING, group, divisor, unit, low, high, False, doc)


V, A, W, C, KWH, AH = "V", "A", "W", "°C", "kWh", "Ah"

REGISTERS: tuple[Register, ...] = (
    # System info (0x000A-0x001A), read with the settings.
    _r("max_system_voltage", 0x000A, "u8hi", SETTINGS, 1, V, doc="maximum system voltage (255: automatic)"),
    _r("rated_charging_current", 0x000A, "u8lo", SETTINGS, 1, A, 0, 300),
    _r("rated_load_current", 0x000B, "u8hi", SETTINGS, 1, A, 0, 300),
    _r("product_type", 0x000B, "u8lo", SETTINGS, doc="0 controller, 1 inverter"),
    _r("device_model", 0x000C, "ascii16", SETTINGS, doc="the model string the device reports"),
    _r("software_version", 0x0014, "u32hw", SETTINGS, doc="software version, bytes 00 MM mm pp"),
    _r("hardware_version", 0x0016, "u32hw", SETTINGS, doc="hardware version, bytes 00 MM mm pp"),
    _r("serial_number", 0x0018, "u32hw", SETTINGS, doc="serial number (shown as 8 hex digits)"),
    _r("device_address", 0x001A, "u8lo", SETTINGS, doc="Modbus unit id the device holds"),
    # Live values (0x0100-0x0109, 0x0120-0x0122), one read every interval_s.
    _r("state_of_charge", 0x0100, "u16", LIVE, 1, "%", 0, 100, doc="battery state of charge"),
    _r("battery_voltage", 0x0101, "u16", LIVE, 10, V, 0, 100, doc="battery voltage"),
    _r("charging_current", 0x0102, "u16", LIVE, 100, A, 0, 200, doc="controller output current to the battery side"),
    _r("controller_temperature", 0x0103, "sm8hi", LIVE, 1, C, -60, 127, doc="temperature inside the controller"),
    _r("battery_temperature", 0x0103, "sm8lo", LIVE, 1, C, -60, 120, doc="battery temperature"),
    _r("load_voltage", 0x0104, "u16", LIVE, 10, V, 0, 100, doc="load voltage"),
    _r("load_current", 0x0105, "u16", LIVE, 100, A, 0, 150, doc="load current"),
    _r("load_power", 0x0106, "u16", LIVE, 1, W, 0, 10000, doc="load power"),
    _r("pv_voltage", 0x0107, "u16", LIVE, 10, V, 0, 250, doc="PV array voltage"),
    _r("pv_current", 0x0108, "u16", LIVE, 100, A, 0, 150, doc="PV array current"),
    _r("pv_power", 0x0109, "u16", LIVE, 1, W, 0, 10000, doc="PV array power"),
    _r("load_state", 0x0120, "u8hi", LIVE, doc="b7 load on, b0-b6 load brightness %"),
    _r("charging_state", 0x0120, "u8lo", LIVE, doc="charging state code"),
    _r("fault_bits", 0x0121, "u32hw", LIVE, doc="fault bits, 1 = active (B16-B30)"),
    # The device's statistics of today and its counters (0x010B-0x011F), every slow_interval_s.
    _r("minimum_battery_voltage_today", 0x010B, "u16", STATS, 10, V, 0, 100),
    _r("maximum_battery_voltage_today", 0x010C, "u16", STATS, 10, V, 0, 100),
    _r("maximum_charging_current_today", 0x010D, "u16", STATS, 100, A, 0, 200),
    _r("maximum_discharging_current_today", 0x010E, "u16", STATS, 100, A, 0, 200),
    _r("maximum_charging_power_today", 0x010F, "u16", STATS, 1, W, 0, 10000),
    _r("maximum_discharging_power_today", 0x0110, "u16", STATS, 1, W, 0, 10000),
    _r("charged_today_ah", 0x0111, "u16", STATS, 1, AH, 0),
    _r("discharged_today_ah", 0x0112, "u16", STATS, 1, AH, 0),
    _r("generated_today", 0x0113, "u16", STATS, 1000, KWH, 0),
    _r("consumed_today", 0x0114, "u16", STATS, 1000, KWH, 0),
    _r("operating_days", 0x0115, "u16", STATS, doc="days in operation"),
    _r("over_discharges", 0x0116, "u16", STATS, doc="battery over-discharges"),
    _r("full_charges", 0x0117, "u16", STATS, doc="battery full charges"),
    _r("total_charged_ah", 0x0118, "u32hw", STATS, 1, AH, 0),
    _r("total_discharged_ah", 0x011A, "u32hw", STATS, 1, AH, 0),
    _r("total_generated", 0x011C, "u32hw", STATS, 1000, KWH, 0),
    _r("total_consumed", 0x011E, "u32hw", STATS, 1000, KWH, 0),
    # Settings (0xE002-0xE014; 0xE001 is model-dependent and not read), every slow_interval_s.
    _r("battery_capacity", 0xE002, "u16", SETTINGS, 1, AH),
    _r("system_voltage_setting", 0xE003, "u8hi", SETTINGS, 1, V, doc="system voltage setting (255: automatic)"),
    _r("recognized_voltage", 0xE003, "u8lo", SETTINGS, 1, V, doc="system voltage the controller recognised"),
    _r("renogy_battery_type", 0xE004, "enum", SETTINGS, doc="battery type (the Rover's codes)"),
    *(_r(name, 0xE005 + i, "u16", SETTINGS, 10, V, doc="12 V based") for i, name in enumerate((
        "over_voltage_disconnect", "charging_limit_voltage", "equalize_charging_voltage", "boost_charging_voltage",
        "float_charging_voltage", "boost_reconnect_voltage", "low_voltage_reconnect", "under_voltage_warning",
        "low_voltage_disconnect", "discharging_limit_voltage"))),
    _r("end_of_charge_soc", 0xE00F, "u8hi", SETTINGS, 1, "%", 0, 100),
    _r("end_of_discharge_soc", 0xE00F, "u8lo", SETTINGS, 1, "%", 0, 100),
    _r("over_discharge_delay_s", 0xE010, "u16", SETTINGS, 1, "s"),
    _r("equalize_duration", 0xE011, "u16", SETTINGS, 1, "min"),
    _r("boost_duration", 0xE012, "u16", SETTINGS, 1, "min"),
    _r("equalize_interval_days", 0xE013, "u16", SETTINGS, 1, "d", doc="equalizing interval (0: off)"),
    _r("temp_compensation_coefficient", 0xE014, "u16", SETTINGS, 1, "mV/°C/2V"),
)

# -- what the codes mean -------------------------------------------------------------------

CHARGING_STATE = {0: "DEACTIVATED", 1: "ACTIVATED", 2: "MPPT", 3: "EQUALIZING", 4: "BOOST", 5: "FLOAT",
                  6: "CURRENT_LIMITING", 8: "DIRECT_CHARGE"}
BATTERY_TYPE = {0: "USER", 1: "OPEN", 2: "SEALED", 3: "GEL", 4: "LITHIUM", 5: "USER"}
# bit of the fault word (0x0121 high word: bit n = B(16+n)) -> the flag's name
FAULTS = {
    30: "charge_mosfet_short", 29: "anti_reverse_mosfet_short", 28: "pv_reversed",
    27: "pv_working_point_over_voltage", 26: "pv_counter_current", 25: "pv_input_over_voltage",
    24: "pv_input_short", 23: "pv_over_power", 22: "ambient_temperature_high", 21: "controller_temperature_high",
    20: "load_over_power", 19: "load_short", 18: "battery_under_voltage_warning", 17: "battery_over_voltage",
    16: "battery_over_discharge",
}
OVER_TEMPERATURE_BIT = 21

# -- derived columns (spec: "Mapping onto the API objects") ---------------------------------------

DERIVED: tuple[Derived, ...] = (
    Derived("battery_current", LIVE, ("charging_current", "load_current"),
            lambda v: round(v["charging_current"] - v["load_current"], 2), "s32", 100, A,
            "charging current minus load current: the current at the battery terminals, + charging"),
    Derived("battery_power", LIVE, ("battery_voltage", "charging_current"),
            lambda v: round(v["battery_voltage"] * v["charging_current"], 2), "u32", 100, W,
            "battery voltage times charging current: the charging power into the battery"),
    Derived("device_over_temperature", LIVE, ("fault_bits",),
            lambda v: bool((v["fault_bits"] >> OVER_TEMPERATURE_BIT) & 1), "bool",
            doc="fault bit B21, controller temperature high"),
)

# -- the fields ------------------------------------------------------------------------------

_COLUMNS = {r.name for r in REGISTERS} | {d.name for d in DERIVED}


def _own(key, column, **kw) -> Field:
    """A value only the Rover has: stored, described, in no API object and not replicated."""
    return Field(key, column, (), None, **kw)


FIELDS: tuple[Field, ...] = (
    # Every value the Tracer has too: the Tracer's field line itself (one vocabulary).
    *(f for f in EPEVER_FIELDS if f.column in _COLUMNS),
    _own("charging_current", "charging_current"),
    _own("load_on", "load_state", type=BOOLEAN, shift=7, width=1),
    _own("load_brightness", "load_state", type=INTEGER, shift=0, width=7),
    _own("charging_state", "charging_state", type=STRING, meanings=CHARGING_STATE),
    *(_own(f"faults.{name}", "fault_bits", type=BOOLEAN, shift=bit, width=1) for bit, name in FAULTS.items()),
    *(_own(name, name) for name in (
        "maximum_charging_current_today", "maximum_discharging_current_today", "maximum_charging_power_today",
        "maximum_discharging_power_today", "charged_today_ah", "discharged_today_ah", "total_charged_ah",
        "total_discharged_ah")),
    *(_own(name, name, type=INTEGER) for name in (
        "operating_days", "over_discharges", "full_charges", "max_system_voltage", "product_type",
        "software_version", "hardware_version", "serial_number", "device_address", "system_voltage_setting",
        "recognized_voltage", "end_of_charge_soc", "end_of_discharge_soc", "over_discharge_delay_s",
        "equalize_interval_days")),
    _own("device_model", "device_model", type=STRING),
    _own("renogy_battery_type", "renogy_battery_type", type=STRING, meanings=BATTERY_TYPE),
)

RENOGY_ROVER = Catalogue("renogy-rover", REGISTERS, FIELDS, derived=DERIVED, max_gap=32,
                         reported_model="device_model",
                         summary=tuple(f for f in FIELDS if f.column == "charging_state"))


def version_text(value: int) -> str:
    """A version register (bytes 00 MM mm pp) as the Rover's manuals write it: 0x00030201 -> V03.02.01."""
    return "V" + ".".join(f"{(value >> shift) & 0xFF:02d}" for shift in (16, 8, 0))


def serial_text(value: int) -> str:
    """The serial number as 8 hex digits (0x1501FFFF: unit 65535 of January 2015)."""
    return f"{value:08X}"
