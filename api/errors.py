"""Every error the API answers, mapped in one place, as one JSON shape.

The shape, pinned by a test: `{"error": CODE, "message": TEXT}` with CODE one
of bad_request, unauthorized, forbidden, not_found, method_not_allowed, throttled,
unavailable, internal_error (and the other HTTP reasons Falcon itself may
raise, in snake case). Resources and middleware raise the errors below (or
`edge_store`'s, whose `retryable` says whether Retry-After makes sense);
`install(app)` turns each into Falcon's HTTP error of its status, which
carries its own headers (Retry-After, WWW-Authenticate, Allow), and one
serializer writes every HTTP error, ours and Falcon's, in the shape. Nothing
answers a non-JSON error, and an unexpected exception is logged with its
traceback and answered 500 in the same shape.
"""

from __future__ import annotations

import json
import logging
import re

import falcon

from edge_store.errors import KammthaarError, StoreError

from .throttle import Throttled
from .users import UserError

log = logging.getLogger("kammthaar.api")

RETRY_AFTER_S = 5
INTERNAL = "the server could not answer; the log says why"
CHALLENGE = 'Bearer realm="kammthaar"'


class BadRequest(KammthaarError):
    """A parameter or body that cannot be used; the message says which and why."""


class Unauthorized(KammthaarError):
    """No token, or one that is forged, expired, revoked, of the wrong type or outdated."""


class Forbidden(KammthaarError):
    """A valid token that does not open this path (a machine token outside its scope)."""


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


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          429: "throttled", 500: "internal_error", 503: "unavailable"}


def _code(status: str) -> str:
    # "404 Not Found" -> "not_found"
    reason = status.split(" ", 1)[1] if " " in status else status
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")


def _serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """The one serializer: every HTTP error (ours and Falcon's: 404 route, 405 method, 400 bad JSON, ...)
    in our shape, whatever Accept says."""
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


def http_error(exc: KammthaarError) -> falcon.HTTPError:
    """Falcon's HTTP error for one of our errors: its status, its headers, our message."""
    message = str(exc)
    if isinstance(exc, (BadRequest, UserError)):
        return falcon.HTTPBadRequest(description=message)
    if isinstance(exc, Unauthorized):
        return falcon.HTTPUnauthorized(description=message, challenges=[CHALLENGE])
    if isinstance(exc, Forbidden):
        return falcon.HTTPForbidden(description=message)
    if isinstance(exc, NotFound):
        return falcon.HTTPNotFound(description=message)
    if isinstance(exc, Throttled):
        return falcon.HTTPTooManyRequests(description=message, retry_after=int(exc.retry_after_s))
    if isinstance(exc, Unavailable):
        return falcon.HTTPServiceUnavailable(description=message, retry_after=int(exc.retry_after_s))
    # A store or cloud error that no source turned into an answer: 503 when a retry can help.
    if exc.retryable or isinstance(exc, StoreError):
        return falcon.HTTPServiceUnavailable(description=message, retry_after=RETRY_AFTER_S)
    return falcon.HTTPInternalServerError(description=INTERNAL)


# What the client did, or must wait for: answered, not logged.
_ANSWERED = (BadRequest, UserError, Unauthorized, Forbidden, NotFound, Throttled, Unavailable)


def _kammthaar_error(req: falcon.Request, resp: falcon.Response, exc: KammthaarError, params) -> None:
    if not isinstance(exc, _ANSWERED):
        log.warning("%s %s: %s", req.method, req.path, exc)
    raise http_error(exc)


def _unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params) -> None:
    if isinstance(exc, falcon.HTTPError):  # Falcon's own: status and headers as raised, our shape
        raise exc
    log.exception("%s %s failed", req.method, req.path)
    raise falcon.HTTPInternalServerError(description=INTERNAL)


def install(app: falcon.App) -> None:
    """Map every error to Falcon's HTTP error of its status, written by the one serializer."""
    app.set_error_serializer(_serialize)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(KammthaarError, _kammthaar_error)
