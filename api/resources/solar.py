"""The PV array: /solarData/..."""

from __future__ import annotations

from ..families import family, metric
from .base import object_routes, series_route

SOLAR = family("solar", "solar")
METRICS = {key: metric("solar", key) for key in ("voltage", "current", "power")}


def routes(api) -> list:
    return (object_routes(api, SOLAR, "/solarData", "PV array", tag="solar")
            + [series_route(api, f"/solarData/last/24h/{name}", m, f"Series of {m.name}, last 24 h", tag="solar")
               for name, m in METRICS.items()])
