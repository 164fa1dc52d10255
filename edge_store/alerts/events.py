"""Reading alert events back: `GET /alerts`, /health, /metrics, `kammthaar status`, the notifier."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

_COLUMNS = "e.id, e.ts_ms, e.rule, e.device, e.severity, e.state, e.value, e.threshold, e.message"


def iso(ts_ms: int, tz=timezone.utc) -> str:
    """UTC milliseconds -> ISO 8601 with its offset."""
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="milliseconds")


def _event(row) -> dict[str, Any]:
    eid, ts_ms, rule, device, severity, state, value, threshold, message = row[:9]
    return {"id": eid, "rule": rule, "device": device, "severity": severity, "state": state,
            "since": iso(ts_ms), "value": value, "threshold": threshold, "message": message, "ts_ms": ts_ms}


def list_events(conn, *, firing_only: bool = False, since_ms: int | None = None, device: str | None = None,
                limit: int = 500) -> list[dict]:
    """Events newest first; `firing_only`: the firing event of each alert active now; `device`: its only."""
    where, params = [], []
    if device is not None:
        where.append("e.device = ?")
        params.append(device)
    if firing_only:
        where.append("e.id IN (SELECT event_id FROM alert_state)")
    if since_ms is not None:
        where.append("e.ts_ms >= ?")
        params.append(since_ms)
    sql = (f"SELECT {_COLUMNS} FROM alert_events e {'WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY e.ts_ms DESC, e.id DESC LIMIT ?")
    return [_event(r) for r in conn.execute(sql, (*params, limit))]


def active_totals(conn) -> tuple[int, int]:
    """(alerts firing now, of which critical): the heartbeat's alerts_active and alerts_critical."""
    active, critical = conn.execute(
        "SELECT count(*), total(e.severity = 'critical') FROM alert_state s "
        "JOIN alert_events e ON e.id = s.event_id").fetchone()
    return int(active), int(critical)


def active_counts(conn) -> list[tuple[str, str, int]]:
    """(rule, severity, how many devices) of the alerts firing now."""
    return [tuple(r) for r in conn.execute(
        "SELECT e.rule, e.severity, count(*) FROM alert_state s JOIN alert_events e ON e.id = s.event_id "
        "GROUP BY e.rule, e.severity ORDER BY e.rule")]


def unsent(conn, limit: int = 100) -> list[dict]:
    """The outbox: notifications not yet acknowledged, oldest first, with their event and tries."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, n.id, n.tries FROM notifications n JOIN alert_events e ON e.id = n.event_id "
        "WHERE n.sent_ms IS NULL ORDER BY n.id LIMIT ?", (limit,)).fetchall()
    return [{**_event(r), "notification_id": r[9], "tries": r[10]} for r in rows]


def read(db, what: str, query, *args, **kw):
    """Run one of the readers above on the store's Database `db` (edge_store/db.py owns the connection)."""
    with db.reading(f"could not read {what}") as conn:
        return query(conn, *args, **kw)
