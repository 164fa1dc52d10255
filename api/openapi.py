"""The OpenAPI 3 description, built from the routes the app serves (so it cannot list a path the code
does not answer, nor miss one), with every answer's schema and every error status."""

from __future__ import annotations

import re

from .errors import RETRY_AFTER_S

VERSION = "1.0.0"

ERROR_SCHEMA = {"type": "object", "required": ["error", "message"], "additionalProperties": False,
                "properties": {"error": {"type": "string", "description": "machine-readable code"},
                               "message": {"type": "string", "description": "what was wrong"}}}
ERROR_TEXT = {400: "A parameter or body that cannot be used; the message says which",
              401: "No access token, or one that is forged, expired, revoked, of the wrong type or outdated",
              403: "A machine token whose scope does not open this path (a metrics token opens /metrics)",
              404: "No data for this site or device (none stored yet, a device not configured, or the site is not served here)",
              429: "Too many failed logins: wait Retry-After seconds",
              503: "No data source can answer right now (or live data is not fresh): retry after Retry-After seconds"}
SOURCE_HEADER = {"X-Data-Source": {"required": True, "description": "where the answer came from",
                                   "schema": {"type": "string", "enum": ["local", "cloud"]}}}
RETRY_HEADER = {"Retry-After": {"required": True, "description": "seconds",
                                "schema": {"type": "integer", "minimum": 1}}}


def _operation_id(method: str, path: str) -> str:
    return method + "_" + (re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root")


def _operation(route) -> dict:
    op: dict = {"operationId": _operation_id(route.method, route.path), "summary": route.summary,
                "tags": [route.tag], "security": [{"bearerAuth": []}, {"cookieAuth": []}] if route.auth else []}
    if route.description:
        op["description"] = " ".join(route.description.split())
    if route.params:
        op["parameters"] = list(route.params)
    if route.request_body:
        op["requestBody"] = route.request_body
    ok: dict = {"description": "OK"}
    if route.content is not None:
        ok["content"] = route.content
    elif route.schema is not None:
        ok["content"] = {"application/json": {"schema": route.schema}}
    if route.source_header:
        ok["headers"] = SOURCE_HEADER
        if route.extra.get("source_optional"):  # absent when no source could be asked
            ok["headers"] = {"X-Data-Source": {**SOURCE_HEADER["X-Data-Source"], "required": False}}
    responses = {"200": ok}
    statuses = set(route.errors) | ({401, 403} if route.auth else set())
    for status in sorted(statuses):
        answer = {"description": ERROR_TEXT[status],
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if status in (429, 503):
            answer["headers"] = RETRY_HEADER
        responses[str(status)] = answer
    responses.update({k: v for k, v in route.extra.items() if k.isdigit()})
    op["responses"] = responses
    return op


def document(routes, *, site: str) -> dict:
    """The OpenAPI 3.0 document of `routes` (those not marked hidden)."""
    paths: dict = {}
    for route in routes:
        if route.extra.get("hidden"):
            continue
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Kammthaar API", "version": VERSION,
                 "description": "Solar and battery data of an off-grid site, from the edge store (local) or "
                                "InfluxDB (cloud): `X-Data-Source` says which. Log in with POST /login, then send "
                                "`Authorization: Bearer <access_token>` (or let the browser send the "
                                f"access_token_cookie). Default site: {site}. Errors: "
                                "`{\"error\", \"message\"}`; 429 and 503 carry Retry-After "
                                f"(503: typically {RETRY_AFTER_S} s)."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "access_token_cookie"},
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
