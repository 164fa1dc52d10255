"""The battery: /batterie/... (the brief's paths), /battery/... and /battery/parameters/... (the dashboard's)."""

from __future__ import annotations

from edge_store import status
from edge_store.registers import LIVE, SETTINGS

from ..families import BOOLEAN, NUMBER, STRING, Family, Metric, Part, get, obj, r2
from .base import object_routes, series_route

STATUS_KEYS = ("wrong_identifaction_for_rated_voltage", "battery_inner_resistence_abnormal",
               "temperature_warning_status", "battery_status")


def _from_rows(rows) -> dict:
    row = rows[LIVE]
    return {"voltage": r2(row["battery_voltage"]), "current": r2(row["battery_current"]),
            "power": r2(row["battery_power"]), "state_of_charge": r2(row["state_of_charge"]),
            "temperature": r2(row["battery_temperature"]), "status": status.battery_status(row["battery_status"])}


def _from_records(records) -> dict:
    rec = records[LIVE]
    return {"voltage": r2(rec["voltage"]), "current": r2(rec["current"]), "power": r2(rec["power"]),
            "state_of_charge": r2(rec["state_of_charge"]), "temperature": r2(rec["temperature"]),
            "status": {k: rec[k] for k in STATUS_KEYS}}


BATTERY = Family(
    "battery",
    (Part(LIVE, "batteryStatus", ("voltage", "current", "power", "state_of_charge", "temperature", *STATUS_KEYS)),),
    _from_rows, _from_records,
    obj({"voltage": NUMBER, "current": {**NUMBER, "description": "+ charging, - discharging"}, "power": NUMBER,
         "state_of_charge": NUMBER, "temperature": NUMBER,
         "status": obj({"wrong_identifaction_for_rated_voltage": BOOLEAN, "battery_inner_resistence_abnormal": BOOLEAN,
                        "temperature_warning_status": STRING, "battery_status": STRING})}),
)

# -- battery parameters: the settings group, and the real rated voltage from the live group ------

NUMERIC_SETTINGS = (
    "rated_charging_current", "rated_load_current", "battery_capacity", "temp_compensation_coefficient",
    "over_voltage_disconnect", "charging_limit_voltage", "over_voltage_reconnect", "equalize_charging_voltage",
    "boost_charging_voltage", "float_charging_voltage", "boost_reconnect_voltage", "low_voltage_reconnect",
    "under_voltage_recover", "under_voltage_warning", "low_voltage_disconnect", "discharging_limit_voltage",
    "equalize_duration", "boost_duration", "battery_discharge", "battery_charge",
)
ENUM_SETTINGS = ("battery_rated_voltage", "battery_type", "default_load_mode", "charging_mode")
PARAMETER_ORDER = (
    "rated_charging_current", "rated_load_current", "real_rated_voltage", "battery_rated_voltage", "battery_type",
    "battery_capacity", "temp_compensation_coefficient", "over_voltage_disconnect", "charging_limit_voltage",
    "over_voltage_reconnect", "equalize_charging_voltage", "boost_charging_voltage", "float_charging_voltage",
    "boost_reconnect_voltage", "low_voltage_reconnect", "under_voltage_recover", "under_voltage_warning",
    "low_voltage_disconnect", "discharging_limit_voltage", "default_load_mode", "equalize_duration",
    "boost_duration", "battery_discharge", "battery_charge", "charging_mode",
)


def _ordered(values: dict) -> dict:
    return {k: values[k] for k in PARAMETER_ORDER}


def _parameters_from_rows(rows) -> dict:
    row = rows[SETTINGS]
    live = get(rows[LIVE], "battery_real_rated_voltage")
    out = {k: r2(row[k]) for k in NUMERIC_SETTINGS}
    out.update({k: status.enum_name(k, int(row[k])) for k in ENUM_SETTINGS})
    out["real_rated_voltage"] = None if live is None else int(round(live))
    return _ordered(out)


def _parameters_from_records(records) -> dict:
    rec = records[SETTINGS]
    out = {k: r2(rec.get(k)) for k in NUMERIC_SETTINGS}
    out.update({k: rec.get(k) for k in ENUM_SETTINGS})
    out["real_rated_voltage"] = None  # not replicated: see replicator/points.py
    return _ordered(out)


PARAMETERS = Family(
    "battery parameters",
    (Part(SETTINGS, "batteryParameters", (*NUMERIC_SETTINGS, *ENUM_SETTINGS)), Part(LIVE, None)),
    _parameters_from_rows, _parameters_from_records,
    obj({k: ({"type": "integer", "nullable": True,
              "description": "system rated voltage the controller detected (V); null when unknown"}
             if k == "real_rated_voltage" else STRING if k in ENUM_SETTINGS else NUMBER)
         for k in PARAMETER_ORDER}),
)

VOLTAGE = Metric("battery voltage", "battery_voltage", "batteryStatus", "voltage")
CURRENT = Metric("battery current", "battery_current", "batteryStatus", "current")
POWER = Metric("battery power", "battery_power", "batteryStatus", "power")
TEMPERATURE = Metric("battery temperature", "battery_temperature", "batteryStatus", "temperature")
SOC = Metric("state of charge", "state_of_charge", "batteryStatus", "state_of_charge")


def routes(api) -> list:
    out = []
    for base, tag in (("/batterie", "batterie (brief)"), ("/battery", "battery")):
        out += object_routes(api, BATTERY, base, "Battery", dated_last=True, tag=tag)
    french = {"24hAmperage": CURRENT, "24hVoltage": VOLTAGE, "24hPower": POWER, "24hTemp": TEMPERATURE,
              "24hPourcent": SOC}
    out += [series_route(api, f"/batterie/last/{name}", m, f"Series of {m.name}, last 24 h", tag="batterie (brief)")
            for name, m in french.items()]
    english = {"voltage": VOLTAGE, "current": CURRENT, "power": POWER, "temperature": TEMPERATURE,
               "state_of_charge": SOC}
    out += [series_route(api, f"/battery/last/24h/{name}", m, f"Series of {m.name}, last 24 h", tag="battery")
            for name, m in english.items()]
    out += object_routes(api, PARAMETERS, "/battery/parameters", "Battery parameters", tag="battery")
    return out
