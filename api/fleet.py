"""The installer's fleet from InfluxDB: every site a user may see, its health, in triage order.

A site is known from any point carrying its `site` tag (`SHOW TAG VALUES`, an
index lookup). Each list is a few InfluxQL statements, each `GROUP BY "site"`
(never one query per site), whatever the number of sites, sent as two requests
side by side (`ask`):

- the newest live point per site and device (the catalogue's live stamp field),
- the newest heartbeat per site (`edge_health` without a `device` tag: the
  replicator's backlog and error counters, completeness, the alerts firing now) and per device
  (`edge_health` with one: freshness, Modbus errors), as issue 14 writes them,
- the newest event per alert rule (`alerts`, issue 13): firing when the newest
  event of its (site, device, rule) is `state=firing`.

Every statement is bounded in time, so years of history (many shards) cost
nothing: the list reads the last `RECENT_MS` (alerts: `ALERTS_MS`, as a rule
fires once and its event may be old). A known site with no point in that window
(stale by then), or a device with a heartbeat but no recent data, is looked up
by the same statements 30 days back, then (no live point yet) `LOOK_BACK_MS`,
for those sites only, and kept in `Beyond` for `BEYOND_TTL_S`: their newest
points only change by new points, which the window sees (a backfill of older
points shows after the TTL).

A viewer's statements carry `"site" = '...' OR ...` (escaped literals), so
another site's rows are never even read. Missing measurements (no heartbeat
or alerts written yet) answer empty: those fields are then null.
"""

from __future__ import annotations

import functools
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Iterable

from edge_store.catalogue import MODELS
from edge_store.registers import LIVE
from replicator.influxql import InfluxQLReader, ident, literal

from .families import iso

HEALTH, ALERTS = "edge_health", "alerts"
# What the list shows of a heartbeat (each field read costs a cursor per site: the version, the oldest unsent
# age and the free disk are on the site's own page, /sites/{site}).
# alerts_active/alerts_critical: the Pi's own count of the alerts firing now (issue 13), which also knows the
# alerts fired before ALERTS_MS and events not replicated yet.
SITE_HEALTH_FIELDS = ("backlog_rows", "dead_letters", "dropped_rows", "completeness", "alerts_active",
                      "alerts_critical")
DEVICE_HEALTH_FIELDS = ("errors", "fresh")
CRITICAL = "critical"
DAY_MS = 86_400_000
RECENT_MS = DAY_MS  # the list's window (a site older than stale_after_s within it is listed stale)
ALERTS_MS = 30 * DAY_MS  # a rule whose firing event is older (and never resolved) is not listed active
LOOK_BACK_MS = 400 * DAY_MS  # a site not seen for longer is listed with last_seen null
LOOK_BACK_STEPS = (ALERTS_MS, LOOK_BACK_MS)  # looked up 30 days back first, then the rest
BEYOND_TTL_S = 300.0
CHUNK = 100  # sites per statement when looking beyond the window


@dataclass(frozen=True)
class Scope:
    """Which sites a list covers: None for every site (an installer), else the viewer's."""

    sites: tuple[str, ...] | None

    def where(self, *more: str) -> str:
        """A WHERE clause (with a leading space) for the scope and `more` conditions; "" when none."""
        parts = list(more)
        if self.sites is not None:
            parts.insert(0, "(" + " OR ".join(f"{ident('site')} = {literal(s)}" for s in self.sites) + ")")
        return " WHERE " + " AND ".join(parts) if parts else ""


def _fields(fields: Iterable[str]) -> str:
    return ", ".join(ident(f) for f in fields)


NAMES = ("known", "data", "health", "dev_health", "alerts")
# The list's statements go in two requests side by side (InfluxDB runs one request's statements one after
# the other): the sites' heartbeats (six fields each) cost about as much as the other four together.
SIDE_BY_SIDE = ("health",)


def ask(reader: InfluxQLReader, statements: list[str], names: tuple[str, ...] = NAMES) -> list[list[dict]]:
    """The answer of each statement (named by `names`), in order; `SIDE_BY_SIDE` in a request of its own."""
    side = [k for k, name in enumerate(names) if name in SIDE_BY_SIDE]
    rest = [k for k, name in enumerate(names) if name not in SIDE_BY_SIDE]
    groups = [ks for ks in (rest, side) if ks]
    answers = reader.query_groups([[statements[k] for k in ks] for ks in groups])
    out: list[list[dict]] = [[] for _ in names]
    for ks, group in zip(groups, answers):
        for k, answer in zip(ks, group):
            out[k] = answer
    return out


def _newest_points(measurement: str, fields: Iterable[str], where: str, tags: tuple[str, ...], since: str) -> str:
    """The newest point of each series (by `tags`) as rows of one series, each naming its tags.

    Inside: a raw select, ORDER BY time DESC LIMIT 1 per group, reads one point per series (a last() per
    field costs one iterator per field: ten times slower at 1,000 sites). Outside: the groups flattened into
    one series (a third cheaper for InfluxDB to answer than a thousand series). InfluxDB 1.x may give a
    series' newest point of each shard in the window: the reader keeps the newest (`_newest`)."""
    fields = _fields(fields)
    return (f"SELECT {_fields(tags)}, {fields} FROM (SELECT {fields} FROM {ident(measurement)}{where} "
            f"GROUP BY {_fields(tags)} ORDER BY time DESC LIMIT 1) WHERE {since} ORDER BY time DESC")


def live_stamps() -> set[tuple[str, str]]:
    """(measurement, field) written with every live row, of each model: a site is seen whatever its controllers."""
    return {(s.measurement, s.influx) for s in (c.stamp(LIVE) for c in MODELS.values()) if s is not None}


def _statements(scope: Scope, *, since_ms: int, alerts_since_ms: int) -> list[str]:
    """The list's statements (`NAMES`, in order), each bounded in time."""
    stamps = live_stamps()
    if len(stamps) != 1:  # one query per site list: a model with another stamp needs it read too
        raise ValueError(f"the models' live stamps differ ({sorted(stamps)}): the fleet reads one")
    ((measurement, field),) = stamps
    no_device, a_device = f"{ident('device')} = ''", f"{ident('device')} != ''"
    since, alerts_since = f"time >= {int(since_ms)}ms", f"time >= {int(alerts_since_ms)}ms"
    site, device = ("site",), ("site", "device")
    return [
        f"SHOW TAG VALUES WITH KEY = {ident('site')}{scope.where()}",
        _newest_points(measurement, (field,), scope.where(since), device, since),
        _newest_points(HEALTH, SITE_HEALTH_FIELDS, scope.where(no_device, since), site, since),
        _newest_points(HEALTH, DEVICE_HEALTH_FIELDS, scope.where(a_device, since), device, since),
        _newest_points(ALERTS, ("event_id",), scope.where(alerts_since),
                       ("site", "device", "rule", "severity", "state"), alerts_since),
    ]


def list_statements(scope: Scope, now_ms: int) -> list[str]:
    """The statements of one list, within the window (what bench/sites.py times one by one)."""
    return _statements(scope, since_ms=now_ms - RECENT_MS, alerts_since_ms=now_ms - ALERTS_MS)


def _records(answer: list[dict]) -> list[dict]:
    """The rows of a statement's answer as dicts (time, tags, fields)."""
    return [dict(zip(s["columns"], v)) for s in answer for v in s.get("values") or ()]


class Beyond:
    """The newest points of the sites not seen within the window, per site, for `ttl_s` (one per process:
    shared by the threads of a server, so a lock)."""

    def __init__(self, ttl_s: float = BEYOND_TTL_S):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sites: dict[str, tuple[float, list[list[dict]]]] = {}

    def answers(self, reader: InfluxQLReader, sites: set[str], now_ms: int) -> list[list[dict]]:
        """The answers of the four SELECTs (`NAMES[1:]`) for `sites`, over the look-back; asked once per TTL."""
        now = time.monotonic()
        with self._lock:
            kept = {s: v for s, v in ((s, self._sites.get(s)) for s in sites) if v is not None and v[0] > now}
        todo = sorted(sites - kept.keys())
        for look_back in LOOK_BACK_STEPS:  # the recently stale first: fewer shards to read
            for start in range(0, len(todo), CHUNK):
                self._ask(reader, todo[start:start + CHUNK], now_ms - look_back, kept, now)
            todo = [site for site in todo if not kept[site][1][0]]  # no live point yet: further back
        return [[series for _, lists in kept.values() for series in lists[k]] for k in range(len(NAMES) - 1)]

    def _ask(self, reader: InfluxQLReader, chunk: list[str], since: int, kept: dict, now: float) -> None:
        """The answers for `chunk` since `since`, split per site, kept (here and in `kept`)."""
        answers = ask(reader, _statements(Scope(tuple(chunk)), since_ms=since, alerts_since_ms=since)[1:], NAMES[1:])
        per_site: dict[str, list[list[dict]]] = {s: [[] for _ in answers] for s in chunk}
        for k, answer in enumerate(answers):  # each answer split into one series per site
            for series in answer:
                at = series["columns"].index("site")
                for values in series.get("values") or ():
                    mine = per_site[values[at]][k]
                    if not mine:
                        mine.append({"columns": series["columns"], "values": []})
                    mine[0]["values"].append(values)
        with self._lock:
            for site, lists in per_site.items():
                self._sites[site] = kept[site] = (now + self.ttl_s, lists)


def _rows(series: list[dict]) -> Iterable[tuple[dict, dict]]:
    """(tags, first row as a dict) of each series of a grouped answer."""
    for s in series:
        if s.get("values"):
            yield s.get("tags") or {}, dict(zip(s["columns"], s["values"][0]))


def _newest(answer: list[dict], out: dict | None = None) -> dict[tuple[str, str], dict]:
    """(site, device or "") -> its newest row (a dict) in a flattened answer, merged into `out` (the window's,
    then the look-back's). Rows come newest first: one dict per key, not per row (this runs over the fleet)."""
    out = {} if out is None else out
    for series in answer:
        columns = series["columns"]
        at_site, at_device = columns.index("site"), columns.index("device") if "device" in columns else None
        for values in series.get("values") or ():
            key = (values[at_site], "" if at_device is None else values[at_device] or "")
            kept = out.get(key)
            if kept is None or values[0] > kept["time"]:  # time is the first column
                out[key] = dict(zip(columns, values))
    return out


def _active_alerts(records: list[dict]) -> dict[str, list[dict]]:
    """site -> the rules whose newest event fires: device, rule, severity, since."""
    newest: dict[tuple, dict] = {}
    for r in records:
        key = (r["site"], r.get("device"), r.get("rule"))
        if key not in newest or r["time"] > newest[key]["time"]:
            newest[key] = r
    out: dict[str, list[dict]] = {}
    for (site, device, rule), r in sorted(newest.items(), key=lambda kv: (str(kv[0]), kv[1]["time"])):
        if r.get("state") == "firing":
            out.setdefault(site, []).append({"device": device or None, "rule": rule,
                                             "severity": r.get("severity"), "since": iso(r["time"])})
    return out


@functools.lru_cache(maxsize=4096)
def _health_path(site: str) -> str:
    return "/sites/" + urllib.parse.quote(site, safe="")


def _age_s(now_ms: int, ts: int | None) -> float | None:
    return None if ts is None else round(max(0.0, (now_ms - ts) / 1000), 1)


def fleet(reader: InfluxQLReader, scope: Scope, *, now_ms: int, stale_after_s: float,
          beyond: Beyond | None = None) -> list[dict]:
    """Every site of `scope` with its health, in triage order (`triage_key`)."""
    known, data, health, dev_health, alerts = ask(reader, list_statements(scope, now_ms))
    known_names = {v for s in known for _, v in s.get("values", [])}
    # A viewer's sites are listed even before their first point (never seen: stale).
    names = set(scope.sites) if scope.sites is not None else known_names
    newest = [_newest(part) for part in (data, health, dev_health)]
    seen = {site for part in newest for site, _ in part}
    no_data = {key[0] for key in newest[2] if key not in newest[0]}  # a device beats, no recent data
    beyond_sites = (names - seen) | (no_data & names)
    if beyond_sites:
        far = (beyond or Beyond(ttl_s=0)).answers(reader, beyond_sites, now_ms)
        newest = [_newest(extra, part) for part, extra in zip(newest, far)]
        alerts = alerts + far[3]
    devices: dict[str, dict[str, dict]] = {}
    for (site, device), row in newest[0].items():
        devices.setdefault(site, {})[device] = {"last_ms": row["time"]}
    for (site, device), row in newest[2].items():
        d = devices.setdefault(site, {}).setdefault(device, {})
        d["beat_ms"] = row["time"]
        for f in DEVICE_HEALTH_FIELDS:
            d[f] = row.get(f)
    beats = {site: row for (site, _), row in newest[1].items()}
    firing = _active_alerts(_records(alerts))
    texts: dict[int, str] = {}  # one stamp is often several times in a row (a heartbeat's is its last_seen)

    def text(ts: int) -> str:
        found = texts.get(ts)
        if found is None:
            found = texts[ts] = iso(ts)
        return found

    out = []
    for name in names:
        site_devices, mine = [], devices.get(name, {})
        last = None
        for device, d in (sorted(mine.items()) if len(mine) > 1 else mine.items()):
            fresh, last_ms, beat_ms = d.get("fresh"), d.get("last_ms"), d.get("beat_ms")
            if fresh is None and last_ms is not None:  # no heartbeat: the data's own age says
                fresh = _age_s(now_ms, last_ms) <= stale_after_s
            site_devices.append({"device": device, "last_sample": text(last_ms) if last_ms else None,
                                 "fresh": fresh, "errors": d.get("errors")})
            for t in (last_ms, beat_ms):
                if t is not None and (last is None or t > last):
                    last = t
        hb = beats.get(name)
        if hb is not None and (last is None or hb["time"] > last):
            last = hb["time"]
        age = _age_s(now_ms, last)
        stale = age is None or age > stale_after_s or any(d["fresh"] is False for d in site_devices)
        rules = firing.get(name, ())
        heartbeat = None
        if hb is not None:
            heartbeat = {"time": text(hb["time"])}
            for f in SITE_HEALTH_FIELDS:
                heartbeat[f] = hb.get(f)
        out.append({
            "site": name, "known": name in known_names, "last_seen": text(last) if last is not None else None,
            "age_s": age, "stale": stale,
            "devices": site_devices,
            "heartbeat": heartbeat,
            # The events' count, or the heartbeat's where it says more (an alert older than the window).
            "alerts": {"active": max(len(rules), (hb and hb.get("alerts_active")) or 0),
                       "critical": max(sum(r["severity"] == CRITICAL for r in rules),
                                       (hb and hb.get("alerts_critical")) or 0),
                       "firing": list(rules)},
            "health": _health_path(name),
        })
    out.sort(key=triage_key)
    return out


def triage_key(site: dict) -> tuple:
    """Active critical alerts first (most first), then stale sites (the longest unseen last: sites not
    seen for months sink), then the rest (active alerts, then a replication backlog, first); by name."""
    alerts = site["alerts"]
    backlog = (site["heartbeat"] or {}).get("backlog_rows") or 0
    if alerts["critical"]:
        return (0, -alerts["critical"], -alerts["active"], 0, site["site"])
    if site["stale"]:
        seen = site["age_s"] if site["age_s"] is not None else float("inf")
        return (1, 0, 0, seen, site["site"])
    return (2, -alerts["active"], -backlog, 0, site["site"])


def matching(sites: list[dict], q: str | None) -> list[dict]:
    """The sites whose name contains `q` (case-insensitive); all without one."""
    if not q:
        return sites
    needle = q.casefold()
    return [s for s in sites if needle in s["site"].casefold()]


def site_health(reader: InfluxQLReader, site: str, *, now_ms: int, days: int) -> dict:
    """One site over the last `days`: its heartbeat per hour (6 h beyond a week), each device's share of
    fresh heartbeats and its Modbus errors, and the alert events (newest first)."""
    bucket = "1h" if days <= 7 else "6h"
    start = now_ms - days * DAY_MS
    where = f"{ident('site')} = {literal(site)} AND time >= {int(start)}ms"
    no_device, a_device = f"{ident('device')} = ''", f"{ident('device')} != ''"
    series, devices, fresh, events = reader.query_each([
        f"SELECT max({ident('backlog_rows')}) AS {ident('backlog_rows')}, "
        f"max({ident('oldest_unsent_age_s')}) AS {ident('oldest_unsent_age_s')}, "
        f"max({ident('dead_letters')}) AS {ident('dead_letters')}, "
        f"max({ident('dropped_rows')}) AS {ident('dropped_rows')}, "
        f"last({ident('completeness')}) AS {ident('completeness')}, "
        f"max({ident('alerts_active')}) AS {ident('alerts_active')}, "
        f"max({ident('alerts_critical')}) AS {ident('alerts_critical')}, "
        f"min({ident('free_bytes')}) AS {ident('free_bytes')}, "
        f"last({ident('version')}) AS {ident('version')} "
        f"FROM {ident(HEALTH)} WHERE {where} AND {no_device} GROUP BY time({bucket}) fill(none)",
        f"SELECT count({ident('errors')}) AS beats, max({ident('errors')}) - min({ident('errors')}) AS new_errors, "
        f"max({ident('newest_sample_age_s')}) AS worst_age_s FROM {ident(HEALTH)} WHERE {where} AND {a_device} "
        f"GROUP BY {ident('device')}",
        f"SELECT count({ident('errors')}) FROM {ident(HEALTH)} WHERE {where} AND {a_device} "
        f"AND {ident('fresh')} = true GROUP BY {ident('device')}",
        f"SELECT * FROM {ident(ALERTS)} WHERE {where} ORDER BY time DESC LIMIT 200",
    ])
    hourly = [{"time": iso(r["time"]), **{k: v for k, v in r.items() if k != "time"}} for r in _records(series)]
    fresh_beats = {tags.get("device"): row["count"] for tags, row in _rows(fresh)}
    per_device = []
    for tags, row in _rows(devices):
        beats = row.get("beats") or 0
        per_device.append({"device": tags.get("device"), "heartbeats": beats,
                           "fresh_share": round(fresh_beats.get(tags.get("device"), 0) / beats, 3) if beats else None,
                           "new_errors": row.get("new_errors"), "worst_sample_age_s": row.get("worst_age_s")})
    alert_events = [{"time": iso(r["time"]), **{k: r.get(k) for k in ("device", "rule", "severity", "state", "value",
                                                                     "threshold", "event_id", "message")}}
                    for r in _records(events)]
    return {"site": site, "days": days, "bucket": bucket, "heartbeat": hourly, "devices": per_device,
            "alert_events": alert_events}

