"""Login tokens (PyJWT, HS256 pinned) and the middleware that checks them.

Two token types, told apart by the `type` claim and never accepted for each
other: short-lived access tokens (every data path) and refresh tokens
(`/refresh` only). Every token carries `iss`, `sub` (the user), `iat`, `exp`,
a random `jti`, `ver`, the user's token version (a password change
increments it, so every token issued before is refused from then on) and
`aid`, the account's random id (a user removed and added again is another
account: the first one's tokens never come back). A token whose `exp - iat`
is longer than the configured lifetime of its type is refused, whoever
signed it. Logout records the refresh token's `jti` as revoked until it
would have expired.

Tokens come from `Authorization: Bearer <token>` or, for the browser
dashboard, from the httpOnly cookies `access_token_cookie` and
`refresh_token_cookie`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import falcon
import jwt

from edge_store.store import now_ms

from .errors import Forbidden, Unauthorized
from .machine_tokens import SCOPES, MachineTokens, is_machine_token
from .users import Users

ALGORITHM = "HS256"
ISSUER = "kammthaar"
ACCESS, REFRESH = "access", "refresh"
ACCESS_COOKIE, REFRESH_COOKIE = "access_token_cookie", "refresh_token_cookie"
REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp", "jti", "type", "ver", "aid"]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def generate_secret() -> str:
    """A strong signing secret (256 random bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Issued:
    token: str
    claims: dict


class Tokens:
    """Issues and checks the two token types with one secret."""

    def __init__(self, secret: str, *, access_ttl_s: int, refresh_ttl_s: int, users: Users,
                 clock_s: Callable[[], float] | None = None):
        self._secret = secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.users = users
        self._clock_s = clock_s or (lambda: now_ms() / 1000)

    def issue(self, username: str, token_version: int, account_id: str, kind: str) -> Issued:
        now = int(self._clock_s())
        claims = {"iss": ISSUER, "sub": username, "iat": now, "exp": now + self._ttl_s(kind),
                  "jti": uuid.uuid4().hex, "type": kind, "ver": token_version, "aid": account_id}
        return Issued(jwt.encode(claims, self._secret, algorithm=ALGORITHM), claims)

    def _ttl_s(self, kind: str) -> int:
        return self.access_ttl_s if kind == ACCESS else self.refresh_ttl_s

    def check(self, token: str, kind: str) -> dict:
        """The claims of a valid token of `kind`; raises Unauthorized saying what is wrong."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": REQUIRED_CLAIMS, "verify_signature": True,
                                         "verify_exp": True, "verify_iat": True, "verify_iss": True})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        if claims.get("type") != kind:
            raise Unauthorized(f"a {claims.get('type')} token is not an {kind} token"
                               if kind == ACCESS else f"a {claims.get('type')} token is not a {kind} token")
        if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("ver"), int) \
                or not isinstance(claims.get("aid"), str):
            raise Unauthorized("the token is not valid: malformed jti, ver or aid")
        if claims["exp"] - claims["iat"] > self._ttl_s(kind):
            raise Unauthorized(f"the token is not valid: it lives longer than {self._ttl_s(kind)} s")
        identity = self.users.identity(str(claims["sub"]))
        if identity is None:
            raise Unauthorized("the token's user no longer exists")
        version, account_id = identity
        if claims["aid"] != account_id:
            raise Unauthorized("the token's user no longer exists (the name was given to a new account)")
        if claims["ver"] != version:
            raise Unauthorized("the token was issued before the password changed: log in again")
        if kind == REFRESH and self.users.is_revoked(claims["jti"]):
            raise Unauthorized("the refresh token was revoked (logout): log in again")
        return claims


def bearer(req: falcon.Request) -> str | None:
    """The token of an `Authorization: Bearer` header; Unauthorized when the header is something else."""
    header = req.get_header("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be `Bearer <access token>`")
    return token.strip()


def cookie(req: falcon.Request, name: str) -> str | None:
    values = req.get_cookie_values(name)
    return values[0] if values else None


def access_token(req: falcon.Request) -> str | None:
    """The access token of a request: the Bearer header first, else the cookie."""
    return bearer(req) or cookie(req, ACCESS_COOKIE)


class AuthMiddleware:
    """Every resource needs a valid access token unless it says `auth_required = False`; a machine token
    (api/machine_tokens.py) opens only the resources whose `scopes` name its scope, others answer 403."""

    def __init__(self, tokens: Tokens, machine_tokens: MachineTokens):
        self.tokens = tokens
        self.machine_tokens = machine_tokens

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or req.method == "OPTIONS" or not getattr(resource, "auth_required", True):
            return
        try:
            self._check(req, resource)
        except Unauthorized as exc:
            # A web page (the fleet's) shows a browser how to log in instead of a JSON error.
            page = getattr(resource, "login_page", None)
            if page is None or req.client_prefers((falcon.MEDIA_JSON, falcon.MEDIA_HTML)) != falcon.MEDIA_HTML:
                raise
            page(req, resp, str(exc))
            resp.complete = True

    def _check(self, req: falcon.Request, resource) -> None:
        token = access_token(req)
        if token is None:
            raise Unauthorized("a valid access token is needed: `Authorization: Bearer <token>` "
                               "or the access_token_cookie cookie (POST /login)")
        if is_machine_token(token):
            grant = self.machine_tokens.check(token)
            if grant.scope not in getattr(resource, "scopes", ()):
                raise Forbidden(f"the {grant.scope} token {grant.name!r} opens {SCOPES[grant.scope]} only, "
                                f"not {req.path}: log in as a user for the data")
            req.context.machine = grant.name
            req.context.user = None
            return
        req.context.claims = self.tokens.check(token, ACCESS)
        req.context.user = req.context.claims["sub"]


def identify(api, req: falcon.Request) -> None:
    """On a path that needs no token: the user of a valid access token, if the request carries one
    (`req.context.user`, else None)."""
    req.context.user = None
    try:
        token = access_token(req)
        if token is not None and not is_machine_token(token):
            req.context.user = api.tokens.check(token, ACCESS)["sub"]
    except Unauthorized:
        pass


class Cookies:
    """The two token cookies, httpOnly, with the configured Secure and SameSite."""

    def __init__(self, *, secure: bool, samesite: str, access_ttl_s: int, refresh_ttl_s: int):
        self.secure = secure
        self.samesite = samesite.capitalize()  # LAX -> Lax
        self.ttl = {ACCESS_COOKIE: access_ttl_s, REFRESH_COOKIE: refresh_ttl_s}

    def set(self, resp: falcon.Response, name: str, token: str) -> None:
        resp.set_cookie(name, token, max_age=self.ttl[name], path="/", secure=self.secure, http_only=True,
                        same_site=self.samesite)

    def clear(self, resp: falcon.Response) -> None:
        """Both cookies emptied and expired (Max-Age=0 and a date in 1970: every browser drops them)."""
        for name in (ACCESS_COOKIE, REFRESH_COOKIE):
            resp.set_cookie(name, "", max_age=0, expires=EPOCH, path="/", secure=self.secure, http_only=True,
                            same_site=self.samesite)
