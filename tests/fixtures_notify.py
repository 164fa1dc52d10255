"""Real notification receivers on loopback: an HTTP server for apprise's json:// and an SMTP server
(aiosmtpd) for mailto://. Each can be stopped and started again on the same port (a link down, then up)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port


class HttpReceiver:
    """json://127.0.0.1:PORT/hook: every POSTed JSON body in `.got`; `delay_s` before answering."""

    def __init__(self, delay_s: float = 0.0):
        self.port = free_port()
        self.got: list[dict] = []
        self.delay_s = delay_s
        self._server = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> "HttpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay_s)
                receiver.got.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class SmtpReceiver:
    """mailto://127.0.0.1:PORT: every message's text in `.got`."""

    def __init__(self):
        self.port = free_port()
        self.got: list[str] = []
        self._controller = None

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=pi@example.com&to=owner@example.com&mode=insecure"

    def start(self) -> "SmtpReceiver":
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.got.append(envelope.content.decode("utf-8", "replace"))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def http_receiver():
    r = HttpReceiver()
    yield r
    r.stop()


@pytest.fixture
def smtp_receiver():
    r = SmtpReceiver()
    yield r
    r.stop()
