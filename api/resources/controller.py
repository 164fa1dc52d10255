"""The controller itself: /controller/..."""

from __future__ import annotations

from edge_store.registers import CLOCK, LIVE

from ..families import BOOLEAN, NUMBER, Family, Part, get, obj, r2
from .base import object_routes

CLOCK_SCHEMA = {"type": "string", "nullable": True, "description": "device clock, local time: YYYY-MM-DD HH:MM:SS"}

CONTROLLER = Family(
    "controller",
    (Part(LIVE, "controllerData", ("temperature", "device_over_temperature")),
     Part(CLOCK, "controllerData", ("current_device_time",))),
    lambda rows: {"temperature": r2(rows[LIVE]["controller_temperature"]),
                  "device_over_temperature": bool(rows[LIVE]["device_over_temperature"]),
                  "current_device_time": get(rows[CLOCK], "device_time")},
    lambda recs: {"temperature": r2(recs[LIVE]["temperature"]),
                  "device_over_temperature": bool(recs[LIVE]["device_over_temperature"]),
                  "current_device_time": get(recs[CLOCK], "current_device_time")},
    obj({"temperature": NUMBER, "device_over_temperature": BOOLEAN, "current_device_time": CLOCK_SCHEMA}),
)


def routes(api) -> list:
    return object_routes(api, CONTROLLER, "/controller", "Controller", tag="controller")
