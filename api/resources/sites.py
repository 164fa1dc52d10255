"""The installer's fleet: /sites and /sites/{site} (JSON), /fleet and /fleet/{site} (HTML pages).

Every path lists only the sites the user may see (api/access.py); a site they
may not see is the 404 of a site that does not exist. The figures come from
InfluxDB (api/fleet.py), so these paths need the cloud source. The pages are
rendered on the server from our own Jinja2 templates (api/templates/): no
script, no CDN, readable on a phone, refreshing themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape

from replicator.influxql import QueryError

from ..access import INSTALLER, not_served, site_for
from ..errors import BadRequest, Unavailable
from ..families import STRING, iso
from ..fleet import Beyond, Scope, fleet, matching, site_health
from .base import MAX_SITE_CHARS, SITE_PATTERN, Route, check_site

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
REFRESH_S = 60  # the pages reload themselves this often
DEFAULT_DAYS, MAX_DAYS = 7, 90
MAX_Q_CHARS = 128
# The pages run no script and load nothing: a page from another origin may not frame them (clickjacking
# a logged-in browser), and an injected tag could fetch nothing.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


def _page(resp: falcon.Response, html: str) -> None:
    resp.content_type = falcon.MEDIA_HTML
    resp.set_header("Content-Security-Policy", PAGE_POLICY)
    resp.set_header("X-Frame-Options", "DENY")
    resp.text = html


def _days(req: falcon.Request) -> int:
    text = req.get_param("days")
    if text is None:
        return DEFAULT_DAYS
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise BadRequest(f"days must be a whole number from 1 to {MAX_DAYS}, not {text[:40]!r}")
    return int(text)


def _q(req: falcon.Request) -> str | None:
    q = req.get_param("q")
    if q is not None and len(q) > MAX_Q_CHARS:
        raise BadRequest(f"q must be at most {MAX_Q_CHARS} characters")
    return q


class Fleet:
    """What the four paths share: the user's scope, the cloud's reader, errors as 503."""

    def __init__(self, api, beyond: Beyond):
        self.api = api
        self.beyond = beyond  # the sites not seen within the window, shared by the four paths

    def scope(self, req: falcon.Request) -> Scope:
        grant = self.api.access.grant_of(req.context.user) if req.context.user else None
        if grant is None:
            return Scope(())
        return Scope(None if grant.role == INSTALLER else grant.sites)

    def _ask(self, fn: Callable):
        cloud = self.api.sources.cloud
        if cloud is None:
            raise Unavailable("the fleet is read from InfluxDB: this server has no cloud source "
                              "([api] sources and [cloud] url)", retry_after_s=3600)
        try:
            return fn(cloud.reader())
        except QueryError as exc:
            cloud.failed(exc)
            raise Unavailable(f"the cloud cannot answer right now ({exc})") from exc

    def sites(self, req: falcon.Request) -> list[dict]:
        scope = self.scope(req)
        if scope.sites == ():
            return []
        q = _q(req)  # a bad one is refused before the fleet is read
        rows = self._ask(lambda reader: fleet(reader, scope, now_ms=self.api.clock_ms(),
                                              stale_after_s=self.api.settings.stale_after_s, beyond=self.beyond))
        return matching(rows, q)

    def site(self, req: falcon.Request, site: str) -> dict:
        """One site's row and health; 404 when the user may not see it or no point carries its name."""
        site = site_for(self.api, req, check_site(site))
        now, days = self.api.clock_ms(), _days(req)

        def both(reader):
            rows = fleet(reader, Scope((site,)), now_ms=now, stale_after_s=self.api.settings.stale_after_s,
                         beyond=self.beyond)
            if not rows or not rows[0]["known"]:
                raise not_served(site)
            return {"summary": rows[0], **site_health(reader, site, now_ms=now, days=days)}

        return self._ask(both)


class SitesResource(Fleet):
    """Every site the user may see, in triage order: active critical alerts first, then stale sites (the
    longest unseen last), then the rest; `q` keeps the names containing it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.sites(req)
        resp.media = {"time": iso(self.api.clock_ms()), "count": len(rows), "sites": rows}


class SiteResource(Fleet):
    """One site's health over the last `days` (default 7): its heartbeat per hour, its devices, its alerts."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, site: str) -> None:
        resp.media = self.site(req, site)


class Page(Fleet):
    """What the two web pages share: without a valid token, a browser gets a 401 page saying how to log in
    (api/auth.py calls `login_page`); other clients the JSON 401."""

    def login_page(self, req: falcon.Request, resp: falcon.Response, message: str) -> None:
        resp.status = falcon.HTTP_401
        resp.content_type = falcon.MEDIA_HTML
        resp.text = TEMPLATES.get_template("login_needed.html").render(path=req.relative_uri, message=message)


class FleetPage(Page):
    """The fleet as a web page: a row per site, each linking to its health."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.sites(req)
        _page(resp, TEMPLATES.get_template("fleet.html").render(
            sites=rows, user=req.context.user, now=iso(self.api.clock_ms()), refresh_s=REFRESH_S, q=_q(req) or ""))


class FleetSitePage(Page):
    """One site's health as a web page."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, site: str) -> None:
        body = self.site(req, site)
        _page(resp, TEMPLATES.get_template("fleet_site.html").render(
            **body, user=req.context.user, now=iso(self.api.clock_ms()), refresh_s=REFRESH_S))


NUMBER = {"type": "number", "nullable": True}
INTEGER = {"type": "integer", "nullable": True}
WHEN = {"type": "string", "format": "date-time", "nullable": True}
SITE_ROW = {
    "type": "object", "required": ["site", "known", "last_seen", "age_s", "stale", "devices", "heartbeat", "alerts",
                                   "health"],
    "properties": {
        "site": STRING, "known": {"type": "boolean", "description": "some point carries this site's tag"},
        "last_seen": {**WHEN, "description": "the newest point of the site (data or heartbeat)"},
        "age_s": NUMBER, "stale": {"type": "boolean"},
        "devices": {"type": "array", "items": {"type": "object", "properties": {
            "device": STRING, "last_sample": WHEN, "fresh": {"type": "boolean", "nullable": True},
            "errors": INTEGER}}},
        "heartbeat": {"type": "object", "nullable": True,
                      "description": "the newest edge_health point of the site (issue 14's fields)"},
        "alerts": {"type": "object", "required": ["active", "critical", "firing"],
                   "properties": {"active": {"type": "integer"}, "critical": {"type": "integer"},
                                  "firing": {"type": "array", "items": {"type": "object"}}}},
        "health": {"type": "string", "description": "the path of the site's health"},
    },
}
SITES_SCHEMA = {"type": "object", "required": ["time", "count", "sites"],
                "properties": {"time": {"type": "string", "format": "date-time"}, "count": {"type": "integer"},
                               "sites": {"type": "array", "items": SITE_ROW}}}
SITE_SCHEMA = {"type": "object", "required": ["summary", "site", "days", "bucket", "heartbeat", "devices",
                                              "alert_events"],
               "properties": {"summary": SITE_ROW, "site": STRING, "days": {"type": "integer"}, "bucket": STRING,
                              "heartbeat": {"type": "array", "items": {"type": "object"}},
                              "devices": {"type": "array", "items": {"type": "object"}},
                              "alert_events": {"type": "array", "items": {"type": "object"}}}}
Q_PARAM = {"name": "q", "in": "query", "required": False, "description": "keep the sites whose name contains this",
           "schema": {"type": "string", "maxLength": MAX_Q_CHARS}}
DAYS_PARAM = {"name": "days", "in": "query", "required": False, "description": f"1 to {MAX_DAYS} (default 7)",
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}}
SITE_PATH = {"name": "site", "in": "path", "required": True, "description": "the site (its `site` tag)",
             "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SITE_CHARS, "pattern": SITE_PATTERN}}
HTML = {"text/html": {"schema": {"type": "string"}}}


def routes(api) -> list:
    beyond = Beyond()
    return [
        Route("/sites", SitesResource(api, beyond), "The sites the user may see, in triage order", SITES_SCHEMA,
              tag="fleet", params=(Q_PARAM,), errors=(400, 503), source_header=False,
              description=SitesResource.__doc__),
        Route("/sites/{site}", SiteResource(api, beyond), "One site's health", SITE_SCHEMA, tag="fleet",
              params=(SITE_PATH, DAYS_PARAM), errors=(400, 404, 503), source_header=False,
              description=SiteResource.__doc__),
        Route("/fleet", FleetPage(api, beyond), "The fleet page (HTML)", tag="fleet", params=(Q_PARAM,),
              errors=(400, 503), content=HTML, source_header=False, description=FleetPage.__doc__),
        Route("/fleet/{site}", FleetSitePage(api, beyond), "One site's health page (HTML)", tag="fleet",
              params=(SITE_PATH, DAYS_PARAM), errors=(400, 404, 503), content=HTML, source_header=False,
              description=FleetSitePage.__doc__),
    ]
