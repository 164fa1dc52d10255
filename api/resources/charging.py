"""The charging equipment status word, decoded: /charging/..."""

from __future__ import annotations

from edge_store import status
from edge_store.registers import LIVE

from ..families import BOOLEAN, STRING, Family, Part, obj
from .base import object_routes

ERRORS = tuple(status.CHARGING_ERRORS.values())

CHARGING = Family(
    "charging",
    (Part(LIVE, "chargingEquipmentStatus", ("input_voltage_status", "charging_status", "running", "fault", *ERRORS)),),
    lambda rows: status.charging_status(rows[LIVE]["charging_equipment_status"]),
    lambda recs: {"input_voltage_status": recs[LIVE]["input_voltage_status"],
                  "charging_status": recs[LIVE]["charging_status"],
                  "running": recs[LIVE]["running"], "fault": recs[LIVE]["fault"],
                  "errors": {k: recs[LIVE][k] for k in ERRORS}},
    obj({"input_voltage_status": STRING, "charging_status": STRING, "running": BOOLEAN, "fault": BOOLEAN,
         "errors": obj({k: BOOLEAN for k in ERRORS})}),
)


def routes(api) -> list:
    return object_routes(api, CHARGING, "/charging", "Charging equipment", tag="charging")
