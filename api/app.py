"""The Falcon app factory: `create_app(settings, sources, users)`.

Everything the app needs arrives as arguments: plain settings (built once
from the config at the entry point: `Settings.from_config`), the ordered data
sources (api/sources.py) and the users (api/users.py). Resources are plain
classes with `on_get`/`on_post`; auth is middleware; errors are mapped in one
place (api/errors.py). Before any resource: bodies are bounded (api/bodies.py)
and a state-changing request from a browser page must come from an allowed
origin (api/clients.py). Every answer says `X-Content-Type-Options: nosniff`,
every authenticated one `Cache-Control: no-store`. The route table (one module per family in
api/resources/) also builds /openapi.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import falcon

from edge_store.store import now_ms

from . import bodies, errors
from .access import Access
from .auth import ACCESS_COOKIE, REFRESH_COOKIE, AuthMiddleware, Cookies, Tokens
from .clients import Clients, OriginCheck
from .machine import Machine
from .machine_tokens import MachineTokens
from .metrics import Metrics, MetricsMiddleware
from .openapi import document
from .resources import (alerts, battery, breadcrumb, charging, controller, devices, discharging, docs, health, host,
                        load, login, sites, solar, statistics)
from .resources.base import SOURCE_HEADER, stale
from .sources import Sources
from .users import Users

FAMILIES = (battery, solar, load, controller, charging, discharging, statistics, breadcrumb, host, devices, login,
            health, alerts, docs, sites)


@dataclass(frozen=True)
class DeviceInfo:
    """A device as the API describes it (GET /devices) and judges its freshness: configured here, or another
    site's as InfluxDB knows it (unit and port None: not known in the cloud)."""

    name: str
    model: str
    unit: int | None
    port: str | None
    interval_s: float
    slow_interval_s: float


@dataclass(frozen=True)
class Settings:
    """What the API needs from the configuration, as plain values."""

    site: str
    device: str  # the default device: data paths answer for it without ?device=
    timezone: str
    interval_s: float
    slow_interval_s: float
    jwt_secret: str
    access_ttl_s: int = 900
    refresh_ttl_s: int = 604800
    cookie_secure: bool = True
    cookie_samesite: str = "LAX"
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    store_path: str | None = None  # the machine /serveur/infos describes is this one when set
    metrics_dir: str | None = None
    stale_after_s: float = 900.0  # /sites, /fleet: a site older than this is stale
    commit_window_s: float = 0.0  # [store]: the collector commits a sample at most this long after reading it
    devices: tuple[DeviceInfo, ...] = ()  # empty: the one EPEVER `device`

    def __post_init__(self):
        if not self.devices:
            object.__setattr__(self, "devices", (DeviceInfo(self.device, "epever-tracer", 1, "", self.interval_s,
                                                            self.slow_interval_s),))

    def device_info(self, name: str) -> DeviceInfo | None:
        return next((d for d in self.devices if d.name == name), None)

    @classmethod
    def from_config(cls, cfg, *, metrics_dir: str | None = None) -> "Settings":
        a = cfg.api
        return cls(
            site=cfg.site.id, device=cfg.default_device, timezone=cfg.site.timezone,
            interval_s=cfg.modbus.interval_s, slow_interval_s=cfg.modbus.slow_interval_s,
            commit_window_s=cfg.store.commit_window_s,
            jwt_secret=a.jwt_secret, access_ttl_s=a.access_ttl_s, refresh_ttl_s=a.refresh_ttl_s,
            cookie_secure=a.cookie_secure, cookie_samesite=a.cookie_samesite,
            cors_origins=a.cors_origins, trusted_proxies=a.trusted_proxies,
            store_path=cfg.store.path if "local" in a.sources else None,
            metrics_dir=metrics_dir, stale_after_s=a.stale_after_s,
            devices=tuple(DeviceInfo(d.name, d.model, d.unit, str(d.port), d.interval_s, d.slow_interval_s)
                          for d in cfg.devices),
        )


class Api:
    """What the resources share: settings, sources, users, who sees which site, tokens (users' and
    machines'), cookies, metrics, the clock."""

    def __init__(self, settings: Settings, sources: Sources, users: Users, clock_ms: Callable[[], int]):
        self.settings = settings
        self.sources = sources
        self.users = users
        self.clock_ms = clock_ms
        self.tokens = Tokens(settings.jwt_secret, access_ttl_s=settings.access_ttl_s,
                             refresh_ttl_s=settings.refresh_ttl_s, users=users, clock_s=lambda: clock_ms() / 1000)
        self.machine_tokens = MachineTokens(users.engine, clock_ms=clock_ms)
        self.access = Access(users.engine)
        self.cookies = Cookies(secure=settings.cookie_secure, samesite=settings.cookie_samesite,
                               access_ttl_s=settings.access_ttl_s, refresh_ttl_s=settings.refresh_ttl_s)
        self.machine = Machine(settings.store_path) if settings.store_path else None
        self.metrics = Metrics(settings.metrics_dir)
        self.clients = Clients(settings.trusted_proxies)
        self.openapi: dict = {}

    def remote_devices(self, site: str) -> tuple | None:
        """Another site's devices as InfluxDB knows them (api/remote_devices.py), through the cloud source
        (503 when it cannot answer); None for this server's own site, or without a cloud source."""
        cloud = self.sources.cloud
        if site == self.settings.site or cloud is None:
            return None
        devices, _ = self.sources.answer(site, lambda s: s.remote_devices(site) if s is cloud else None,
                                         what="device")
        return devices

    def devices_of(self, site: str) -> tuple[DeviceInfo, ...]:
        """The devices of `site`: this server's `[[devices]]` for its own site (and without a cloud source);
        another site's from InfluxDB (their poll intervals taken as ours), none when it knows none yet."""
        remote = self.remote_devices(site)
        if remote is None:
            return self.settings.devices
        s = self.settings
        return tuple(DeviceInfo(d.name, d.model, None, None, s.interval_s, s.slow_interval_s) for d in remote)

    def require_fresh(self, ts_ms: int, group: str, device: DeviceInfo) -> None:
        """Raise the 503 of `realtime` when the newest row of `group` is older than two of the device's poll
        intervals (plus the commit window)."""
        error = stale(ts_ms, self.clock_ms(), group, device.interval_s, device.slow_interval_s,
                      self.settings.commit_window_s)
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


class _SecurityHeaders:
    """nosniff on every answer; no-store on every answer to a request that carried credentials or needed
    them (a shared cache or the browser's history must not keep it)."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        credentials = req.get_header("Authorization") is not None or any(
            req.get_cookie_values(name) for name in (ACCESS_COOKIE, REFRESH_COOKIE))
        if credentials or (resource is not None and getattr(resource, "auth_required", True)):
            resp.set_header("Cache-Control", "no-store")


def create_app(settings: Settings, sources: Sources, users: Users, *,
               clock_ms: Callable[[], int] = now_ms) -> falcon.App:
    """The WSGI app serving every path of the contract."""
    api = Api(settings, sources, users, clock_ms)
    middleware: list = [MetricsMiddleware(api.metrics), _SecurityHeaders(), bodies.BodyLimit()]
    if settings.cors_origins:
        middleware.append(falcon.CORSMiddleware(allow_origins=list(settings.cors_origins),
                                                allow_credentials=list(settings.cors_origins),
                                                expose_headers=[SOURCE_HEADER, "Retry-After"]))
    middleware += [_Preflight(bool(settings.cors_origins)), OriginCheck(api.clients, settings.cors_origins),
                   AuthMiddleware(api.tokens, api.machine_tokens)]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    bodies.install(app)
    routes = [route for family in FAMILIES for route in family.routes(api)]
    for route in routes:
        app.add_route(route.path, route.resource)
    api.metrics.routes = frozenset(route.path for route in routes)
    api.openapi = document(routes, site=settings.site)
    return app
