"""What every data resource shares: the request's site, realtime/last objects, 24 h series, routes.

A module per family (battery.py, solar.py, ...) declares its `Family` and its
`routes(api)`: each `Route` is a path, the resource answering it and what
/openapi.json says about it, so the description cannot drift from the paths.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import falcon

from edge_store.registers import LIVE
from edge_store.devices import fresh_within_s
from ..access import MAX_SITE_CHARS, site_for
from ..errors import BadRequest, NotFound, Unavailable
from ..families import Family, Metric, Snapshot, iso, r2

if TYPE_CHECKING:  # api.app builds the routes from here
    from ..app import DeviceInfo

SOURCE_HEADER = "X-Data-Source"
DAY_MS = 86_400_000
EVERY_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}
DEFAULT_EVERY = "5m"


@dataclass(frozen=True)
class Route:
    """One path: the resource and what the OpenAPI description says about its operations."""

    path: str
    resource: Any
    summary: str
    schema: dict | None = None  # the 200 answer's JSON schema (None: described by `content`)
    tag: str = "data"
    params: tuple[dict, ...] = ()
    auth: bool = True
    method: str = "get"
    errors: tuple[int, ...] = ()  # statuses besides 200 (and 401 when auth, 404 when site given)
    request_body: dict | None = None
    content: dict | None = None  # a non-JSON 200 answer: {media type: schema}
    source_header: bool = True
    description: str = ""
    extra: dict = field(default_factory=dict)


# -- parameters --------------------------------------------------------------------------

SITE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"  # no control characters
SITE_PARAM = {"name": "site", "in": "query", "required": False,
              "description": "The installation (the `site` tag); default: `[site] id` of this server.",
              "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SITE_CHARS, "pattern": SITE_PATTERN}}
EVERY_PARAM = {"name": "every", "in": "query", "required": False,
               "description": "Bucket of the means (default 5m); ignored with raw=true.",
               "schema": {"type": "string", "enum": list(EVERY_MS)}}
RAW_PARAM = {"name": "raw", "in": "query", "required": False,
             "description": "true: every sample of the 24 h instead of bucket means.",
             "schema": {"type": "string", "enum": ["true", "false"]}}


ALL_DEVICES = "all"
DEVICE_PATTERN = "^[a-z0-9_-]{1,64}$"  # a [[devices]] name (edge_store/devices.py)
DEVICE_PARAM = {"name": "device", "in": "query", "required": False,
                "description": "The device (a `[[devices]] name` of the site, see /devices); default: "
                               "`[api] default_device`, else the first configured device (another site: its first "
                               "device by name, unless it has ours). An unknown device is a 404.",
                "schema": {"type": "string", "pattern": DEVICE_PATTERN}}
DEVICE_OR_ALL_PARAM = {**DEVICE_PARAM, "description": DEVICE_PARAM["description"] + " `all`: the site's total, "
                       "energy and charge summed over every device."}


def device_of(req: falcon.Request, api, site: str, *, allow_all: bool = False) -> DeviceInfo:
    """The device a request is about, looked up once: `device` (default: `[api] default_device` where the
    site has it, else its first device) among `site`'s devices (api/app.py `devices_of`), else 404 before any
    data is read (whatever its freshness); `all` (named so, the default device's model and intervals) where
    the path sums over devices. A site no device is known of yet (another site with no point in InfluxDB)
    answers no data whatever the device asked, naming none: a user learns no device that way."""
    return _device_among(req, api, site, api.devices_of(site), allow_all)


def devices_read(req: falcon.Request, api, site: str) -> tuple[str, list[str]]:
    """For a path that sums over devices: the `device` asked (`device_of`, `all` allowed) and the names of the
    devices to read (the one asked, or every device of the site for `all`), the site's devices looked up once."""
    devices = api.devices_of(site)
    name = _device_among(req, api, site, devices, True).name
    return name, [d.name for d in devices] if name == ALL_DEVICES else [name]


def _device_among(req: falcon.Request, api, site: str, devices: tuple, allow_all: bool) -> DeviceInfo:
    name = req.get_param("device")
    if not devices:
        if name is not None and not re.fullmatch(DEVICE_PATTERN, name):
            raise NotFound(f"no device {name[:64]!r} at site {site[:64]!r}: no device is known there yet")
        ours = api.settings.device_info(api.settings.device)
        return replace(ours, name=ALL_DEVICES if name == ALL_DEVICES and allow_all else name or ours.name)
    default = next((d for d in devices if d.name == api.settings.device), devices[0])
    if name is None:
        return default
    if name == ALL_DEVICES and allow_all:
        return replace(default, name=ALL_DEVICES)
    found = next((d for d in devices if d.name == name), None)
    if found is None:
        where = "here" if devices is api.settings.devices else f"at site {site[:64]!r}"  # ours, or InfluxDB's
        raise NotFound(f"no device {name[:64]!r} {where}; the devices are: {', '.join(d.name for d in devices)}"
                       + (" (or all)" if allow_all else ""))
    return found


def check_site(site: str) -> str:
    """A site name as a request gives it (the `site` parameter, the fleet's path): 1 to 128 printable
    characters, else 400."""
    if not 0 < len(site) <= MAX_SITE_CHARS or not re.match(SITE_PATTERN, site):
        raise BadRequest(f"site must be 1 to {MAX_SITE_CHARS} characters, none a control character, "
                         f"not {site[:40]!r}")
    return site


def site_of(req: falcon.Request, default: str) -> str:
    """The `site` parameter (default: this server's site): `check_site`."""
    site = req.get_param("site")
    return default if site is None else check_site(site)


def requested_site(api, req: falcon.Request) -> str:
    """The site a data path answers for: `site_of`, when the user may see it (api/access.py), else 404."""
    return site_for(api, req, site_of(req, api.settings.site))


def answer(resp: falcon.Response, media: Any, source: str) -> None:
    resp.media = media
    resp.set_header(SOURCE_HEADER, source)


# -- objects: realtime and last -----------------------------------------------------------

class ObjectResource:
    """GET the newest object of a family: `realtime`, or `last` (however old, with `date`: its age shows)."""

    def __init__(self, api, family: Family, *, realtime: bool):
        self.api = api
        self.family = family
        self.realtime = realtime
        self.with_date = not realtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        device = device_of(req, self.api, site)
        family = self.family.for_model(device.model)
        snap, source = self.api.sources.answer(site, lambda s: s.newest(site, family, device.name),
                                               what=family.name)
        if self.realtime:
            self.api.require_fresh(snap.ts_ms, family.primary.group, device)
        body = dict(snap.value)
        if self.with_date:
            body["date"] = iso(snap.ts_ms)
        answer(resp, body, source)


def object_schema(family: Family, with_date: bool) -> dict:
    schema = {**family.schema, "properties": dict(family.schema["properties"]),
              "required": list(family.schema["required"])}
    if with_date:
        schema["properties"]["date"] = {"type": "string", "format": "date-time",
                                        "description": "time of the record (UTC)"}
        schema["required"].append("date")
    return schema


def object_routes(api, family: Family, base: str, summary: str, *, tag: str = "data") -> list[Route]:
    """`base`/realtime and `base`/last (the object and `date`, the time of its record)."""
    fresh = ("the newest live sample, when it is at most two poll intervals (plus [store] commit_window_s) old"
             if family.primary.group == LIVE else
             "the newest reading of the device's slow group, when it is at most two slow poll intervals (plus the "
             "commit window) old")
    return [
        Route(f"{base}/realtime", ObjectResource(api, family, realtime=True), f"{summary}: realtime",
              object_schema(family, False), tag=tag, params=(SITE_PARAM, DEVICE_PARAM), errors=(400, 404, 503),
              description=f"{fresh.capitalize()}; otherwise 503 (use /last)."),
        Route(f"{base}/last", ObjectResource(api, family, realtime=False),
              f"{summary}: newest stored record", object_schema(family, True), tag=tag,
              params=(SITE_PARAM, DEVICE_PARAM), errors=(400, 404, 503),
              description="The newest stored record, however old, and `date`, the time of that record "
                          "(ISO 8601, UTC): its age shows."),
    ]


# -- series ---------------------------------------------------------------------------------

SERIES_SCHEMA = {
    "type": "array",
    "items": {"type": "object", "required": ["time", "value"], "additionalProperties": False,
              "properties": {"time": {"type": "string", "format": "date-time"}, "value": {"type": "number"}}},
}


def series_window(now: int, every_ms: int | None) -> tuple[int, int]:
    """[start, end) of the last 24 h: whole buckets ending with the current one (at most 24 h / bucket)."""
    if every_ms is None:
        return now - DAY_MS, now + 1
    current = now - now % every_ms
    return current - (DAY_MS // every_ms - 1) * every_ms, current + every_ms


class SeriesResource:
    """GET the last 24 h of one metric: bucket means (default 5 min) or every sample."""

    def __init__(self, api, metric: Metric):
        self.api = api
        self.metric = metric

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        device = device_of(req, self.api, site).name
        raw_param = req.get_param("raw")
        every_param = req.get_param("every")
        if raw_param is not None and raw_param.lower() not in ("true", "false"):
            raise BadRequest(f"raw must be true or false, not {raw_param[:40]!r}")
        raw = raw_param is not None and raw_param.lower() == "true"
        if every_param is not None and every_param not in EVERY_MS:
            raise BadRequest(f"every must be one of {', '.join(EVERY_MS)}, not {every_param[:40]!r}")
        every_ms = None if raw else EVERY_MS[every_param or DEFAULT_EVERY]
        start, end = series_window(self.api.clock_ms(), every_ms)
        metric = self.metric
        points, source = self.api.sources.answer(
            site, lambda s: s.series(site, metric, start, end, every_ms, device), since_ms=start, what=metric.name)
        answer(resp, [{"time": iso(t), "value": r2(v)} for t, v in points], source)


def series_route(api, path: str, metric: Metric, summary: str, tag: str = "data") -> Route:
    return Route(path, SeriesResource(api, metric), summary, SERIES_SCHEMA, tag=tag,
                 params=(SITE_PARAM, DEVICE_PARAM, EVERY_PARAM, RAW_PARAM), errors=(400, 404, 503),
                 description="The last 24 h, oldest first: means over 5-minute buckets by default "
                             "(at most 288 points), `every` chooses the bucket, `raw=true` gives every sample. "
                             "An empty window is [].")


def retry_after_s(interval_s: float) -> int:
    return max(1, math.ceil(interval_s))


def stale(ts_ms: int, now: int, group: str, live_interval_s: float, slow_interval_s: float,
          commit_window_s: float = 0.0) -> Unavailable | None:
    """The 503 for a realtime answer older than two poll intervals of its group (plus the commit window),
    or None when fresh."""
    interval = live_interval_s if group == LIVE else slow_interval_s
    age_s = (now - ts_ms) / 1000
    limit_s = fresh_within_s(interval, commit_window_s)
    if age_s <= limit_s:
        return None
    return Unavailable(f"no live data: the newest {group} sample is {age_s:.0f} s old "
                       f"(realtime means at most {limit_s:g} s); use /last",
                       retry_after_s=retry_after_s(interval))


__all__ = ["Route", "ObjectResource", "SeriesResource", "object_routes", "series_route", "site_of", "requested_site", "answer",
           "SITE_PARAM", "DEVICE_PARAM", "DEVICE_OR_ALL_PARAM", "ALL_DEVICES", "device_of", "devices_read",
           "Snapshot"]
