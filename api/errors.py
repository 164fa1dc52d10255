"""Every error the API answers, mapped in one place, as one JSON shape.

The shape, pinned by a test: `{"error": CODE, "message": TEXT}` with CODE one
of bad_request, unauthorized, not_found, method_not_allowed, throttled,
unavailable, internal_error (and the other HTTP reasons Falcon itself may
raise, in snake case). Resources and middleware raise the errors below (or
`edge_store`'s, whose `retryable` says whether Retry-After makes sense);
`install(app)` turns each into its status and headers. Nothing answers a
non-JSON error, and an unexpected exception is logged with its traceback and
answered 500 in the same shape.
"""

from __future__ import annotations

import json
import logging
import re

import falcon

from edge_store.errors import KammthaarError, StoreError

from .users import Throttled, UserError

log = logging.getLogger("kammthaar.api")

RETRY_AFTER_S = 5


class BadRequest(KammthaarError):
    """A parameter or body that cannot be used; the message says which and why."""


class Unauthorized(KammthaarError):
    """No token, or one that is forged, expired, revoked, of the wrong type or outdated."""


class NotFound(KammthaarError):
    """Nothing to answer with (no record yet, an unknown site)."""


class Unavailable(KammthaarError):
    """No data source can answer right now (or live data is not fresh): 503 with Retry-After."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: int = RETRY_AFTER_S):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def body(code: str, message: str) -> dict:
    """The one error shape."""
    return {"error": code, "message": message}


def _code(status: str) -> str:
    # "404 Not Found" -> "not_found"
    reason = status.split(" ", 1)[1] if " " in status else status
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")


_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          429: "throttled", 500: "internal_error", 503: "unavailable"}


def _serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon's own errors (404 route, 405 method, 400 bad JSON, ...) in our shape, whatever Accept says."""
    status = exc.status_code
    code = _CODES.get(status) or _code(exc.status)
    if status == 404 and not exc.description:
        message = f"no path {req.path} here (see /openapi.json)"
    elif status == 405 and not exc.description:
        message = f"{req.method} is not allowed on {req.path}"
    else:
        message = exc.description or exc.title or code.replace("_", " ")
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body(code, message))


def _answer(resp: falcon.Response, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body(code, message))
    if retry_after_s is not None:
        resp.set_header("Retry-After", str(int(retry_after_s)))
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="kammthaar"')


def _bad_request(req, resp, exc, params):
    _answer(resp, 400, "bad_request", str(exc))


def _user_error(req, resp, exc, params):
    _answer(resp, 400, "bad_request", str(exc))


def _unauthorized(req, resp, exc, params):
    _answer(resp, 401, "unauthorized", str(exc))


def _not_found(req, resp, exc, params):
    _answer(resp, 404, "not_found", str(exc))


def _throttled(req, resp, exc, params):
    _answer(resp, 429, "throttled", str(exc), exc.retry_after_s)


def _unavailable(req, resp, exc, params):
    _answer(resp, 503, "unavailable", str(exc), exc.retry_after_s)


def _kammthaar_error(req, resp, exc, params):
    # A store or cloud error that no source turned into an answer: 503 when a retry can help.
    log.warning("%s %s: %s", req.method, req.path, exc)
    if exc.retryable or isinstance(exc, StoreError):
        _answer(resp, 503, "unavailable", str(exc), RETRY_AFTER_S)
    else:
        _answer(resp, 500, "internal_error", "the server could not answer; the log says why")


def _unexpected(req, resp, exc, params):
    if isinstance(exc, falcon.HTTPError):  # Falcon's own: status and headers as raised, our shape
        raise exc
    log.exception("%s %s failed", req.method, req.path)
    _answer(resp, 500, "internal_error", "the server could not answer; the log says why")


def install(app: falcon.App) -> None:
    """Map every error to its status and the one JSON shape (most specific handler wins)."""
    app.set_error_serializer(_serialize)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(KammthaarError, _kammthaar_error)
    app.add_error_handler(BadRequest, _bad_request)
    app.add_error_handler(UserError, _user_error)
    app.add_error_handler(Unauthorized, _unauthorized)
    app.add_error_handler(NotFound, _not_found)
    app.add_error_handler(Throttled, _throttled)
    app.add_error_handler(Unavailable, _unavailable)
