"""gunicorn's threaded worker with a deadline on reading each request.

gunicorn's gthread worker waits a few seconds for a new connection's first
byte, but once a request has begun it reads headers and body with blocking
calls and no limit: a client sending one header line every few seconds holds
a worker thread for as long as it likes, and a dozen of them stop the API.
Here each request (its headers and its body) must have arrived within
`read_timeout_s` of the moment a thread took it up; a slower client is
disconnected (gunicorn's "premature client disconnection", logged at debug;
a body cut short reaches the app as an OSError, answered 408 by api/bodies.py).
The reverse proxy in front (the Ansible role's nginx) buffers whole requests,
so in production only it deals with slow clients; this bounds what reaches
gunicorn directly.
"""

from __future__ import annotations

import socket
import time

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker


class DeadlineSocket:
    """A client socket whose reads fail once the current request's deadline has passed."""

    def __init__(self, sock: socket.socket, timeout_s: float):
        self._sock = sock
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s

    def restart(self) -> None:
        """A new request begins: it has the whole timeout again."""
        self._deadline = time.monotonic() + self._timeout_s

    def _bounded(self, read, *args):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise NoMoreData(b"")
        self._sock.settimeout(remaining)
        try:
            return read(*args)
        except TimeoutError:
            raise NoMoreData(b"") from None
        finally:
            self._sock.settimeout(None)  # writes (the answer) stay blocking, without a deadline

    def recv(self, *args):
        return self._bounded(self._sock.recv, *args)

    def recv_into(self, *args):
        return self._bounded(self._sock.recv_into, *args)

    def __getattr__(self, name):  # fileno, send, sendall, setblocking, close...: the socket's own
        return getattr(self._sock, name)


class DeadlineWorker(ThreadWorker):
    """gthread, with `DeadlineSocket` on every client connection."""

    read_timeout_s = 10.0  # set from [api] read_timeout_s by gunicorn_server before the workers fork

    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout_s)
        else:
            conn.sock.restart()
        return super().handle(conn)
