"""The installer's fleet from InfluxDB: every site a user may see, its health, in triage order.

A site is known from any point carrying its `site` tag (`SHOW TAG VALUES`, an
index lookup). Each list is one request of a few InfluxQL statements, each
`GROUP BY "site"` (never one query per site), whatever the number of sites:

- the newest live point per site and device (the catalogue's live stamp field),
- the newest heartbeat per site (`edge_health` without a `device` tag: the
  replicator's backlog and error counters, completeness) and per device
  (`edge_health` with one: freshness, Modbus errors), as issue 14 writes them,
- the newest event per alert rule (`alerts`, issue 13): firing when the newest
  event of its (site, device, rule) is `state=firing`.

A viewer's statements carry `"site" = '...' OR ...` (escaped literals), so
another site's rows are never even read. Missing measurements (no heartbeat
or alerts written yet) answer empty: those fields are then null.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Iterable

from edge_store.catalogue import MODELS
from edge_store.registers import LIVE
from replicator.influxql import InfluxQLReader, ident, literal

from .families import iso

HEALTH, ALERTS = "edge_health", "alerts"
# What the list shows of a heartbeat (each field read costs a cursor per site: the disk figures and
# the clock are on the site's own page, /sites/{site}).
SITE_HEALTH_FIELDS = ("version", "backlog_rows", "oldest_unsent_age_s", "dead_letters", "dropped_rows", "completeness")
DEVICE_HEALTH_FIELDS = ("newest_sample_age_s", "errors", "fresh")
CRITICAL = "critical"
DAY_MS = 86_400_000


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


# The newest point of each series: a raw select, ORDER BY time DESC LIMIT 1 per group, reads one point
# per series (a last() per field costs one iterator per field: ten times slower at 1,000 sites).
NEWEST = "ORDER BY time DESC LIMIT 1"


def live_stamps() -> set[tuple[str, str]]:
    """(measurement, field) written with every live row, of each model: a site is seen whatever its controllers."""
    return {(s.measurement, s.influx) for s in (c.stamp(LIVE) for c in MODELS.values()) if s is not None}


def _statements(scope: Scope) -> list[str]:
    stamps = live_stamps()
    if len(stamps) != 1:  # one query per site list: a model with another stamp needs it read too
        raise ValueError(f"the models' live stamps differ ({sorted(stamps)}): the fleet reads one")
    ((measurement, field),) = stamps
    by_site, by_device = f"GROUP BY {ident('site')}", f"GROUP BY {ident('site')}, {ident('device')}"
    no_device, a_device = f"{ident('device')} = ''", f"{ident('device')} != ''"
    return [
        f"SHOW TAG VALUES WITH KEY = {ident('site')}{scope.where()}",
        f"SELECT {ident(field)} FROM {ident(measurement)}{scope.where()} {by_device} {NEWEST}",
        f"SELECT {_fields(SITE_HEALTH_FIELDS)} FROM {ident(HEALTH)}{scope.where(no_device)} {by_site} {NEWEST}",
        f"SELECT {_fields(DEVICE_HEALTH_FIELDS)} FROM {ident(HEALTH)}{scope.where(a_device)} {by_device} {NEWEST}",
        f"SELECT {ident('event_id')} FROM {ident(ALERTS)}{scope.where()} "
        f"GROUP BY {ident('site')}, {ident('device')}, {ident('rule')}, {ident('severity')}, {ident('state')} "
        f"{NEWEST}",
    ]


def _rows(series: list[dict]) -> Iterable[tuple[dict, dict]]:
    """(tags, first row as a dict) of each series."""
    for s in series:
        if s.get("values"):
            yield s.get("tags") or {}, dict(zip(s["columns"], s["values"][0]))


def _active_alerts(series: list[dict]) -> dict[str, list[dict]]:
    """site -> the rules whose newest event fires: device, rule, severity, since."""
    newest: dict[tuple, tuple[int, dict]] = {}
    for tags, row in _rows(series):
        key = (tags.get("site"), tags.get("device"), tags.get("rule"))
        if key not in newest or row["time"] > newest[key][0]:
            newest[key] = (row["time"], tags)
    out: dict[str, list[dict]] = {}
    for (site, device, rule), (t, tags) in sorted(newest.items(), key=lambda kv: (str(kv[0]), kv[1][0])):
        if tags.get("state") == "firing":
            out.setdefault(site, []).append({"device": device or None, "rule": rule,
                                             "severity": tags.get("severity"), "since": iso(t)})
    return out


def _age_s(now_ms: int, ts: int | None) -> float | None:
    return None if ts is None else round(max(0.0, (now_ms - ts) / 1000), 1)


def fleet(reader: InfluxQLReader, scope: Scope, *, now_ms: int, stale_after_s: float) -> list[dict]:
    """Every site of `scope` with its health, in triage order (`triage_key`)."""
    known, data, health, dev_health, alerts = reader.query_each(_statements(scope))
    known_names = {v for s in known for _, v in s.get("values", [])}
    # A viewer's sites are listed even before their first point (never seen: stale).
    names = set(scope.sites) if scope.sites is not None else known_names
    devices: dict[str, dict[str, dict]] = {}
    for tags, row in _rows(data):
        devices.setdefault(tags["site"], {})[tags["device"]] = {"last_ms": row["time"]}
    for tags, row in _rows(dev_health):
        devices.setdefault(tags["site"], {}).setdefault(tags["device"], {}).update(
            {"beat_ms": row["time"], **{f: row.get(f) for f in DEVICE_HEALTH_FIELDS}})
    beats = {tags["site"]: row["time"] for tags, row in _rows(health)}
    healths = {tags["site"]: {f: row.get(f) for f in SITE_HEALTH_FIELDS} for tags, row in _rows(health)}
    firing = _active_alerts(alerts)
    out = []
    for name in names:
        site_devices = []
        for device, d in sorted(devices.get(name, {}).items()):
            fresh = d.get("fresh")
            if fresh is None and d.get("last_ms") is not None:  # no heartbeat: the data's own age says
                fresh = _age_s(now_ms, d["last_ms"]) <= stale_after_s
            site_devices.append({"device": device, "last_sample": iso(d["last_ms"]) if d.get("last_ms") else None,
                                 "fresh": fresh, "newest_sample_age_s": d.get("newest_sample_age_s"),
                                 "errors": d.get("errors")})
        stamps = [t for t in (beats.get(name), *(d.get("last_ms") for d in devices.get(name, {}).values()),
                              *(d.get("beat_ms") for d in devices.get(name, {}).values())) if t is not None]
        last = max(stamps) if stamps else None
        age = _age_s(now_ms, last)
        stale = age is None or age > stale_after_s or any(d["fresh"] is False for d in site_devices)
        rules = firing.get(name, [])
        hb = healths.get(name)
        out.append({
            "site": name, "known": name in known_names, "last_seen": iso(last) if last is not None else None,
            "age_s": age, "stale": stale,
            "devices": site_devices,
            "heartbeat": {"time": iso(beats[name]), **hb} if hb is not None and name in beats else None,
            "alerts": {"active": len(rules), "critical": sum(r["severity"] == CRITICAL for r in rules),
                       "firing": rules},
            "health": "/sites/" + urllib.parse.quote(name, safe=""),
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
        f"min({ident('free_bytes')}) AS {ident('free_bytes')} "
        f"FROM {ident(HEALTH)} WHERE {where} AND {no_device} GROUP BY time({bucket}) fill(none)",
        f"SELECT count({ident('errors')}) AS beats, max({ident('errors')}) - min({ident('errors')}) AS new_errors, "
        f"max({ident('newest_sample_age_s')}) AS worst_age_s FROM {ident(HEALTH)} WHERE {where} AND {a_device} "
        f"GROUP BY {ident('device')}",
        f"SELECT count({ident('errors')}) FROM {ident(HEALTH)} WHERE {where} AND {a_device} "
        f"AND {ident('fresh')} = true GROUP BY {ident('device')}",
        f"SELECT * FROM {ident(ALERTS)} WHERE {where} ORDER BY time DESC LIMIT 200",
    ])
    hourly = [{"time": iso(r["time"]), **{k: v for k, v in r.items() if k != "time"}}
              for s in series for r in (dict(zip(s["columns"], v)) for v in s.get("values", []))]
    fresh_beats = {tags.get("device"): row["count"] for tags, row in _rows(fresh)}
    per_device = []
    for tags, row in _rows(devices):
        beats = row.get("beats") or 0
        per_device.append({"device": tags.get("device"), "heartbeats": beats,
                           "fresh_share": round(fresh_beats.get(tags.get("device"), 0) / beats, 3) if beats else None,
                           "new_errors": row.get("new_errors"), "worst_sample_age_s": row.get("worst_age_s")})
    alert_events = [{"time": iso(r["time"]), **{k: r.get(k) for k in ("device", "rule", "severity", "state", "value",
                                                                     "threshold", "event_id", "message")}}
                    for s in events for r in (dict(zip(s["columns"], v)) for v in s.get("values", []))]
    return {"site": site, "days": days, "bucket": bucket, "heartbeat": hourly, "devices": per_device,
            "alert_events": alert_events}

