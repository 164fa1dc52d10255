"""The load output: /loadData/..."""

from __future__ import annotations

from ..families import family, metric
from .base import object_routes, series_route

LOAD = family("load", "load")
METRICS = {key: metric("load", key) for key in ("voltage", "current", "power")}


def routes(api) -> list:
    return (object_routes(api, LOAD, "/loadData", "Load", tag="load")
            + [series_route(api, f"/loadData/last/24h/{name}", m, f"Series of {m.name}, last 24 h", tag="load")
               for name, m in METRICS.items()])
