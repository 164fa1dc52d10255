"""/alerts: the alert events of the local store, newest first (issue 13)."""

from __future__ import annotations

from datetime import datetime

import falcon

from ..access import not_served
from ..errors import BadRequest, Unavailable
from .base import DEVICE_PARAM, SITE_PARAM, Route, device_of, requested_site

EVENT_SCHEMA = {
    "type": "object",
    "required": ["rule", "device", "severity", "state", "since", "value"],
    "properties": {
        "id": {"type": "integer"},
        "rule": {"type": "string"}, "device": {"type": "string"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "state": {"type": "string", "enum": ["firing", "resolved"]},
        "since": {"type": "string", "format": "date-time", "description": "when it happened (the sample's time)"},
        "value": {"type": "number", "nullable": True}, "threshold": {"type": "number", "nullable": True},
        "message": {"type": "string"},
    },
}
SCHEMA = {"type": "array", "items": EVENT_SCHEMA}
PARAMS = (
    SITE_PARAM,
    {**DEVICE_PARAM, "description": "Only this device's events (a `[[devices]] name`, see /devices); default: "
                                    "every device's. An unknown device is a 404."},
    {"name": "state", "in": "query", "required": False,
     "description": "firing: only the alerts active now (their firing events).",
     "schema": {"type": "string", "enum": ["firing"]}},
    {"name": "since", "in": "query", "required": False,
     "description": "Only events at or after this time (ISO 8601 with an offset, e.g. 2026-12-01T00:00:00Z).",
     "schema": {"type": "string", "format": "date-time"}},
)


def parse_since(value: str) -> int:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadRequest(f"since must be an ISO 8601 time with an offset, such as 2026-12-01T00:00:00Z, "
                         f"not {value[:40]!r}")
    return int(when.timestamp() * 1000)


class AlertsResource:
    """Alert events newest first: rule, device, severity, state, since, value (the local store)."""

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)  # a site the user may not see: 404, like every data path
        device = None if req.get_param("device") is None else device_of(req, self.api, site).name
        state = req.get_param("state")
        if state is not None and state != "firing":
            raise BadRequest(f"state must be firing, not {state[:40]!r}")
        since = req.get_param("since")
        since_ms = None if since is None else parse_since(since)
        local = self.api.sources.local
        if local is None:
            raise Unavailable("alerts are kept in the local store, which this server does not read")
        if site != self.api.settings.site:
            raise not_served(site)  # a site's alerts are kept on its own Pi: not here, as for its other data
        events = local.alerts(firing_only=state == "firing", since_ms=since_ms, device=device)
        resp.media = [{k: v for k, v in e.items() if k != "ts_ms"} for e in events]


def routes(api) -> list:
    return [Route("/alerts", AlertsResource(api), "Alert events, newest first", SCHEMA, tag="operations",
                  params=PARAMS, errors=(400, 404, 503), source_header=False, description=AlertsResource.__doc__)]
