"""What a hostile client got through (issue 18), each finding over HTTP against `kammthaar serve` (gunicorn):
tokens coming back, huge and slow requests, nesting, lock-outs, /metrics growth, /health leaks, login CSRF,
the headers. The same requests through the Ansible role's nginx: tests/test_proxy.py."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid

import jwt

from api.auth import REFRESH_COOKIE
from api.bodies import MAX_BODY_BYTES, MAX_DEPTH
from api.users import PAIR_LIMIT, USER_LIMIT, Users
from edge_store import migrate
from edge_store.reconcile_log import ReconcileLog
from tests.fixtures_api import PASSWORD, SECRET, USER
from tests.fixtures_hostile import (READ_TIMEOUT_S, connect, fresh_user, host_of, request_head, send_raw,
                                    wait_closed)
from tests.support import clean_env, kammthaar, rows_in


def login(client, name: str, password: str, **kw):
    return client.post("/login", json_body={"username": name, "password": password}, **kw)


def db_of(server):
    return server.settings["store_path"]


# -- 1. token identity ---------------------------------------------------------------------------------

def test_a_removed_user_added_again_never_gets_its_old_tokens_back(bare_api):
    env = clean_env(store_path=db_of(bare_api))
    name, password = fresh_user(db_of(bare_api))
    c = bare_api.client()
    first = login(c, name, password)
    access, refresh = first.json()["access_token"], first.cookies()[REFRESH_COOKIE].value
    assert kammthaar("user", "remove", name, env=env).returncode == 0
    added = kammthaar("user", "add", name, env=env, stdin="another password 2\n")
    assert added.returncode == 0, added.stderr
    for resp in (c.get("/user", token=access), c.post("/refresh", json_body={"refresh_token": refresh}),
                 c.post("/refresh", cookies={REFRESH_COOKIE: refresh})):
        assert resp.status == 401 and "no longer exists" in resp.json()["message"], resp.body
    assert c.get("/user", token=login(c, name, "another password 2").json()["access_token"]).status == 200


def test_a_revoked_machine_token_never_comes_back_with_its_name(bare_api):
    env = clean_env(store_path=db_of(bare_api))
    name = f"scraper-{uuid.uuid4().hex[:6]}"
    old = kammthaar("token", "create", name, "--scope", "metrics", env=env).stdout.strip()
    assert kammthaar("token", "revoke", name, env=env).returncode == 0
    new = kammthaar("token", "create", name, "--scope", "metrics", env=env).stdout.strip()
    c = bare_api.client()
    assert c.get("/metrics", token=old).status == 401
    assert c.get("/metrics", token=new).status == 200


def test_a_token_living_longer_than_the_configured_lifetime_is_refused(bare_api):
    name, _ = fresh_user(db_of(bare_api))
    users = Users(db_of(bare_api))
    try:
        account = users.get(name).account_id
    finally:
        users.close()
    now = int(time.time())
    claims = {"iss": "kammthaar", "sub": name, "iat": now, "jti": uuid.uuid4().hex, "type": "access", "ver": 0,
              "aid": account}
    c = bare_api.client()
    assert c.get("/user", token=jwt.encode({**claims, "exp": now + 900}, SECRET, algorithm="HS256")).status == 200
    ten_years = jwt.encode({**claims, "exp": now + 10 * 365 * 86400}, SECRET, algorithm="HS256")
    refused = c.get("/user", token=ten_years)
    assert refused.status == 401 and "lives longer than 900 s" in refused.json()["message"]


# -- 2. bodies and slow requests -------------------------------------------------------------------------

def login_head(url: str, **headers) -> bytes:
    return request_head("POST", "/login", host_of(url), {"Content-Type": "application/json", **headers})


def test_a_body_above_the_limit_is_413_before_it_is_read(bare_api):
    url = bare_api.url
    # 300 MB announced, not a byte sent: answered at once from the Content-Length.
    announced = send_raw(url, login_head(url, **{"Content-Length": 300_000_000}))
    assert announced.status == 413 and announced.json()["error"] == "content_too_large"
    body = b'{"username": "' + b"x" * MAX_BODY_BYTES + b'", "password": "p"}'
    whole = send_raw(url, login_head(url, **{"Content-Length": len(body), "Connection": "close"}) + body)
    assert whole.status == 413
    # Chunked: no length to check; refused as soon as the reading goes beyond the limit.
    chunk = b"x" * 16384
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY_BYTES // len(chunk) + 2))
    streamed = send_raw(url, login_head(url, **{"Transfer-Encoding": "chunked"}) + chunks + b"0\r\n\r\n")
    assert streamed.status == 413
    # A small chunked JSON body still logs in.
    small = json.dumps({"username": USER, "password": PASSWORD}).encode()
    ok = send_raw(url, login_head(url, **{"Transfer-Encoding": "chunked", "Connection": "close"})
                  + b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
    assert ok.status == 200, ok.body


def test_deeply_nested_json_is_400_without_a_traceback(bare_api):
    c = bare_api.client()
    for levels in (MAX_DEPTH + 1, 20_000):
        resp = c.post("/login", body=b"[" * levels + b"]" * levels, headers={"Content-Type": "application/json"})
        assert resp.status == 400 and resp.json()["error"] == "bad_request", resp.body[:200]
    assert "Traceback" not in bare_api.process.log()


def test_a_slow_client_is_disconnected_after_the_read_timeout(bare_api):
    """A header line every half second: gunicorn drops the connection once [api] read_timeout_s has passed,
    while a normal request is answered."""
    sockets = [connect(bare_api.url) for _ in range(12)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(READ_TIMEOUT_S * 2 + 2):
            for sock in sockets:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            time.sleep(0.5)
        assert all(wait_closed(sock, READ_TIMEOUT_S * 5) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    assert bare_api.client().get("/health", timeout_s=10).status == 200


def test_a_body_that_stops_coming_is_408(bare_api):
    """Headers complete, 10 of 100 announced bytes, then nothing: 408 once [api] read_timeout_s has passed."""
    url = bare_api.url
    stalled = send_raw(url, login_head(url, **{"Content-Length": 100}) + b'{"username"')
    assert stalled.status == 408 and stalled.json()["error"] == "request_timeout", stalled.body
    assert "Traceback" not in bare_api.process.log()


# -- 2 and 3. throttling -------------------------------------------------------------------------------

def test_concurrent_wrong_logins_never_overshoot_the_limit(bare_api):
    name, _ = fresh_user(db_of(bare_api))
    c = bare_api.client(source_address="127.0.0.41")
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(login(c, name, "wrong guess").status))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * PAIR_LIMIT + [429] * (16 - PAIR_LIMIT)


def test_other_clients_failures_never_lock_the_owner_out(bare_api):
    """5 wrong passwords from each of 10 addresses: each address soon waits, the owner logging in from an
    address that has not failed is let in at once."""
    name, password = fresh_user(db_of(bare_api))
    wrong = 0
    for n in range(10):
        attacker = bare_api.client(source_address=f"127.0.1.{n + 1}")
        for _ in range(PAIR_LIMIT):
            resp = login(attacker, name, "guess")
            assert resp.status in (401, 429)
            wrong += resp.status == 401
    assert wrong <= USER_LIMIT + 10  # past the user's limit, each address had one guess
    resp = login(attacker, name, password)  # the right password from an address that failed: waits too
    assert resp.status == 429 and int(resp.headers["retry-after"]) > 0
    assert login(bare_api.client(source_address="127.0.1.200"), name, password).status == 200


def test_x_forwarded_for_is_believed_from_trusted_proxies_only(tmp_path, api_servers, bare_api):
    proxied = api_servers(tmp_path, "proxied", store_path=db_of(bare_api), api_sources="local", cloud_url="",
                          api_trusted_proxies="127.0.0.1")
    name, password = fresh_user(db_of(bare_api))
    via_proxy = proxied.client()  # from 127.0.0.1: a trusted proxy
    for _ in range(PAIR_LIMIT):
        assert login(via_proxy, name, "guess", headers={"X-Forwarded-For": "10.9.9.9, 127.0.0.77"}).status == 401
    blocked = login(via_proxy, name, password, headers={"X-Forwarded-For": "127.0.0.77"})
    assert blocked.status == 429  # 127.0.0.77 failed, whatever it wrote on the left
    assert login(via_proxy, name, password, headers={"X-Forwarded-For": "127.0.0.78"}).status == 200
    # Anybody else's X-Forwarded-For is not believed: 127.0.0.2 stays 127.0.0.2.
    other, other_password = fresh_user(db_of(bare_api))
    spoofer = proxied.client(source_address="127.0.0.2")
    for n in range(PAIR_LIMIT):
        assert login(spoofer, other, "guess", headers={"X-Forwarded-For": f"10.0.0.{n}"}).status == 401
    assert login(spoofer, other, other_password, headers={"X-Forwarded-For": "10.0.0.99"}).status == 429


# -- 4. /metrics ------------------------------------------------------------------------------------------

def test_made_up_methods_and_paths_do_not_grow_metrics(bare_api):
    c = bare_api.client()
    token = c.login()
    before = c.get("/metrics", token=token).body.decode()
    for n in range(200):
        c.request(f"X{uuid.uuid4().hex[:8].upper()}", f"/made/up/{n}")
    c.request("GET", f"/made/up/{uuid.uuid4().hex}")
    after = c.get("/metrics", token=token).body.decode()
    assert "/made/up" not in after and 'method="X' not in after
    assert 'method="other"' in after
    assert len(after.splitlines()) - len(before.splitlines()) < 100


# -- 5. /health ---------------------------------------------------------------------------------------------

def test_health_without_a_token_shows_no_paths_urls_or_errors(tmp_path, api_servers, bare_api):
    store = tmp_path / "secret-dir-x" / "k.db"
    store.parent.mkdir()
    migrate.upgrade(store)
    cloud_url = "http://127.0.0.1:9/internal-influx"  # nothing listens on the discard port
    server = api_servers(tmp_path, "health", store_path=store, api_sources="local,cloud", cloud_url=cloud_url,
                         cloud_api="v1", cloud_database="x")
    store.rename(store.with_suffix(".moved"))  # the store goes away: its error names the file
    anonymous = server.client().get("/health")
    text = anonymous.body.decode()
    assert anonymous.status == 503, text
    assert "secret-dir-x" not in text and "127.0.0.1:9" not in text and "internal-influx" not in text, text
    body = anonymous.json()
    assert body["store"]["reachable"] is False and body["store"]["error"].startswith("details need a token")
    assert body["cloud"] == {"configured": True, "reachable": False}
    # /serveur/status needs no token either: "no data source can answer", not where or why.
    status = server.client().get("/serveur/status").body.decode()
    assert "no data source can answer" in status, status
    assert "secret-dir-x" not in status and "127.0.0.1:9" not in status and "internal-influx" not in status, status
    # A metrics machine token sees the details (on a server whose store is there).
    token = kammthaar("token", "create", "health-reader", "--scope", "metrics",
                      env=clean_env(store_path=db_of(bare_api))).stdout.strip()
    detailed = bare_api.client().get("/health", token=token).json()
    assert detailed["store"]["path"] == str(db_of(bare_api))
    assert "path" not in bare_api.client().get("/health").json()["store"]


def test_health_without_a_token_hides_why_reconciliation_is_off(bare_api):
    """Issue 14's reconciliation state: its `unsupported` text names the cloud's URL."""
    log = ReconcileLog(db_of(bare_api))
    try:
        log.record_unsupported("the cloud does not answer InfluxQL at http://10.9.8.7:8086/internal/query (404)")
        c = bare_api.client()
        text = c.get("/health").body.decode()
        assert "10.9.8.7" not in text and "internal/query" not in text, text
        assert json.loads(text)["reconciliation"]["unsupported"].startswith("details need a token")
        detailed = c.get("/health", token=c.login()).json()["reconciliation"]["unsupported"]
        assert "10.9.8.7:8086" in detailed
    finally:
        log.record_unsupported(None)
        log.close()


def test_a_viewers_token_opens_neither_the_health_details_nor_the_metrics(bare_api):
    """A viewer sees their own sites only (issue 15): the server's paths, errors and figures are not theirs."""
    users = Users(db_of(bare_api))
    try:
        name = f"v-{uuid.uuid4().hex[:10]}"
        users.add(name, "a viewer password 1", role="viewer", sites=("van-lisa",))
    finally:
        users.close()
    c = bare_api.client()
    token = login(c, name, "a viewer password 1").json()["access_token"]
    assert "path" not in c.get("/health", token=token).json()["store"]
    refused = c.get("/metrics", token=token)
    assert refused.status == 403 and refused.json()["error"] == "forbidden", refused.body
    assert "path" in c.get("/health", token=c.login()).json()["store"]


# -- 6. login CSRF ---------------------------------------------------------------------------------------

def test_cookie_posts_accept_only_json_from_allowed_origins(bare_api):
    c = bare_api.client()
    form = c.post("/login", body=f"username={USER}&password={PASSWORD}".encode(),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415 and form.json()["error"] == "unsupported_media_type"
    assert c.post("/logout", body=b"", headers={"Content-Type": "text/plain"}).status == 415
    evil = {"Origin": "https://evil.example"}
    refused = c.post("/login", json_body={"username": USER, "password": PASSWORD}, headers=evil)
    assert refused.status == 403 and "set-cookie" not in refused.headers
    session = login(c, USER, PASSWORD).cookies()
    jar = {name: morsel.value for name, morsel in session.items()}
    out = c.post("/logout", cookies=jar, headers=evil)
    assert out.status == 403 and "set-cookie" not in out.headers
    assert c.post("/refresh", cookies=jar, headers={"Origin": "null"}).status == 403
    for origin in ("http://localhost:4200", bare_api.url):  # [api] cors_origins, and the API's own origin
        assert login(c, USER, PASSWORD, headers={"Origin": origin}).status == 200, origin
    assert c.post("/refresh", cookies=jar, headers={"Origin": bare_api.url}).status == 200


# -- 9. headers -------------------------------------------------------------------------------------------

def test_nosniff_everywhere_and_no_store_on_authenticated_answers(bare_api):
    c = bare_api.client()
    token = c.login()
    anonymous = [c.get("/health"), c.get("/openapi.json"), c.get("/no/such/path"), c.get("/user")]
    authenticated = [c.get("/user", token=token), c.get("/metrics", token=token),
                     c.get("/battery/last", token=token)]
    for resp in anonymous + authenticated:
        assert resp.headers["x-content-type-options"] == "nosniff", resp.status
    for resp in authenticated:
        assert resp.headers["cache-control"] == "no-store", resp.status
    assert "cache-control" not in c.get("/openapi.json").headers


# -- migration 0013 ----------------------------------------------------------------------------------------

def test_migration_0013_gives_existing_users_an_account_id_and_goes_down_and_up(tmp_path):
    path = tmp_path / "k.db"
    migrate.upgrade(path, "0007")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO users (username, password_hash, token_version, created_ms, password_changed_ms) "
                     "VALUES ('old', 'scrypt$x', 3, 1, 1)")
    migrate.upgrade(path)
    users = Users(path)
    try:
        first = users.get("old")
        assert first.token_version == 3 and len(first.account_id) == 32
    finally:
        users.close()
    migrate.downgrade(path, "0007")
    assert rows_in(path, "users") == 1 and rows_in(path, "v_users") == 1
    migrate.upgrade(path)
    assert rows_in(path, "v_users") == 1
