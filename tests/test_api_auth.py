"""Attacks on the login and the tokens, over HTTP to `kammthaar serve`: each one is a 401 (or a 429)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from api.auth import ACCESS_COOKIE, REFRESH_COOKIE
from api.users import PAIR_LIMIT, CLIENT_LIMIT, Users
from tests.fixtures_api import SECRET
from tests.support import kammthaar

INSTALLER = {"role": "installer", "sites": None}  # every user is an installer unless made a viewer


@pytest.fixture(scope="module")
def users(edge):
    u = Users(edge.db)
    yield u
    u.close()


ACCOUNTS: dict[str, str] = {}  # user name -> account id, for tokens minted like ours


def new_user(users, password: str = "correct horse battery") -> tuple[str, str]:
    name = f"u-{uuid.uuid4().hex[:10]}"
    ACCOUNTS[name] = users.add(name, password).account_id
    return name, password


def login(client, name: str, password: str):
    return client.post("/login", json_body={"username": name, "password": password})


def assert_401(resp, why: str = "") -> None:
    assert resp.status == 401, (resp.status, resp.body[:300])
    body = resp.json()
    assert set(body) == {"error", "message"} and body["error"] == "unauthorized", body
    assert resp.headers["www-authenticate"].startswith("Bearer")
    if why:
        assert why in body["message"], body


def mint(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims_for(name: str, kind: str = "access", **overrides) -> dict:
    now = int(time.time())
    out = {"iss": "kammthaar", "sub": name, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "type": kind,
           "ver": 0, "aid": ACCOUNTS.get(name, "unknown")}
    out.update(overrides)
    return out


def test_every_protected_path_needs_a_token(local_api):
    c = local_api.client()
    spec = c.get("/openapi.json").json()
    protected = [p for p, ops in spec["paths"].items() if ops.get("get", {}).get("security")]
    assert len(protected) >= 45
    for path in protected:
        assert_401(c.get(path), "access token is needed")
    public = [p for p, ops in spec["paths"].items() if "get" in ops and not ops["get"]["security"]]
    assert set(public) == {"/serveur/status", "/health", "/openapi.json", "/api/swagger-ui", "/check_auth"}
    for path in public:
        assert c.get(path).status == 200, path


def test_a_token_minted_like_ours_works_so_the_attacks_below_fail_for_their_own_reason(local_api, users):
    name, _ = new_user(users)
    assert local_api.client().get("/user", token=mint(claims_for(name))).json() == {"username": name, **INSTALLER}


def test_expired_token_is_401(local_api, users):
    name, _ = new_user(users)
    past = int(time.time()) - 3600
    token = mint(claims_for(name, iat=past, exp=past + 900))
    c = local_api.client()
    assert_401(c.get("/battery/last", token=token), "expired")
    assert c.get("/check_auth", token=token).json() == {"authenticated": False}


def test_forged_signature_and_tampered_payload_are_401(local_api, users):
    name, _ = new_user(users)
    c = local_api.client()
    assert_401(c.get("/battery/last", token=mint(claims_for(name), key="another key " * 4)))
    header, payload, signature = mint(claims_for(name)).split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=").decode()
    assert_401(c.get("/battery/last", token=f"{header}.{forged_payload}.{signature}"))
    assert c.get("/check_auth", token=f"{header}.{forged_payload}.{signature}").json() == {"authenticated": False}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 wants a longer key: refused anyway
def test_alg_none_and_other_algorithms_are_401(local_api, users):
    name, _ = new_user(users)
    c = local_api.client()
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims_for(name)).encode()).rstrip(b"=").decode()
    assert_401(c.get("/battery/last", token=f"{header}.{payload}."))
    assert_401(c.get("/battery/last", token=mint(claims_for(name), algorithm="HS512")))


def test_missing_claims_and_future_iat_are_401(local_api, users):
    name, _ = new_user(users)
    c = local_api.client()
    for claim in ("exp", "iat", "jti", "type", "ver", "aid"):
        claims = claims_for(name)
        del claims[claim]
        assert_401(c.get("/battery/last", token=mint(claims)))
    assert_401(c.get("/battery/last", token=mint(claims_for(name, iat=int(time.time()) + 3600))))
    assert_401(c.get("/battery/last", token=mint(claims_for(name, iss="someone"))))


def test_refresh_token_is_not_an_access_token_and_back(local_api, users):
    name, password = new_user(users)
    c = local_api.client()
    resp = login(c, name, password)
    refresh = resp.cookies()[REFRESH_COOKIE].value
    access = resp.json()["access_token"]
    assert_401(c.get("/battery/last", token=refresh), "not an access token")
    assert_401(c.get("/battery/last", cookies={ACCESS_COOKIE: refresh}), "not an access token")
    assert_401(c.post("/refresh", json_body={"refresh_token": access}), "not a refresh token")
    assert c.get("/battery/last", token=access).status == 200


def test_token_issued_before_a_password_change_is_401(local_api, users, edge):
    name, password = new_user(users)
    c = local_api.client()
    resp = login(c, name, password)
    access, refresh = resp.json()["access_token"], resp.cookies()[REFRESH_COOKIE].value
    assert c.get("/battery/last", token=access).status == 200
    done = kammthaar("user", "passwd", name, env=edge.env(), stdin="a brand new password\n")
    assert done.returncode == 0, done.stderr
    assert_401(c.get("/battery/last", token=access), "password changed")
    assert_401(c.post("/refresh", cookies={REFRESH_COOKIE: refresh}), "password changed")
    assert_401(login(c, name, password))
    assert c.get("/battery/last", token=login(c, name, "a brand new password").json()["access_token"]).status == 200


def test_removed_user_tokens_are_401(local_api, users, edge):
    name, password = new_user(users)
    c = local_api.client()
    access = login(c, name, password).json()["access_token"]
    done = kammthaar("user", "remove", name, env=edge.env())
    assert done.returncode == 0, done.stderr
    assert_401(c.get("/user", token=access), "no longer exists")


def test_logout_clears_the_cookies_and_revokes_the_refresh_token(local_api, users):
    name, password = new_user(users)
    c = local_api.client(keep_cookies=True)
    login(c, name, password)
    refresh = c.cookies[REFRESH_COOKIE]
    # Cookies alone carry the session, as in the browser.
    assert c.get("/user").json() == {"username": name, **INSTALLER}
    renewed = c.post("/refresh")
    assert renewed.status == 200 and renewed.json()["token_type"] == "Bearer"
    assert c.post("/refresh", json_body={"refresh_token": refresh}).status == 200  # the body works too
    out = c.post("/logout")
    assert out.status == 200 and out.json() == {"message": "Logged out"}
    cleared = out.cookies()
    assert set(cleared) == {ACCESS_COOKIE, REFRESH_COOKIE}
    assert all(m.value == "" for m in cleared.values())
    assert c.cookies == {}
    assert_401(c.post("/refresh", json_body={"refresh_token": refresh}), "revoked")
    assert_401(c.post("/refresh", cookies={REFRESH_COOKIE: refresh}), "revoked")


def test_login_sets_httponly_cookies_and_answers_the_contract_shape(local_api, cloud_api, users):
    name, password = new_user(users)
    resp = login(local_api.client(), name, password)
    assert resp.status == 200
    body = resp.json()
    assert list(body) == ["message", "access_token", "token_type", "expires_in"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    cookies = resp.cookies()
    for name_ in (ACCESS_COOKIE, REFRESH_COOKIE):
        assert cookies[name_]["httponly"] and cookies[name_]["samesite"] == "Lax" and cookies[name_]["path"] == "/"
    assert not cookies[ACCESS_COOKIE]["secure"]  # that server says cookie_secure = false
    assert resp.headers["cache-control"] == "no-store"
    # The default, cookie_secure = true (the cloud server keeps it): Secure cookies.
    secure = cloud_api.client().post("/authentification/login",
                                     json_body={"username": "alice", "password": "alice-password-1"})
    assert secure.status == 200 and secure.cookies()[ACCESS_COOKIE]["secure"]


def test_login_with_only_one_of_user_or_password_right_is_401(local_api, users):
    name, password = new_user(users)
    other, _ = new_user(users, "another password")
    c = local_api.client()
    wrong_password = login(c, name, "not the password")
    wrong_user = login(c, f"{name}-nobody", password)
    both_wrong = login(c, f"{name}-nobody", "not the password")
    other_users_password = login(c, other, password)
    for resp in (wrong_password, wrong_user, both_wrong, other_users_password):
        assert_401(resp, "wrong user name or password")
    # The same answer whichever was wrong: nothing tells which users exist.
    assert wrong_password.body == wrong_user.body == both_wrong.body
    assert login(c, name, password).status == 200
    assert c.post("/authentification/login", json_body={"username": name, "password": password}).status == 200


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"username": "x"}', b'{"username": 1, "password": "x"}',
                                  b""])
def test_login_with_a_bad_body_is_400(local_api, body):
    resp = local_api.client().post("/login", body=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400 and resp.json()["error"] == "bad_request", resp.body


def test_brute_force_is_429_with_retry_after_for_that_user_and_client(local_api, users):
    name, password = new_user(users)
    c = local_api.client()
    for _ in range(PAIR_LIMIT):
        assert_401(login(c, name, "guess"))
    for attempt in ("guess", password):  # blocked: even the right password is not tried
        resp = login(c, name, attempt)
        assert resp.status == 429 and resp.json()["error"] == "throttled"
        assert 0 < int(resp.headers["retry-after"]) <= 15 * 60
    # Another client (another loopback address) may still log in as that user, and this client as another.
    assert login(local_api.client(source_address="127.0.0.2"), name, password).status == 200
    other, other_password = new_user(users)
    assert login(c, other, other_password).status == 200


def test_password_spraying_from_one_client_is_429(local_api, users):
    name, password = new_user(users)
    sprayer = local_api.client(source_address="127.0.0.3")
    for n in range(CLIENT_LIMIT):
        assert_401(login(sprayer, f"nobody-{n}-{uuid.uuid4().hex[:6]}", "guess"))
    resp = login(sprayer, name, password)
    assert resp.status == 429 and int(resp.headers["retry-after"]) > 0
    assert login(local_api.client(), name, password).status == 200


def test_malformed_authorization_header_is_401(local_api):
    c = local_api.client()
    for header in ("Basic YWxpY2U6cHc=", "Bearer", "Bearer not.a.token", "Token abc"):
        assert_401(c.get("/battery/last", headers={"Authorization": header}))
