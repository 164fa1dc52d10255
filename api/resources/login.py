"""Logging in and out: /login (and /authentification/login), /refresh, /logout, /check_auth, /user."""

from __future__ import annotations

import falcon

from ..auth import ACCESS, ACCESS_COOKIE, REFRESH, REFRESH_COOKIE, cookie, identify
from ..errors import BadRequest, Unauthorized
from ..families import STRING, obj
from .base import Route

MAX_USERNAME = 128
MAX_PASSWORD = 1024


def _body(req: falcon.Request, *, required: bool) -> dict:
    """The JSON object of the request body ({} when optional and absent)."""
    if not required and not req.content_length:
        return {}
    media = req.get_media(default_when_empty=None)
    if media is None:
        if required:
            raise BadRequest("the body must be a JSON object")
        return {}
    if not isinstance(media, dict):
        raise BadRequest("the body must be a JSON object")
    return media


def _token_answer(api, resp: falcon.Response, message: str, access: str) -> None:
    resp.media = {"message": message, "access_token": access, "token_type": "Bearer",
                  "expires_in": api.settings.access_ttl_s}
    resp.set_header("Cache-Control", "no-store")


class LoginResource:
    """Both the user name and the password must be right; failures are throttled per user and client."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req, required=True)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise BadRequest("the body must be {\"username\": string, \"password\": string}")
        if not 0 < len(username) <= MAX_USERNAME or len(password) > MAX_PASSWORD:
            raise BadRequest(f"username: 1 to {MAX_USERNAME} characters; password: at most {MAX_PASSWORD}")
        user = self.api.users.authenticate(username, password, self.api.clients.address(req))
        if user is None:
            raise Unauthorized("wrong user name or password")
        access = self.api.tokens.issue(user.username, user.token_version, user.account_id, ACCESS)
        refresh = self.api.tokens.issue(user.username, user.token_version, user.account_id, REFRESH)
        self.api.cookies.set(resp, ACCESS_COOKIE, access.token)
        self.api.cookies.set(resp, REFRESH_COOKIE, refresh.token)
        _token_answer(self.api, resp, "Login successful", access.token)


def _refresh_token(req: falcon.Request) -> str | None:
    body = _body(req, required=False)
    token = body.get("refresh_token")
    if token is not None and not isinstance(token, str):
        raise BadRequest("refresh_token must be a string")
    return token or cookie(req, REFRESH_COOKIE)


class RefreshResource:
    """A new access token for a valid refresh token (cookie or body)."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = _refresh_token(req)
        if not token:
            raise Unauthorized("a refresh token is needed: the refresh_token_cookie cookie or {\"refresh_token\"}")
        claims = self.api.tokens.check(token, REFRESH)
        access = self.api.tokens.issue(claims["sub"], claims["ver"], claims["aid"], ACCESS)
        self.api.cookies.set(resp, ACCESS_COOKIE, access.token)
        _token_answer(self.api, resp, "Token refreshed", access.token)


class LogoutResource:
    """Clears both cookies; the refresh token presented (cookie or body) is revoked."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = _refresh_token(req)
        if token:
            try:
                claims = self.api.tokens.check(token, REFRESH)
            except Unauthorized:
                claims = None  # expired, revoked or forged already: nothing to revoke
            if claims is not None:
                self.api.users.revoke(claims["jti"], claims["sub"], int(claims["exp"]) * 1000)
        self.api.cookies.clear(resp)
        resp.media = {"message": "Logged out"}
        resp.set_header("Cache-Control", "no-store")


def _grant(api, username: str) -> dict:
    """The user's role and sites (api/access.py); a user removed meanwhile sees nothing."""
    grant = api.access.grant_of(username)
    return grant.answer() if grant is not None else {"role": "viewer", "sites": []}


class CheckAuthResource:
    """Whether the request carries a valid access token (an expired or forged one is false); when it does,
    the user's role and sites (`sites` null for an installer: every site)."""

    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identify(self.api, req)
        user = req.context.user
        resp.media = {"authenticated": user is not None}
        if user is not None:
            resp.media.update(_grant(self.api, user))
        resp.set_header("Cache-Control", "no-store")


class UserResource:
    """Who is logged in: the user name, the role and the sites they see (`sites` null for an installer)."""

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"username": req.context.user, **_grant(self.api, req.context.user)}


TOKEN_SCHEMA = obj({"message": STRING, "access_token": STRING, "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer", "description": "seconds"}})
LOGIN_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["username", "password"],
    "properties": {"username": {"type": "string", "minLength": 1, "maxLength": MAX_USERNAME},
                   "password": {"type": "string", "maxLength": MAX_PASSWORD}}}}}}
REFRESH_BODY = {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"refresh_token": {"type": "string"}}}}}}
GRANT = {"role": {"type": "string", "enum": ["installer", "viewer"]},
         "sites": {"type": "array", "items": STRING, "nullable": True,
                   "description": "the sites a viewer sees; null for an installer (every site)"}}
COOKIES = ("Sets the httpOnly cookies access_token_cookie and refresh_token_cookie.")


def routes(api) -> list:
    login = LoginResource(api)
    return [
        Route("/login", login, "Log in", TOKEN_SCHEMA, tag="auth", method="post", auth=False,
              errors=(400, 401, 403, 413, 415, 429), request_body=LOGIN_BODY, source_header=False,
              description=f"{LoginResource.__doc__} {COOKIES}"),
        Route("/authentification/login", login, "Log in (path of older edge clients)", TOKEN_SCHEMA, tag="auth",
              method="post", auth=False, errors=(400, 401, 403, 413, 415, 429), request_body=LOGIN_BODY,
              source_header=False,
              description=f"Same as /login. {COOKIES}"),
        Route("/refresh", RefreshResource(api), "New access token", TOKEN_SCHEMA, tag="auth", method="post",
              auth=False, errors=(400, 401, 403, 413, 415), request_body=REFRESH_BODY, source_header=False,
              description=RefreshResource.__doc__),
        Route("/logout", LogoutResource(api), "Log out", obj({"message": STRING}), tag="auth", method="post",
              auth=False, errors=(400, 403, 413, 415), request_body=REFRESH_BODY, source_header=False,
              description=LogoutResource.__doc__),
        Route("/check_auth", CheckAuthResource(api), "Is the token valid",
              {**obj({"authenticated": {"type": "boolean"}, **GRANT}), "required": ["authenticated"]},
              tag="auth", auth=False, source_header=False, description=CheckAuthResource.__doc__),
        Route("/user", UserResource(api), "Who is logged in", obj({"username": STRING, **GRANT}),
              tag="auth", source_header=False, description=UserResource.__doc__),
    ]
