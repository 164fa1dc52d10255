"""The load output: /loadData/..."""

from __future__ import annotations

from edge_store.registers import LIVE

from ..families import NUMBER, Family, Metric, Part, obj, r2
from .base import object_routes, series_route

LOAD = Family(
    "load",
    (Part(LIVE, "loadData", ("voltage", "current", "power")),),
    lambda rows: {"voltage": r2(rows[LIVE]["load_voltage"]), "current": r2(rows[LIVE]["load_current"]),
                  "power": r2(rows[LIVE]["load_power"])},
    lambda recs: {"voltage": r2(recs[LIVE]["voltage"]), "current": r2(recs[LIVE]["current"]),
                  "power": r2(recs[LIVE]["power"])},
    obj({"voltage": NUMBER, "current": NUMBER, "power": NUMBER}),
)

METRICS = {"voltage": Metric("load voltage", "load_voltage", "loadData", "voltage"),
           "current": Metric("load current", "load_current", "loadData", "current"),
           "power": Metric("load power", "load_power", "loadData", "power")}


def routes(api) -> list:
    return (object_routes(api, LOAD, "/loadData", "Load", tag="load")
            + [series_route(api, f"/loadData/last/24h/{name}", m, f"Series of {m.name}, last 24 h", tag="load")
               for name, m in METRICS.items()])
