"""/health (no token: JSON) and /metrics (Prometheus text)."""

from __future__ import annotations

import falcon

from .. import health_snapshot
from ..errors import RETRY_AFTER_S
from ..metrics import CONTENT_TYPE
from .base import Route

HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "site", "time", "sources", "store", "collector", "replicator", "cloud", "modbus_errors"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "site": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
        "sources": {"type": "array", "items": {"type": "string", "enum": ["local", "cloud"]}},
        "store": {"type": "object", "required": ["configured", "reachable"],
                  "properties": {"configured": {"type": "boolean"}, "reachable": {"type": "boolean", "nullable": True},
                                 "path": {"type": "string"}, "size_bytes": {"type": "integer"},
                                 "error": {"type": "string", "nullable": True},
                                 "writes": {"type": "object", "nullable": True,
                                            "description": "the collector's store writes (its <store>-writes file); "
                                                           "null before a collector ran",
                                            "required": ["failing", "failed_writes"],
                                            "properties": {"failing": {"type": "boolean"},
                                                           "failed_writes": {"type": "integer"},
                                                           "episode_failures": {"type": "integer"},
                                                           "since": {"type": "string", "nullable": True},
                                                           "last_error": {"type": "string", "nullable": True},
                                                           "updated": {"type": "string", "nullable": True}}}}},
        "collector": {"type": "object", "required": ["newest_sample", "age_s", "fresh"],
                      "properties": {"newest_sample": {"type": "string", "format": "date-time", "nullable": True},
                                     "age_s": {"type": "number", "nullable": True}, "fresh": {"type": "boolean"}}},
        "replicator": {"type": "object", "nullable": True,
                       "required": ["backlog_rows", "lag_s", "last_success", "last_error", "blocked"],
                       "properties": {"backlog_rows": {"type": "integer"},
                                      "lag_s": {"type": "integer", "nullable": True},
                                      "last_success": {"type": "string", "nullable": True},
                                      "last_error": {"type": "string", "nullable": True},
                                      "blocked": {"type": "string", "nullable": True}}},
        "cloud": {"type": "object", "required": ["configured", "reachable"],
                  "properties": {"configured": {"type": "boolean"},
                                 "reachable": {"type": "boolean", "nullable": True}}},
        "modbus_errors": {"type": "object", "additionalProperties": {"type": "integer"}},
        "alerts": {"type": "object", "nullable": True, "description": "the alerts firing now (local store)",
                   "required": ["active", "critical", "by_rule"],
                   "properties": {"active": {"type": "integer"}, "critical": {"type": "integer"},
                                  "by_rule": {"type": "array", "items": {
                                      "type": "object", "required": ["rule", "severity", "devices"],
                                      "properties": {"rule": {"type": "string"}, "severity": {"type": "string"},
                                                     "devices": {"type": "integer"}}}}}},
    },
}


class HealthResource:
    """The store, the collector (age of the newest sample), the replicator, the cloud; 503 when no source
    can answer."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snap = health_snapshot.snapshot(self.api)
        resp.media = snap
        if snap["status"] == "down":
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", str(RETRY_AFTER_S))


class MetricsResource:
    """Prometheus text: the figures of /health, Modbus error counters, rows stored, HTTP requests. A user's
    access token or a `metrics` machine token (`kammthaar token create NAME --scope metrics`)."""

    scopes = ("metrics",)

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.data = self.api.metrics.render(self.api)


def routes(api) -> list:
    return [
        Route("/health", HealthResource(api), "Health of the store, collector, replicator and cloud",
              HEALTH_SCHEMA, tag="operations", auth=False, source_header=False,
              description=HealthResource.__doc__,
              extra={"503": {"description": "No data source can answer (same body)",
                             "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                             "content": {"application/json": {"schema": HEALTH_SCHEMA}}}}),
        Route("/metrics", MetricsResource(api), "Prometheus metrics", None, tag="operations",
              content={"text/plain": {"schema": {"type": "string"}}}, source_header=False,
              description=MetricsResource.__doc__),
    ]
