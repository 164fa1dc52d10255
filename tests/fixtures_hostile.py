"""Real parts for the hostile-client tests (issue 18): a bare `kammthaar serve` on a migrated store with a
user (no collector, no cloud: what the attacks need and nothing more), raw HTTP over sockets (slow
clients, bodies that lie about their length), and the Ansible role's nginx rendered and started on free
loopback ports in front of a server.

- `bare_server(directory, api_servers, name, **settings)`: `kammthaar serve` on a new store with a user;
  `bare_api` (module): one with `[api] read_timeout_s = 2`; `fresh_user(db)`: a new user and its password.
- `send_raw(url, data)`: bytes on a new connection (TLS for https://, the proxy's self-signed
  certificate not verified), the answer parsed; `connect(url)`: a socket for slowloris.
- `RoleProxy`: the role's `proxy` tasks run locally (`--tags proxy`) into a throwaway root, the
  rendered server block included by a minimal nginx.conf of the test's (pid, logs, temp files in
  tmp), `nginx -t`, then nginx in the foreground.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from api.users import Users
from edge_store import migrate
from tests.ansible_support import BIN, ansible_env, local_run_vars, run
from tests.fixtures_api import add_user
from tests.support import Process, free_port, wait_until

READ_TIMEOUT_S = 2


def nginx_binary() -> str:
    """Debian installs it in /usr/sbin, outside a user's PATH."""
    return shutil.which("nginx") or "/usr/sbin/nginx"


def bare_server(directory: Path, api_servers, name: str, **settings):
    """`kammthaar serve` alone (local source, no cloud) on a new migrated store in `directory` with the
    tests' user; `settings` added."""
    db = directory / "kammthaar.db"
    migrate.upgrade(db)
    add_user(db)
    return api_servers(directory, name, store_path=db, api_sources="local", cloud_url="", **settings)


@pytest.fixture(scope="module")
def bare_api(tmp_path_factory, api_servers):
    return bare_server(tmp_path_factory.mktemp("bare-api"), api_servers, "bare",
                       api_cors_origins="http://localhost:4200", api_read_timeout_s=READ_TIMEOUT_S)


def fresh_user(db, password: str = "correct horse battery") -> tuple[str, str]:
    """A new user of its own (no other test's failed logins count against it): (name, password)."""
    users = Users(db)
    try:
        name = f"u-{uuid.uuid4().hex[:10]}"
        users.add(name, password)
    finally:
        users.close()
    return name, password


# -- raw HTTP -----------------------------------------------------------------------------------------

@dataclass
class RawAnswer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def connect(url: str, source_address: str | None = None, timeout_s: float = 20) -> socket.socket:
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout_s,
                                    source_address=(source_address, 0) if source_address else None)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the role's self-signed certificate
        sock = context.wrap_socket(sock, server_hostname=parts.hostname)
    return sock


def read_answer(sock: socket.socket) -> RawAnswer:
    """One HTTP/1.1 answer (Content-Length or until the connection closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", -1))
    while length < 0 or len(body) < length:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        body += chunk
    return RawAnswer(status, headers, body[:length] if length >= 0 else body)


def send_raw(url: str, data: bytes, source_address: str | None = None) -> RawAnswer:
    """`data` (a whole request, or only its beginning) on a new connection; the answer."""
    sock = connect(url, source_address)
    try:
        sock.sendall(data)
        return read_answer(sock)
    finally:
        sock.close()


def request_head(method: str, path: str, host: str, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


# -- the role's reverse proxy ---------------------------------------------------------------------------

WRAPPER = """\
# The test's main nginx.conf: what Debian's /etc/nginx/nginx.conf gives the role's server block.
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    include {site};
}}
"""


def nginx_wrapper(site: Path, directory: Path) -> Path:
    """A main nginx.conf including the role's rendered server block, everything else in `directory`."""
    tmp = directory / "nginx"
    tmp.mkdir(parents=True, exist_ok=True)
    path = directory / "nginx.conf"
    path.write_text(WRAPPER.format(tmp=tmp, site=site, user="user root;" if os.getuid() == 0 else ""))
    return path


def nginx_check(site: Path, directory: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on the role's rendered server block."""
    return subprocess.run([nginx_binary(), "-t", "-c", str(nginx_wrapper(site, directory))], capture_output=True,
                          text=True, timeout=60)


class RoleProxy:
    """The role's nginx (its rendered server block and self-signed certificate) in front of `upstream`."""

    def __init__(self, directory: Path, upstream: str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = self.dir / "root"
        self.https_port, self.http_port = free_port(), free_port()
        self.upstream = upstream  # the API's [api] listen, HOST:PORT
        self.process: Process | None = None

    def render(self, **variables) -> subprocess.CompletedProcess:
        """The role's proxy tasks, locally, into `root` (as test_ansible_static renders configs), with
        `variables` added."""
        extra = self.dir / "proxy.yml"
        extra.write_text(yaml.safe_dump(local_run_vars(
            self.root, kammthaar_api_listen=self.upstream, kammthaar_proxy_server_name="kammthaar.test",
            kammthaar_proxy_https_port=self.https_port, kammthaar_proxy_http_port=self.http_port, **variables)))
        inventory = self.dir / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"kammthaar": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        return run([str(BIN / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra}",
                    "-e", "kammthaar_api_jwt_secret=not-used-by-the-proxy-tasks-0Xq8Lr2Vw5Zt",
                    "--tags", "proxy", "site.yml"], ansible_env(self.dir / "ansible-home"))

    @property
    def site(self) -> Path:
        return self.root / "etc/nginx/conf.d/kammthaar.conf"

    def wrapper(self) -> Path:
        return nginx_wrapper(self.site, self.dir)

    def check(self) -> subprocess.CompletedProcess:
        return nginx_check(self.site, self.dir)

    def start(self) -> "RoleProxy":
        self.process = Process([nginx_binary(), "-c", str(self.wrapper()), "-g", "daemon off;"],
                               self.dir / "nginx.log")
        self.process.start(ready=lambda: self._answers(), timeout_s=20)
        return self

    def _answers(self) -> bool:
        try:
            head = request_head("GET", "/health", host_of(self.url), {"Connection": "close"})
            return send_raw(self.url, head).status > 0
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def plain_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(10)


def wait_closed(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the peer closes `sock` (EOF or reset) within `timeout_s`; reads and drops what comes."""
    def closed():
        try:
            return sock.recv(4096) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return False
    sock.settimeout(0.2)
    try:
        return bool(wait_until(closed, timeout_s, "the connection was not closed"))
    except TimeoutError:
        return False
