"""Decoding of the stored raw status words and enums into the names clients read.

Status words are stored raw (one integer each) and decoded here, when read.
Key spellings, misspellings included, are the ones existing clients read.
"""

from __future__ import annotations

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


def _name(table: dict[int, str], code: int) -> str:
    return table.get(code, f"UNKNOWN_{code}")


def _bit(word: int, n: int) -> bool:
    return bool((word >> n) & 1)


def battery_status(word: int) -> dict:
    """0x3200: the battery object's `status`."""
    return {
        "wrong_identifaction_for_rated_voltage": _bit(word, 15),
        "battery_inner_resistence_abnormal": _bit(word, 8),
        "temperature_warning_status": _name(TEMPERATURE_WARNING, (word >> 4) & 0xF),
        "battery_status": _name(BATTERY_STATE, word & 0xF),
    }


def charging_status(word: int) -> dict:
    """0x3201: the charging object."""
    return {
        "input_voltage_status": _name(CHARGING_INPUT, (word >> 14) & 0x3),
        "charging_status": _name(CHARGING_STAGE, (word >> 2) & 0x3),
        "running": _bit(word, 0),
        "fault": _bit(word, 1),
        "errors": {name: _bit(word, bit) for bit, name in CHARGING_ERRORS.items()},
    }


def discharging_status(word: int) -> dict:
    """0x3202: the discharging object."""
    return {
        "input_voltage_status": _name(DISCHARGING_INPUT, (word >> 14) & 0x3),
        "output_power_load": _name(OUTPUT_POWER_LOAD, (word >> 12) & 0x3),
        "running": _bit(word, 0),
        "fault": _bit(word, 1),
        "errors": {name: _bit(word, bit) for bit, name in DISCHARGING_ERRORS.items()},
    }


ENUMS = {
    "battery_type": BATTERY_TYPE,
    "battery_rated_voltage": BATTERY_RATED_VOLTAGE,
    "default_load_mode": DEFAULT_LOAD_MODE,
    "charging_mode": CHARGING_MODE,
}


def enum_name(field: str, code: int) -> str:
    """The name of a settings enum value, e.g. enum_name('battery_type', 2) == 'GEL'."""
    return _name(ENUMS[field], code)
