"""Request bodies, bounded before they are read: size, media type, nesting.

- `BodyLimit` (middleware, first in line): a body above `MAX_BODY_BYTES` is
  answered 413 on its Content-Length alone, before a byte of it is read; a
  chunked body (no Content-Length) is read up to the limit and answered 413
  as soon as it goes beyond. A body that is not all there within the
  server's read timeout is 408. A POST (PUT, PATCH, DELETE) with a body, or
  with a Content-Type, must be `application/json` (415): a cross-site HTML
  form cannot send JSON without a CORS preflight.
- `JSON`: the request media handler: nesting deeper than `MAX_DEPTH` is a
  400 before the parser recurses into it (the standard library's parser
  would raise RecursionError, a 500 with a traceback per request).
"""

from __future__ import annotations

import io
import json
import re

import falcon
import falcon.media

from .clients import UNSAFE

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32
READ_CHUNK = 16 * 1024
_STRINGS = re.compile(rb'"(?:\\.|[^"\\])*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def _timed_out() -> falcon.HTTPError:
    return falcon.HTTPError(falcon.HTTP_408, description="the body did not arrive in time")


def _too_large() -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(description=f"the body is larger than {MAX_BODY_BYTES} bytes")


class BodyLimit:
    """Middleware: Content-Length checked, chunked bodies read with a bound, unsafe methods JSON only."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise _too_large()
        chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
        if length is None and chunked:
            data = self._read_bounded(req.stream)
            req.env["wsgi.input"] = io.BytesIO(data)  # falcon reads CONTENT_LENGTH bytes of it, lazily
            req.env["CONTENT_LENGTH"] = str(len(data))
            req.stream = req.env["wsgi.input"]
            length = len(data)
        if req.method in UNSAFE and (length or req.content_type):
            media = (req.content_type or "").split(";")[0].strip().lower()
            if media != falcon.MEDIA_JSON:
                raise falcon.HTTPUnsupportedMediaType(
                    description=f"the body must be application/json, not {media[:60] or 'untyped'}")

    @staticmethod
    def _read_bounded(stream) -> bytes:
        parts, size = [], 0
        try:
            while True:
                chunk = stream.read(READ_CHUNK)
                if not chunk:
                    return b"".join(parts)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large()
                parts.append(chunk)
        except OSError:  # the server's read deadline passed, or the client went away
            raise _timed_out() from None


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    deepest = level = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', data)):
        if bracket in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


class JSON(falcon.media.BaseHandler):
    """JSON request bodies with a bounded size and nesting (answers keep falcon's handler)."""

    def deserialize(self, stream, content_type, content_length):
        try:
            data = stream.read(MAX_BODY_BYTES + 1)
        except OSError:
            raise _timed_out() from None
        if len(data) > MAX_BODY_BYTES:
            raise _too_large()
        if not data:
            raise falcon.MediaNotFoundError("JSON")
        if depth(data) > MAX_DEPTH:
            raise falcon.HTTPBadRequest(description=f"the JSON body is nested deeper than {MAX_DEPTH} levels")
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise falcon.MediaMalformedError("JSON") from exc


def install(app: falcon.App) -> None:
    """The bounded JSON handler for requests (answers unchanged)."""
    app.req_options.media_handlers[falcon.MEDIA_JSON] = JSON()
