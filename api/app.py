"""The Falcon app factory: `create_app(settings, sources, users)`.

Everything the app needs arrives as arguments: plain settings (built once
from the config at the entry point: `Settings.from_config`), the ordered data
sources (api/sources.py) and the users (api/users.py). Resources are plain
classes with `on_get`/`on_post`; auth is middleware; errors are mapped in one
place (api/errors.py). The route table (one module per family in
api/resources/) also builds /openapi.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import falcon

from edge_store.store import now_ms

from . import errors
from .auth import AuthMiddleware, Cookies, Tokens
from .machine import Machine
from .machine_tokens import MachineTokens
from .metrics import Metrics, MetricsMiddleware
from .openapi import document
from .resources import (alerts, battery, breadcrumb, charging, controller, discharging, docs, health, host, load, login,
                        solar, statistics)
from .resources.base import SOURCE_HEADER, stale
from .sources import Sources
from .users import Users

FAMILIES = (battery, solar, load, controller, charging, discharging, statistics, breadcrumb, host, login, health,
            alerts, docs)


@dataclass(frozen=True)
class Settings:
    """What the API needs from the configuration, as plain values."""

    site: str
    device: str
    timezone: str
    interval_s: float
    slow_interval_s: float
    jwt_secret: str
    access_ttl_s: int = 900
    refresh_ttl_s: int = 604800
    cookie_secure: bool = True
    cookie_samesite: str = "LAX"
    cors_origins: tuple[str, ...] = ()
    store_path: str | None = None  # the machine /serveur/infos describes is this one when set
    metrics_dir: str | None = None

    @classmethod
    def from_config(cls, cfg, *, metrics_dir: str | None = None) -> "Settings":
        a = cfg.api
        return cls(
            site=cfg.site.id, device=cfg.modbus.device, timezone=cfg.site.timezone,
            interval_s=cfg.modbus.interval_s, slow_interval_s=cfg.modbus.slow_interval_s,
            jwt_secret=a.jwt_secret, access_ttl_s=a.access_ttl_s, refresh_ttl_s=a.refresh_ttl_s,
            cookie_secure=a.cookie_secure, cookie_samesite=a.cookie_samesite,
            cors_origins=a.cors_origins, store_path=cfg.store.path if "local" in a.sources else None,
            metrics_dir=metrics_dir,
        )


class Api:
    """What the resources share: settings, sources, users, tokens (users' and machines'), cookies, metrics,
    the clock."""

    def __init__(self, settings: Settings, sources: Sources, users: Users, clock_ms: Callable[[], int]):
        self.settings = settings
        self.sources = sources
        self.users = users
        self.clock_ms = clock_ms
        self.tokens = Tokens(settings.jwt_secret, access_ttl_s=settings.access_ttl_s,
                             refresh_ttl_s=settings.refresh_ttl_s, users=users, clock_s=lambda: clock_ms() / 1000)
        self.machine_tokens = MachineTokens(users.engine, clock_ms=clock_ms)
        self.cookies = Cookies(secure=settings.cookie_secure, samesite=settings.cookie_samesite,
                               access_ttl_s=settings.access_ttl_s, refresh_ttl_s=settings.refresh_ttl_s)
        self.machine = Machine(settings.store_path) if settings.store_path else None
        self.metrics = Metrics(settings.metrics_dir)
        self.openapi: dict = {}

    def require_fresh(self, ts_ms: int, group: str) -> None:
        """Raise the 503 of `realtime` when the newest row of `group` is older than two poll intervals."""
        error = stale(ts_ms, self.clock_ms(), group, self.settings.interval_s, self.settings.slow_interval_s)
        if error is not None:
            raise error


class _Preflight:
    """CORS preflights and other OPTIONS requests answer 204 (no body, by definition); Vary: Origin."""

    def __init__(self, cors: bool):
        self.cors = cors

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        if req.method == "OPTIONS" and req_succeeded and resp.status_code == 200:
            resp.status = falcon.HTTP_204
        if self.cors:
            resp.append_header("Vary", "Origin")


def create_app(settings: Settings, sources: Sources, users: Users, *,
               clock_ms: Callable[[], int] = now_ms) -> falcon.App:
    """The WSGI app serving every path of the contract."""
    api = Api(settings, sources, users, clock_ms)
    middleware: list = [MetricsMiddleware(api.metrics)]
    if settings.cors_origins:
        middleware.append(falcon.CORSMiddleware(allow_origins=list(settings.cors_origins),
                                                allow_credentials=list(settings.cors_origins),
                                                expose_headers=[SOURCE_HEADER, "Retry-After"]))
    middleware += [_Preflight(bool(settings.cors_origins)), AuthMiddleware(api.tokens, api.machine_tokens)]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    routes = [route for family in FAMILIES for route in family.routes(api)]
    for route in routes:
        app.add_route(route.path, route.resource)
    api.openapi = document(routes, site=settings.site)
    return app
