"""Day or night and the device clock, for the dashboard's header: /breadcrumb/..."""

from __future__ import annotations

from edge_store.registers import CLOCK, LIVE

from ..families import BOOLEAN, Family, Part, get, obj
from .base import object_routes
from .controller import CLOCK_SCHEMA

BREADCRUMB = Family(
    "breadcrumb",
    (Part(LIVE, "dailyStatistics", ("day_time",)), Part(CLOCK, "controllerData", ("current_device_time",))),
    lambda rows: {"day_time": not rows[LIVE]["night"], "current_device_time": get(rows[CLOCK], "device_time")},
    lambda recs: {"day_time": bool(recs[LIVE]["day_time"]),
                  "current_device_time": get(recs[CLOCK], "current_device_time")},
    obj({"day_time": BOOLEAN, "current_device_time": CLOCK_SCHEMA}),
)


def routes(api) -> list:
    return object_routes(api, BREADCRUMB, "/breadcrumb", "Day or night, device clock", tag="breadcrumb")
