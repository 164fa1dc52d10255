"""GET /devices: the configured devices, each with its model, where it is, its newest sample, whether it is
fresh and its error counts; another site's devices as InfluxDB knows them (api/remote_devices.py)."""

from __future__ import annotations

import falcon

from ..families import STRING, iso, obj
from .base import SITE_PARAM, Route, answer, fresh_within_s, requested_site

DEVICE_SCHEMA = obj({
    "name": {**STRING, "description": "the `device` tag and the data paths' ?device="},
    "model": {"type": "string", "description": "the register table: epever-tracer or renogy-rover"},
    "reported_model": {**STRING, "nullable": True,
                       "description": "the model string the device reports, where it has one (null otherwise)"},
    "unit": {"type": "integer", "nullable": True, "description": "Modbus unit id (null: another site's device)"},
    "port": {**STRING, "nullable": True, "description": "where it is read (null: another site's device)"},
    "newest_sample": {"type": "string", "format": "date-time", "nullable": True,
                      "description": "time of the newest live sample (null: none yet)"},
    "fresh": {"type": "boolean", "description": "the newest live sample is at most two of its poll intervals old "
                                                "(another site's: at most [api] stale_after_s old, and its "
                                                "heartbeat does not say otherwise)"},
    "errors": {"type": "object", "nullable": True, "additionalProperties": {"type": "integer"},
               "description": "read errors ever counted, by kind (null when the answer comes from the cloud)"},
})


class DevicesResource:
    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        remote = self.api.remote_devices(site)
        if remote is not None:
            return self.remote(resp, site, remote)
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

    def remote(self, resp: falcon.Response, site: str, devices) -> None:
        """Another site's devices: what InfluxDB says of them (no unit, port nor error counts there)."""
        states, source = self.api.sources.answer(site, lambda s: s.device_states(site, [d.name for d in devices]),
                                                 what="device")
        now, stale_after_s = self.api.clock_ms(), self.api.settings.stale_after_s
        out = []
        for d in devices:
            newest = states[d.name]["newest_ms"]
            out.append({"name": d.name, "model": d.model, "reported_model": None, "unit": None, "port": None,
                        "newest_sample": None if newest is None else iso(newest),
                        "fresh": newest is not None and (now - newest) / 1000 <= stale_after_s
                        and d.heartbeat_fresh is not False, "errors": None})
        answer(resp, out, source)


def routes(api) -> list:
    return [Route("/devices", DevicesResource(api), "The configured devices", {"type": "array", "items": DEVICE_SCHEMA},
                  tag="devices", params=(SITE_PARAM,), errors=(400, 404, 503),
                  description="Every configured device, in config order: `name`, `model` (the register table), "
                              "`reported_model` (what the device says it is, where it has one), `unit`, `port`, "
                              "`newest_sample`, `fresh` and its error counts. Another site's devices (a cloud "
                              "server): those InfluxDB knows for it, by name, each `model` from its heartbeat "
                              "(an older Pi's: inferred from its points, else epever-tracer); `unit`, `port` "
                              "and `errors` null.")]
