"""/health (no token: JSON) and /metrics (Prometheus text)."""

from __future__ import annotations

import falcon

from .. import health_snapshot
from ..auth import ACCESS, access_token
from ..access import INSTALLER
from ..errors import RETRY_AFTER_S, Forbidden, Unauthorized
from ..machine_tokens import is_machine_token
from ..metrics import CONTENT_TYPE
from .base import Route

HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "site", "time", "sources", "store", "collector", "replicator", "cloud", "modbus_errors",
                 "devices"],
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
        "reconciliation": {
            "type": "object", "nullable": True,
            "description": "what the checks of the cloud against the store found (`kammthaar reconcile`); null "
                           "without a local store",
            "required": ["completeness_30d", "days_checked", "last_pass", "unsupported"],
            "properties": {"completeness_30d": {"type": "number", "nullable": True,
                                                "description": "points the cloud held / points the Pi sent, over "
                                                               "the days of the last 30 checked; null before any"},
                           "days_checked": {"type": "integer"}, "points_missing": {"type": "integer"},
                           "ranges_repaired": {"type": "integer"}, "ranges_still_differing": {"type": "integer"},
                           "last_pass": {"type": "string", "nullable": True},
                           "last_pass_ok": {"type": "boolean", "nullable": True},
                           "unsupported": {"type": "string", "nullable": True,
                                           "description": "why the cloud cannot answer InfluxQL, if it cannot"}}},
        "cloud": {"type": "object", "required": ["configured", "reachable"],
                  "properties": {"configured": {"type": "boolean"},
                                 "reachable": {"type": "boolean", "nullable": True}}},
        "modbus_errors": {"type": "object", "additionalProperties": {"type": "integer"}},
        "devices": {"type": "array", "description": "every configured device",
                    "items": {"type": "object", "required": ["name", "model", "newest_sample", "age_s", "fresh", "errors"],
                              "properties": {"name": {"type": "string"}, "model": {"type": "string"},
                                             "newest_sample": {"type": "string", "format": "date-time",
                                                               "nullable": True},
                                             "age_s": {"type": "number", "nullable": True},
                                             "fresh": {"type": "boolean"},
                                             "errors": {"type": "object", "nullable": True,
                                                        "additionalProperties": {"type": "integer"}}}}},
        "alerts": {"type": "object", "nullable": True, "description": "the alerts firing now (local store)",
                   "required": ["active", "critical", "by_rule"],
                   "properties": {"active": {"type": "integer"}, "critical": {"type": "integer"},
                                  "by_rule": {"type": "array", "items": {
                                      "type": "object", "required": ["rule", "severity", "devices"],
                                      "properties": {"rule": {"type": "string"}, "severity": {"type": "string"},
                                                     "devices": {"type": "integer"}}}}}},
    },
}


def _installer(api, username: str) -> bool:
    """Whether the user sees every site: the server's details (paths, URLs, errors, figures of every site
    it serves) are not a viewer's, who sees their own sites only (api/access.py)."""
    grant = api.access.grant_of(username)
    return grant is not None and grant.role == INSTALLER


class HealthResource:
    """The store, the collector (age of the newest sample), the replicator, the reconciliation of the cloud,
    the cloud; 503 when no source can answer. Without a token: states and ages only; an installer's access
    token or a `metrics` machine token adds the details (the store's path, error texts); a viewer's does not."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snap = health_snapshot.snapshot(self.api)
        resp.media = snap if self._entitled(req) else health_snapshot.public(snap)
        if snap["status"] == "down":
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", str(RETRY_AFTER_S))

    def _entitled(self, req: falcon.Request) -> bool:
        """Whether the request carries a token that opens the details (a bad one is no token here)."""
        try:
            token = access_token(req)
            if token is None:
                return False
            if is_machine_token(token):
                return self.api.machine_tokens.check(token).scope in MetricsResource.scopes
            return _installer(self.api, self.api.tokens.check(token, ACCESS)["sub"])
        except Unauthorized:
            return False


class MetricsResource:
    """Prometheus text: the figures of /health, Modbus error counters, rows stored, HTTP requests. An
    installer's access token or a `metrics` machine token (`kammthaar token create NAME --scope metrics`); a
    viewer's: 403."""

    scopes = ("metrics",)

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.context.user is not None and not _installer(self.api, req.context.user):
            raise Forbidden("the metrics are the operator's: an installer's token or a metrics machine token")
        # (a machine token has no user: AuthMiddleware let it in by its scope)
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
              content={"text/plain": {"schema": {"type": "string"}}}, source_header=False, errors=(403,),
              description=MetricsResource.__doc__),
    ]
