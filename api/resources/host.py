"""The server: /serveur/status (is live data fresh), /serveur/infos (the collector's machine), /server-time."""

from __future__ import annotations

import falcon

from edge_store.registers import LIVE

from ..auth import identify
from ..errors import NotFound, Unavailable
from ..families import STRING, iso, obj
from .base import DEVICE_PARAM, SITE_PARAM, Route, answer, device_of, fresh_within_s, requested_site


class StatusResource:
    """Whether live data is available right now: the newest live sample is at most two poll intervals (plus the
    commit window) old. No token needed for this server's own site; another `site` is answered to a user who
    may see it."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identify(self.api, req)
        try:
            site = requested_site(self.api, req)  # another site than ours: a user who may see it
        except NotFound as exc:
            return self.no_live(req, resp, exc)
        try:
            device = device_of(req, self.api, site)  # a device the site has not: 404, whatever the data
        except Unavailable as exc:  # another site's devices, and the cloud cannot answer
            return self.no_live(req, resp, exc)
        limit_s = fresh_within_s(device.interval_s, self.api.settings.commit_window_s)
        try:
            ts, source = self.api.sources.answer(site, lambda s: s.newest_ts(site, LIVE, device.name),
                                                 what="live sample")
        except (NotFound, Unavailable) as exc:
            return self.no_live(req, resp, exc)
        age_s = max(0.0, (self.api.clock_ms() - ts) / 1000)
        if age_s <= limit_s:
            body = {"status": True, "message": f"live data is fresh: newest sample {age_s:.1f} s old ({iso(ts)})"}
        else:
            body = {"status": False, "message": f"no live data: newest sample {age_s:.0f} s old ({iso(ts)}), "
                                                f"more than {limit_s:g} s: the collector gets no answers"}
        answer(resp, body, source)

    @staticmethod
    def no_live(req: falcon.Request, resp: falcon.Response, exc: Exception) -> None:
        message = str(exc)
        if isinstance(exc, Unavailable) and req.context.user is None:
            message = "no data source can answer right now"  # its text names the store's file and the cloud's URL
        resp.media = {"status": False, "message": f"no live data: {message}"}


class InfosResource:
    """CPU, memory and disk usage (%) and temperature (°C) of the machine the collector runs on."""

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.api.machine is None:
            raise Unavailable("this server has no local store: the collector's machine is elsewhere",
                              retry_after_s=3600)
        answer(resp, self.api.machine.infos(), "local")


class TimeResource:
    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"server_time": iso(self.api.clock_ms())}


def routes(api) -> list:
    percent = {"type": "number", "minimum": 0, "maximum": 100}
    return [
        Route("/serveur/status", StatusResource(api), "Is live data available right now",
              obj({"status": {"type": "boolean"}, "message": STRING}), tag="server", params=(SITE_PARAM, DEVICE_PARAM),
              auth=False, errors=(400, 404), description=StatusResource.__doc__, extra={"source_optional": True}),
        Route("/serveur/infos", InfosResource(api), "Usage of the collector's machine",
              obj({"cpu_usage": percent, "memory_usage": percent, "disk_usage": percent,
                   "temperature": {"type": "number", "nullable": True,
                                   "description": "°C; null where the machine has no thermal sensor"}}),
              tag="server", errors=(503,), description=InfosResource.__doc__),
        Route("/server-time", TimeResource(api), "The server's clock",
              obj({"server_time": {"type": "string", "format": "date-time"}}), tag="server",
              source_header=False),
    ]
