"""GET /devices: the configured devices, each with its model, where it is, its newest sample, whether it is
fresh and its error counts."""

from __future__ import annotations

import falcon

from ..families import STRING, iso, obj
from .base import SITE_PARAM, Route, answer, fresh_within_s, requested_site

DEVICE_SCHEMA = obj({
    "name": {**STRING, "description": "the `device` tag and the data paths' ?device="},
    "model": {"type": "string", "description": "the register table: epever-tracer or renogy-rover"},
    "reported_model": {**STRING, "nullable": True,
                       "description": "the model string the device reports, where it has one (null otherwise)"},
    "unit": {"type": "integer", "description": "Modbus unit id"},
    "port": STRING,
    "newest_sample": {"type": "string", "format": "date-time", "nullable": True,
                      "description": "time of the newest live sample (null: none yet)"},
    "fresh": {"type": "boolean", "description": "the newest live sample is at most two of its poll intervals old"},
    "errors": {"type": "object", "nullable": True, "additionalProperties": {"type": "integer"},
               "description": "read errors ever counted, by kind (null when the answer comes from the cloud)"},
})


class DevicesResource:
    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        devices = self.api.settings.devices
        states, source = self.api.sources.answer(site, lambda s: s.device_states(site, [d.name for d in devices]),
                                                 what="device")
        now = self.api.clock_ms()
        window_s = self.api.settings.commit_window_s
        out = []
        for d in devices:
            state = states[d.name]
            newest = state["newest_ms"]
            out.append({"name": d.name, "model": d.model, "reported_model": state.get("reported_model"),
                        "unit": d.unit, "port": d.port, "newest_sample": None if newest is None else iso(newest),
                        "fresh": newest is not None and (now - newest) / 1000 <= fresh_within_s(d.interval_s, window_s),
                        "errors": state["errors"]})
        answer(resp, out, source)


def routes(api) -> list:
    return [Route("/devices", DevicesResource(api), "The configured devices", {"type": "array", "items": DEVICE_SCHEMA},
                  tag="devices", params=(SITE_PARAM,), errors=(400, 404, 503),
                  description="Every configured device, in config order: `name`, `model` (the register table), "
                              "`reported_model` (what the device says it is, where it has one), `unit`, `port`, "
                              "`newest_sample`, `fresh` and its error counts.")]
