"""The PV array: /solarData/..."""

from __future__ import annotations

from edge_store.registers import LIVE, STATS

from ..families import NULLABLE_NUMBER, NUMBER, Family, Metric, Part, get, obj, r2
from .base import object_routes, series_route


def _from_rows(rows) -> dict:
    row, stats = rows[LIVE], rows[STATS]
    return {"voltage": r2(row["pv_voltage"]), "current": r2(row["pv_current"]), "power": r2(row["pv_power"]),
            "maximum_voltage_today": r2(get(stats, "maximum_pv_voltage_today")),
            "minimum_voltage_today": r2(get(stats, "minimum_pv_voltage_today"))}


def _from_records(records) -> dict:
    rec, stats = records[LIVE], records[STATS]
    return {"voltage": r2(rec["voltage"]), "current": r2(rec["current"]), "power": r2(rec["power"]),
            "maximum_voltage_today": r2(get(stats, "maximum_voltage_today")),
            "minimum_voltage_today": r2(get(stats, "minimum_voltage_today"))}


SOLAR = Family(
    "solar",
    (Part(LIVE, "solarData", ("voltage", "current", "power")),
     Part(STATS, "solarData", ("maximum_voltage_today", "minimum_voltage_today"))),
    _from_rows, _from_records,
    obj({"voltage": NUMBER, "current": NUMBER, "power": NUMBER,
         "maximum_voltage_today": NULLABLE_NUMBER, "minimum_voltage_today": NULLABLE_NUMBER}),
)

METRICS = {"voltage": Metric("PV voltage", "pv_voltage", "solarData", "voltage"),
           "current": Metric("PV current", "pv_current", "solarData", "current"),
           "power": Metric("PV power", "pv_power", "solarData", "power")}


def routes(api) -> list:
    return (object_routes(api, SOLAR, "/solarData", "PV array", tag="solar")
            + [series_route(api, f"/solarData/last/24h/{name}", m, f"Series of {m.name}, last 24 h", tag="solar")
               for name, m in METRICS.items()])
