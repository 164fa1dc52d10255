"""What /health and /metrics report: the store (and whether the collector can write it), the collector's
freshness, the replicator, the cloud.

One `snapshot()` feeds both, so the JSON and the Prometheus figures cannot
disagree. Everything is read from the store the collector and the replicator
write (their tables, never their processes) and from the sources' own
reachability checks.
"""

from __future__ import annotations

from typing import Any

from edge_store.errors import StoreError
from edge_store.registers import LIVE
from edge_store.write_failures import read_state

from .errors import NotFound, Unavailable
from .families import iso
from .resources.base import fresh_within_s


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


def snapshot(api) -> dict[str, Any]:
    """The figures of /health (and /metrics): never raises for a source that is down, it says so."""
    settings, sources = api.settings, api.sources
    now = api.clock_ms()
    out: dict[str, Any] = {"site": settings.site, "time": iso(now), "sources": [s.name for s in sources.sources]}

    local = sources.local
    store: dict[str, Any] = {"configured": local is not None, "reachable": None, "error": None}
    replicator = None
    counters: dict[str, int] = {}
    stored: dict[str, int] = {}
    alerts = None
    if local is not None:
        store["path"] = local.path
        # The collector's writes, from its side file: readable while the store cannot take a write.
        state = read_state(local.path)
        store["writes"] = None if state is None else {
            "failing": bool(state.get("failing")), "failed_writes": state.get("failed_writes", 0),
            "episode_failures": state.get("episode_failures", 0), "since": _iso(state.get("since_ms")),
            "last_error": state.get("last_error"), "updated": _iso(state.get("updated_ms"))}
        try:
            figures = local.health()
        except StoreError as exc:
            store.update(reachable=False, error=str(exc))
        else:
            store.update(reachable=True, size_bytes=figures["size_bytes"])
            counters, stored = figures["counters"], figures["stored"]
            by_rule = [{"rule": r, "severity": sev, "devices": n} for r, sev, n in figures["alerts"]]
            alerts = {"active": sum(a["devices"] for a in by_rule),
                      "critical": sum(a["devices"] for a in by_rule if a["severity"] == "critical"),
                      "by_rule": by_rule}
            r = figures["replication"]
            replicator = {
                "backlog_rows": r["backlog_rows"], "lag_s": r["oldest_unsent_age_s"],
                "last_success": _iso(r["last_success_ms"]), "last_success_ms": r["last_success_ms"],
                "last_error": r["last_error"], "last_error_time": _iso(r["last_error_ms"]),
                "last_error_ms": r["last_error_ms"], "blocked": r["blocked"],
                "points_sent": r["points_sent"], "dead_letters": r["dead_letters"],
            }
    out["store"] = store

    # The collector: the newest live sample of the first source that has one.
    limit_s = fresh_within_s(settings.interval_s)
    collector: dict[str, Any] = {"newest_sample": None, "age_s": None, "fresh": False, "fresh_within_s": limit_s,
                                 "source": None}
    try:
        ts, source = sources.answer(settings.site, lambda s: s.newest_ts(settings.site, LIVE), what="live sample")
    except (NotFound, Unavailable) as exc:
        collector["error"] = str(exc)
    else:
        age_s = max(0.0, (now - ts) / 1000)
        collector.update(newest_sample=iso(ts), newest_ms=ts, age_s=round(age_s, 3), fresh=age_s <= limit_s,
                         source=source)
    out["collector"] = collector
    out["replicator"] = replicator
    out["alerts"] = alerts  # the alerts firing now (local store); null without one
    out["modbus_errors"] = {k.split(".", 1)[1]: v for k, v in sorted(counters.items())
                            if k.startswith("modbus_errors.")}
    out["counters"] = counters
    out["stored"] = stored
    cloud = sources.cloud
    out["cloud"] = {"configured": cloud is not None, "reachable": None if cloud is None else cloud.reachable()}

    up = [s.name for s in sources.sources
          if (s.name == "local" and store["reachable"]) or (s.name == "cloud" and out["cloud"]["reachable"])]
    if not up:
        out["status"] = "down"
    elif len(up) < len(sources.sources) or not collector["fresh"] or (store.get("writes") or {}).get("failing"):
        out["status"] = "degraded"
    else:
        out["status"] = "ok"
    return out
