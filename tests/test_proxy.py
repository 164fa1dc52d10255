"""The Ansible role's reverse proxy for real (issue 18): the role's proxy tasks run locally, Debian's nginx
started on free loopback ports with the rendered server block and the self-signed certificate the role made,
in front of a real `kammthaar serve` that trusts it. Slow clients, huge bodies, throttling per client
address and the API's own origin, through the deployed configuration."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import time

import pytest

from api.bodies import MAX_BODY_BYTES
from api.users import PAIR_LIMIT
from tests.fixtures_api import PASSWORD, USER
from tests.fixtures_hostile import (RoleProxy, bare_server, connect, fresh_user, host_of, read_answer, request_head,
                                    send_raw)

SERVER_NAME = "kammthaar.test"  # the name the role's certificate is made for (fixtures_hostile RoleProxy)


@pytest.fixture(scope="module")
def behind(tmp_path_factory, api_servers):
    """`kammthaar serve` on the loopback, trusting 127.0.0.1 (nginx), and the role's nginx in front of it."""
    directory = tmp_path_factory.mktemp("proxy")
    api = bare_server(directory, api_servers, "behind-nginx", api_trusted_proxies="127.0.0.1",
                      api_cookie_secure="true")
    proxy = RoleProxy(directory, f"127.0.0.1:{api.port}")
    rendered = proxy.render()
    assert rendered.returncode == 0, rendered.stdout[-4000:] + rendered.stderr[-2000:]
    proxy.start()
    yield proxy, api
    proxy.stop()


def json_login(proxy, name: str, password: str, source: str | None = None, **headers):
    body = json.dumps({"username": name, "password": password}).encode()
    head = request_head("POST", "/login", host_of(proxy.url), {"Content-Type": "application/json",
                                                               "Content-Length": len(body), "Connection": "close",
                                                               **headers})
    return send_raw(proxy.url, head + body, source_address=source)


def get(url: str, path: str, source: str | None = None, **headers):
    return send_raw(url, request_head("GET", path, host_of(url), {"Connection": "close", **headers}),
                    source_address=source)


def test_nginx_accepts_the_rendered_configuration(behind):
    proxy, _ = behind
    checked = proxy.check()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_http_is_redirected_to_https(behind):
    proxy, _ = behind
    resp = get(proxy.plain_url, "/health?x=1")
    assert resp.status == 301 and resp.headers["location"] == f"https://127.0.0.1:{proxy.https_port}/health?x=1"


def test_the_api_answers_over_https_with_the_role_certificate(behind):
    proxy, _ = behind
    context = ssl.create_default_context(cafile=str(proxy.root / "etc/kammthaar/tls/kammthaar.crt"))
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    with context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:  # verified: name and certificate
        tls.sendall(request_head("GET", "/health", SERVER_NAME, {"Connection": "close"}))
        resp = read_answer(tls)
    assert resp.status == 200 and resp.json()["store"]["reachable"] is True
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in resp.headers  # self-signed: the browser must be able to accept it
    assert "server" not in resp.headers or resp.headers["server"] == "nginx"  # no version


def test_slow_clients_stop_at_nginx(behind):
    """24 connections sending a header line every half second: the API keeps answering through nginx."""
    proxy, _ = behind
    slow = [connect(proxy.url, f"127.0.4.{n % 4 + 1}") for n in range(24)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(6):
            for sock in slow:
                sock.sendall(b"X-Slow: 1\r\n")
            resp = get(proxy.url, "/health")
            assert resp.status == 200, resp.body
            time.sleep(0.5)
    finally:
        for sock in slow:
            sock.close()


def test_bodies_above_the_limit_stop_at_nginx(behind):
    proxy, _ = behind
    head = request_head("POST", "/login", host_of(proxy.url), {"Content-Type": "application/json",
                                                              "Content-Length": 300_000_000})
    announced = send_raw(proxy.url, head)
    assert announced.status == 413 and announced.json() == {
        "error": "content_too_large", "message": f"the body is larger than {MAX_BODY_BYTES} bytes"}
    chunk = b"x" * 16384
    chunked = request_head("POST", "/login", host_of(proxy.url), {"Content-Type": "application/json",
                                                                 "Transfer-Encoding": "chunked"})
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY_BYTES // len(chunk) + 2))
    assert send_raw(proxy.url, chunked + chunks + b"0\r\n\r\n").status == 413
    nested = b"[" * 5000 + b"]" * 5000
    deep = send_raw(proxy.url, request_head("POST", "/login", host_of(proxy.url), {
        "Content-Type": "application/json", "Content-Length": len(nested), "Connection": "close"}) + nested)
    assert deep.status == 400 and deep.json()["error"] == "bad_request"


def test_throttling_through_nginx_is_per_client_address(behind):
    """nginx names each client in X-Forwarded-For (replacing what the client wrote); the API trusts nginx."""
    proxy, api = behind
    name, _ = fresh_user(api.settings["store_path"])
    for n in range(PAIR_LIMIT):  # a spoofed X-Forwarded-For changes nothing: nginx replaces it
        assert json_login(proxy, name, "guess", "127.0.5.1", **{"X-Forwarded-For": f"10.1.1.{n}"}).status == 401
    assert json_login(proxy, name, "correct horse battery", "127.0.5.1").status == 429
    assert json_login(proxy, name, "correct horse battery", "127.0.5.2").status == 200


def test_the_apis_own_https_origin_is_allowed_through_nginx(behind):
    proxy, _ = behind
    own = f"https://{host_of(proxy.url)}"
    assert json_login(proxy, USER, PASSWORD, Origin=own).status == 200
    assert json_login(proxy, USER, PASSWORD, Origin=own.replace("https:", "http:")).status == 403


def test_a_certificate_from_the_inventory_is_installed_and_announced_with_hsts(tmp_path):
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=fleet.example", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    proxy = RoleProxy(tmp_path / "role", "127.0.0.1:8000")
    done = proxy.render(kammthaar_proxy_tls_certificate=certificate.read_text(), kammthaar_proxy_tls_key=key.read_text())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    tls = proxy.root / "etc/kammthaar/tls"
    assert (tls / "kammthaar.crt").read_text() == certificate.read_text()
    assert (tls / "kammthaar.key").read_text() == key.read_text()
    assert stat.S_IMODE((tls / "kammthaar.key").stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in done.stdout + done.stderr  # no_log
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in proxy.site.read_text()
    checked = proxy.check()
    assert checked.returncode == 0, checked.stderr
