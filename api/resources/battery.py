"""The battery: /batterie/... (the brief's paths), /battery/... and /battery/parameters/... (the dashboard's)."""

from __future__ import annotations

from ..families import family, metric
from .base import object_routes, series_route

BATTERY = family("battery", "battery")
# The settings group, and the rated voltage the controller detected (live group).
PARAMETERS = family("battery parameters", "parameters")

VOLTAGE, CURRENT, POWER, TEMPERATURE, SOC = (
    metric("battery", key) for key in ("voltage", "current", "power", "temperature", "state_of_charge"))


def routes(api) -> list:
    out = []
    for base, tag in (("/batterie", "batterie (brief)"), ("/battery", "battery")):
        out += object_routes(api, BATTERY, base, "Battery", tag=tag)
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
