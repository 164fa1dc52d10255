"""The discharging (load) equipment status word, decoded: /discharging/..."""

from __future__ import annotations

from edge_store import status
from edge_store.registers import LIVE

from ..families import BOOLEAN, STRING, Family, Part, obj
from .base import object_routes

ERRORS = tuple(status.DISCHARGING_ERRORS.values())

DISCHARGING = Family(
    "discharging",
    (Part(LIVE, "dischargingEquipmentStatus",
          ("input_voltage_status", "output_power_load", "running", "fault", *ERRORS)),),
    lambda rows: status.discharging_status(rows[LIVE]["discharging_equipment_status"]),
    lambda recs: {"input_voltage_status": recs[LIVE]["input_voltage_status"],
                  "output_power_load": recs[LIVE]["output_power_load"],
                  "running": recs[LIVE]["running"], "fault": recs[LIVE]["fault"],
                  "errors": {k: recs[LIVE][k] for k in ERRORS}},
    obj({"input_voltage_status": STRING, "output_power_load": STRING, "running": BOOLEAN, "fault": BOOLEAN,
         "errors": obj({k: BOOLEAN for k in ERRORS})}),
)


def routes(api) -> list:
    return object_routes(api, DISCHARGING, "/discharging", "Discharging equipment", tag="discharging")
