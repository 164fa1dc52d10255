"""What /health and /metrics report: the store (and whether the collector can write it), the collector's
freshness, the replicator, what reconciliation found of the cloud, the cloud.

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


HIDDEN = "details need a token (a user's, or a metrics machine token)"
# reconciliation.unsupported is an error text too: it names the cloud's URL (replicator/reconcile.py).
_ERRORS = (("store", "error"), ("collector", "error"), ("replicator", "last_error"), ("replicator", "blocked"),
           ("reconciliation", "unsupported"))


def public(snap: dict[str, Any]) -> dict[str, Any]:
    """What /health tells anybody: states and ages, no file path, URL or error text (those say where
    things are and how they fail). An error that is there reads `HIDDEN`; an absent one stays null."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in snap.items()}
    out["store"].pop("path", None)
    writes = out["store"].get("writes")
    if writes is not None:
        out["store"]["writes"] = {**writes, "last_error": HIDDEN if writes.get("last_error") else None}
    for part, key in _ERRORS:
        if out.get(part) is not None and out[part].get(key):
            out[part][key] = HIDDEN
    return out


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
    reconciliation = None
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
            c = figures["reconciliation"]
            reconciliation = {
                "completeness_30d": c["completeness"], "days_checked": c["days_checked"],
                "points_missing": c["points_missing"], "ranges_repaired": c["hours_repaired"],
                "ranges_still_differing": c["hours_still_differing"], "last_pass": _iso(c["last_pass_ms"]),
                "last_pass_ok": c["last_pass_ok"], "unsupported": c["unsupported"],
            }
    out["store"] = store

    # The collector: the newest live sample of the first source that has one.
    limit_s = fresh_within_s(settings.device_info(settings.device).interval_s,  # the default device's
                             settings.commit_window_s)
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
    out["devices"] = _devices(api, now)
    out["replicator"] = replicator
    out["reconciliation"] = reconciliation
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
    elif (len(up) < len(sources.sources) or not collector["fresh"] or not all(d["fresh"] for d in out["devices"])
          or (store.get("writes") or {}).get("failing")):
        out["status"] = "degraded"
    else:
        out["status"] = "ok"
    return out


def _devices(api, now: int) -> list[dict[str, Any]]:
    """Per configured device: its newest live sample, whether it is fresh, its error counts (null when no
    source knows them)."""
    settings = api.settings
    names = [d.name for d in settings.devices]
    try:
        states, _ = api.sources.answer(settings.site, lambda s: s.device_states(settings.site, names), what="device")
    except (NotFound, Unavailable):
        states = {}
    out = []
    for d in settings.devices:
        state = states.get(d.name) or {"newest_ms": None, "errors": None}
        ts = state["newest_ms"]
        age_s = None if ts is None else round(max(0.0, (now - ts) / 1000), 3)
        out.append({"name": d.name, "model": d.model, "newest_sample": _iso(ts), "newest_ms": ts, "age_s": age_s,
                    "fresh": age_s is not None and age_s <= fresh_within_s(d.interval_s, settings.commit_window_s),
                    "errors": state["errors"]})
    return out
