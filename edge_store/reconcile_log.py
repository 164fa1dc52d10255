"""What reconciliation found, kept per UTC day, and its state: the `reconcile_days` and
`reconcile_state` tables (migration 0012), through edge_store/db.py.

The replicator's reconciliation (replicator/reconcile.py) writes them; `kammthaar status`,
/health and /metrics read `summary()`: the cloud's completeness over the last 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .db import Database, dicts
from .store import now_ms

WINDOW_DAYS = 30


@dataclass
class DayFinding:
    """One UTC day checked: the points the Pi sent, how many the cloud held, what was re-sent."""

    day: str
    points_local: int = 0
    points_cloud: int = 0
    hours_differing: int = 0
    hours_repaired: int = 0
    hours_still_differing: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def points_missing(self) -> int:
        return self.points_local - self.points_cloud

    @property
    def completeness(self) -> float:
        return 1.0 if not self.points_local else self.points_cloud / self.points_local


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


class ReconcileLog:
    """The findings per day and the state row, on one database file (or a shared Database)."""

    def __init__(self, source: str | Path | Database, *, readonly: bool = False):
        self._owned = not isinstance(source, Database)
        self.db = Database(source, readonly=readonly) if self._owned else source

    def record_day(self, finding: DayFinding, ts_ms: int | None = None) -> None:
        """Keep what the check of a day found (replacing the previous check of that day)."""
        with self.db.writing(f"could not record the reconciliation of {finding.day}") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reconcile_days (day, checked_ms, points_local, points_cloud, points_missing, "
                "completeness, hours_differing, hours_repaired, hours_still_differing, repaired) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (finding.day, now_ms() if ts_ms is None else ts_ms, finding.points_local, finding.points_cloud,
                 finding.points_missing, finding.completeness, finding.hours_differing, finding.hours_repaired,
                 finding.hours_still_differing, "\n".join(finding.repaired)))

    def record_pass(self, ok: bool, ts_ms: int | None = None) -> None:
        self._set_state(last_pass_ms=now_ms() if ts_ms is None else ts_ms, last_pass_ok=ok, unsupported=None)

    def record_unsupported(self, why: str | None) -> None:
        """The cloud cannot answer InfluxQL (why), or can again (None)."""
        self._set_state(unsupported=why)

    def _set_state(self, **values) -> None:
        cols = list(values)
        with self.db.writing("could not record the reconciliation state") as conn:
            conn.execute(
                f"INSERT INTO reconcile_state (id, {', '.join(cols)}, updated_ms) VALUES "
                f"(1, {', '.join('?' for _ in cols)}, ?) ON CONFLICT(id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols) + ", updated_ms = excluded.updated_ms",
                (*values.values(), now_ms()))

    def state(self) -> dict[str, Any]:
        with self.db.reading("could not read the reconciliation state") as conn:
            rows = dicts(conn.execute("SELECT last_pass_ms, last_pass_ok, unsupported FROM reconcile_state"))
        return rows[0] if rows else {"last_pass_ms": None, "last_pass_ok": None, "unsupported": None}

    def days(self, since_day: str = "") -> list[dict[str, Any]]:
        """The findings of the days from `since_day` on, newest first."""
        with self.db.reading("could not read the reconciliation") as conn:
            return dicts(conn.execute("SELECT * FROM reconcile_days WHERE day >= ? ORDER BY day DESC", (since_day,)))

    def summary(self, now: int | None = None, window_days: int = WINDOW_DAYS) -> dict[str, Any]:
        """The cloud's completeness over the last `window_days` (None before the first check), the points
        missing and hours repaired there, the last pass, and whether the cloud can answer at all."""
        now = now_ms() if now is None else now
        days = self.days(utc_day(now - window_days * 86_400_000))
        local = sum(d["points_local"] for d in days)
        cloud = sum(d["points_cloud"] for d in days)
        state = self.state()
        return {
            "completeness": (cloud / local if local else 1.0) if days else None,
            "days_checked": len(days),
            "points_missing": local - cloud,
            "hours_repaired": sum(d["hours_repaired"] for d in days),
            "hours_still_differing": sum(d["hours_still_differing"] for d in days),
            "last_repaired": next(([d["day"], d["repaired"]] for d in days if d["repaired"]), None),
            "last_pass_ms": state["last_pass_ms"],
            "last_pass_ok": None if state["last_pass_ok"] is None else bool(state["last_pass_ok"]),
            "unsupported": state["unsupported"],
        }

    def close(self) -> None:
        if self._owned:
            self.db.close()
