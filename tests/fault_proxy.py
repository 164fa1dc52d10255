"""A stdlib HTTP proxy in front of a server that answers what a test scripts (429/503 with Retry-After,
413 above a body size, a dropped connection) and logs every request it saw, in order."""

from __future__ import annotations

import gzip
import http.client
import http.server
import json
import threading
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One request the proxy saw, and what it did with it."""

    path: str
    lines: int
    bytes: int
    answer: int | str  # an HTTP status, or "dropped"
    headers: dict = field(default_factory=dict)


class FaultProxy:
    """An HTTP proxy to `upstream` answering from a script of faults, then passing through.

    `script` holds the next answers, used one per request, in order: an int
    status (with `retry_after` seconds when given as a tuple (status, retry_after)),
    or "drop" (close the connection without an answer). When the script is
    empty the request is forwarded. With `max_body_bytes` set, any write whose
    decompressed body is larger is answered 413 (before the script).
    """

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.script: list = []
        self.max_body_bytes: int | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_POST(self):
                proxy._handle(self, "POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A client that gave up (the replicator's timeout) or an upstream that was killed is part of
        # the scenario, not news: keep the traceback socketserver would print out of the test output.
        self.server.handle_error = lambda request, client_address: None
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> list:
        return [s.answer for s in self.seen if s.path.split("?")[0].endswith("write")]

    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = gzip.decompress(raw) if h.headers.get("Content-Encoding") == "gzip" and raw else raw
        lines = len([ln for ln in body.split(b"\n") if ln.strip()])
        with self._lock:
            action = None
            if h.path.split("?")[0].endswith("write"):
                if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
                    action = 413
                elif self.script:
                    action = self.script.pop(0)
            seen = Seen(h.path, lines, len(body), 0, dict(h.headers))
            self.seen.append(seen)
        if action == "drop":
            seen.answer = "dropped"
            h.close_connection = True
            try:
                h.connection.shutdown(2)
            except OSError:
                pass
            return
        if action is not None:
            status, retry_after = action if isinstance(action, tuple) else (action, None)
            seen.answer = status
            payload = json.dumps({"error": f"injected {status}"}).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            if retry_after is not None:
                h.send_header("Retry-After", str(retry_after))
            h.end_headers()
            h.wfile.write(payload)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(method, h.path, body=raw if method == "POST" else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            seen.answer = resp.status
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
