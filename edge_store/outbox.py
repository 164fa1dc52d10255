"""The outbox: what has not reached the cloud yet, and what the replicator last did.

A stream is one table replicated in key order: the sample tables by row id,
the rollup tables by `version` (a row changed after it was sent gets a higher
version and goes out again). Per stream the watermark is the highest key the
server acknowledged with 2xx; it only moves after the 2xx, in the same SQLite
transaction as the dead letters and counters of that batch, so a crash in
between resends the batch (same points, same timestamps: InfluxDB overwrites).

Reads are one deferred snapshot each (the collector's writes never wait for
them); the replicator's writes are short `BEGIN IMMEDIATE` transactions; both
through edge_store/db.py. `summary()` is what `kammthaar status`, /health and
/metrics show.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .db import Database, dicts
from .rollups import sql as rollup_sql
from .sample_ids import FIRST_ABOVE, rows_above
from .store import BUMP_COUNTER, now_ms

DEAD_LETTERS_KEPT = 10_000

# Counter names in the `counters` table.
POINTS_SENT = "replicator.points_sent"
BYTES_SENT = "replicator.bytes_sent"
DEAD_LETTERS = "replicator.dead_letters"
SKIPPED_OLD = "replicator.skipped_old"
DROPPED_UNSENT = "store.dropped_unsent"


@dataclass(frozen=True)
class Stream:
    """One replicated table: its key column and, for raw samples, its time column."""

    name: str
    key: str
    time: str
    samples: bool  # raw samples (pruned; their age is the backlog's age) or statistics (kept forever)


STREAMS: tuple[Stream, ...] = (
    Stream("live_samples", "id", "ts_ms", True),
    Stream("device_statistics", "id", "ts_ms", True),
    Stream("device_settings", "id", "ts_ms", True),
    Stream("device_clock", "id", "ts_ms", True),
    Stream("alert_events", "id", "ts_ms", True),  # issue 13: never pruned, by id like the samples
    Stream("rollup_daily", "version", "start_ms", False),
    Stream("rollup_monthly", "version", "start_ms", False),  # last: after the days it is computed from
)
BY_NAME = {s.name: s for s in STREAMS}

_STATE_COLUMNS = ("last_attempt_ms", "last_success_ms", "last_error_ms", "last_error", "last_status",
                  "blocked", "blocked_credentials", "blocked_ms")


# Rollup streams (issue 17): the day rows changed since a version are the open rows above it (a
# partial-index lookup) and, only when rollup_versions says a closed row changed since, the closed
# ones: `:closed` is bound (read first), so SQLite decides before reading the table. A month changed
# when one of its days did (its version is its newest day's), so its keys come from the same rows.
CLOSED_MAX = "SELECT closed_max FROM rollup_versions WHERE id = 1"
_CHANGED_DAYS = (
    "SELECT {cols} FROM rollup_daily INDEXED BY ix_rollup_daily_open WHERE open_minute_ms IS NOT NULL "
    "AND version > :position UNION ALL SELECT {cols} FROM rollup_daily WHERE open_minute_ms IS NULL "
    "AND version > :position AND :closed > :position")
CHANGED_DAYS = _CHANGED_DAYS.format(cols="*") + " ORDER BY version LIMIT :limit"
CHANGED_DAY_COUNT = f"SELECT count(*) FROM ({_CHANGED_DAYS.format(cols='version')})"
CHANGED_MONTHS = f"SELECT DISTINCT device, substr(day, 1, 7) FROM ({_CHANGED_DAYS.format(cols='device, day')})"
CHANGED_MONTH_COUNT = f"SELECT count(*) FROM ({CHANGED_MONTHS})"
MONTH_ROW = "SELECT * FROM rollup_monthly WHERE device = ? AND month = ?"
# Nothing ever sent (every site without a cloud): every row is backlog, counted on the small
# ix_rollup_daily_month instead of reading the rows' versions.
ALL_DAY_COUNT = "SELECT count(*) FROM rollup_daily"
ALL_MONTH_COUNT = "SELECT count(*) FROM (SELECT DISTINCT device, substr(day, 1, 7) FROM rollup_daily)"


def _changed(conn: sqlite3.Connection, position: int, **more) -> dict[str, Any]:
    """The parameters of the CHANGED_* statements."""
    closed = conn.execute(CLOSED_MAX).fetchone()
    return {"position": position, "closed": closed[0] if closed else position + 1, **more}



def _oldest_unsent(conn: sqlite3.Connection, marks: dict[str, int]) -> int | None:
    """The time of the oldest row above its stream's watermark over the sample streams: each stream's
    first row above it (one lookup of its id index)."""
    firsts = (conn.execute(FIRST_ABOVE.format(t=s.name), (marks.get(s.name, 0),)).fetchone()
              for s in STREAMS if s.samples)
    return min((first[0] for first in firsts if first is not None), default=None)


class Outbox:
    """Watermarks, batches above them, dead letters and the replicator's state, on one database file.

    `source` is the file's path, or a Database to share (the API's local source
    reads the store and the outbox through one).
    """

    def __init__(self, source: str | Path | Database, *, readonly: bool = False, synchronous: str = "NORMAL"):
        self._owned = not isinstance(source, Database)
        self.db = Database(source, readonly=readonly, synchronous=synchronous) if self._owned else source
        self.path = self.db.path
        self._reading_what = f"could not read the outbox of {self.path}"

    # -- reading ---------------------------------------------------------------------

    def _reading(self):
        return self.db.reading(self._reading_what)

    def watermarks(self) -> dict[str, int]:
        with self._reading() as conn:
            marks = dict(conn.execute("SELECT stream, position FROM replication_watermarks").fetchall())
        return {s.name: marks.get(s.name, 0) for s in STREAMS}

    def pending(self) -> dict[str, tuple[int, int]]:
        """Per stream, (watermark, highest key stored), in one snapshot: which streams have news.

        The same cost whatever the store holds: a sample table's largest id is one lookup, and the
        largest version of the day rows (`rollups.max_version`) is also the months' (a month's
        version is its newest day's)."""
        heads = ", ".join(f"(SELECT max({s.key}) FROM {s.name})" for s in STREAMS if s.samples)
        with self._reading() as conn:
            marks = dict(conn.execute("SELECT stream, position FROM replication_watermarks").fetchall())
            top = dict(zip((s.name for s in STREAMS if s.samples), conn.execute(f"SELECT {heads}").fetchone()))
            version = conn.execute(rollup_sql.MAX_VERSION).fetchone()[0]
        return {s.name: (marks.get(s.name, 0), (top[s.name] if s.samples else version) or 0) for s in STREAMS}

    def rows_after(self, stream: Stream, position: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` rows of a stream with a key above `position`, in key order."""
        with self._reading() as conn:
            if stream.name == "rollup_daily":
                return dicts(conn.execute(CHANGED_DAYS, _changed(conn, position, limit=limit)))
            if stream.name == "rollup_monthly":
                # Each changed month alone: the view computes one month through its index.
                keys = conn.execute(CHANGED_MONTHS, _changed(conn, position)).fetchall()
                rows = [r for k in keys for r in dicts(conn.execute(MONTH_ROW, k)) if r["version"] > position]
                return sorted(rows, key=lambda r: r["version"])[:limit]
            return dicts(conn.execute(
                f"SELECT * FROM {stream.name} WHERE {stream.key} > ? ORDER BY {stream.key} LIMIT ?",
                (position, limit)))

    # -- what reconciliation reads (replicator/reconcile.py) ---------------------------

    def held(self, stream: Stream) -> tuple[int | None, int | None, bool, int | None]:
        """A sample stream's (oldest and newest times held, whether rows were deleted before the oldest,
        time of the first row above the watermark or None): which hours the cloud should have whole."""
        with self._reading() as conn:
            mark = conn.execute("SELECT position FROM replication_watermarks WHERE stream = ?",
                                (stream.name,)).fetchone()
            oldest = conn.execute(f"SELECT min(ts_ms), min(id), max(ts_ms) FROM {stream.name}").fetchone()
            first = conn.execute(FIRST_ABOVE.format(t=stream.name), (mark[0] if mark else 0,)).fetchone()
        return oldest[0], oldest[2], (oldest[1] or 1) > 1, None if first is None else first[0]

    def hourly(self, stream: Stream, summed: tuple[str, ...], start_ms: int, end_ms: int) -> dict[tuple[str, int], tuple]:
        """Per (device, UTC hour start), the rows then `total(c)` of each summed column, over the rows of a
        sample stream in [start_ms, end_ms) (one range scan of its time index)."""
        what = ", ".join(["count(*)"] + [f"total({c})" for c in summed])
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT device, ts_ms / 3600000 * 3600000 AS hour, {what} FROM {stream.name} "
                "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY device, hour", (start_ms, end_ms)).fetchall()
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}

    def rows_between(self, stream: Stream, device: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The rows of one device of a stream whose time is in [start_ms, end_ms), in time order."""
        with self._reading() as conn:
            return dicts(conn.execute(
                f"SELECT * FROM {stream.name} WHERE device = ? AND {stream.time} >= ? AND {stream.time} < ? "
                f"ORDER BY {stream.time}", (device, start_ms, end_ms)))

    def settled_statistics(self, stream: Stream, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Statistics rows (daily or monthly) starting in [start_ms, end_ms) that the cloud acknowledged
        as they are now (version at most the watermark): the ones it must hold with these values."""
        with self._reading() as conn:
            mark = conn.execute("SELECT position FROM replication_watermarks WHERE stream = ?",
                                (stream.name,)).fetchone()
            return dicts(conn.execute(
                f"SELECT * FROM {stream.name} WHERE start_ms >= ? AND start_ms < ? AND version <= ? "
                "ORDER BY start_ms, device", (start_ms, end_ms, mark[0] if mark else 0)))

    def state(self) -> dict[str, Any]:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {', '.join(_STATE_COLUMNS)} FROM replication_state WHERE id = 1").fetchone()
        return dict(zip(_STATE_COLUMNS, row)) if row else dict.fromkeys(_STATE_COLUMNS)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters, newest first."""
        with self._reading() as conn:
            return dicts(conn.execute(
                "SELECT id, ts_ms, stream, row_key, status, message, line FROM replication_dead_letters "
                "ORDER BY id DESC LIMIT ?", (limit,)))

    def oldest_unsent_ms(self) -> int | None:
        """The time of the oldest row of a sample stream above its watermark (None: all sent), alone:
        what the collector's replication-backlog alert watches, without the rest of `summary`."""
        with self._reading() as conn:
            return _oldest_unsent(conn, dict(conn.execute("SELECT stream, position FROM replication_watermarks")))

    def summary(self, now: int | None = None) -> dict[str, Any]:
        """Backlog rows, age of the oldest unsent sample, last success and error, counters.

        Never a count over a table (issue 17): a sample stream's backlog is a difference of ids
        (`store.rows_above`), its oldest unsent sample the first row above the watermark; a
        rollup stream's, the day rows changed since its watermark (`CHANGED_DAYS`)."""
        now = now_ms() if now is None else now
        backlog: dict[str, int] = {}
        with self._reading() as conn:
            marks = dict(conn.execute("SELECT stream, position FROM replication_watermarks").fetchall())
            for s in STREAMS:
                mark = marks.get(s.name, 0)
                if not s.samples:
                    daily = s.name == "rollup_daily"
                    if mark == 0:
                        backlog[s.name] = conn.execute(ALL_DAY_COUNT if daily else ALL_MONTH_COUNT).fetchone()[0]
                    else:
                        sql = CHANGED_DAY_COUNT if daily else CHANGED_MONTH_COUNT
                        backlog[s.name] = conn.execute(sql, _changed(conn, mark)).fetchone()[0]
                    continue
                backlog[s.name] = rows_above(conn, s.name, mark)
            oldest = _oldest_unsent(conn, marks)
            counters = dict(conn.execute(
                "SELECT name, value FROM counters WHERE name IN (?, ?, ?, ?, ?)",
                (POINTS_SENT, BYTES_SENT, DEAD_LETTERS, SKIPPED_OLD, DROPPED_UNSENT)).fetchall())
            state = self.state()  # in the same snapshot
        return {
            "backlog_rows": sum(backlog.values()),
            "backlog_by_stream": backlog,
            "oldest_unsent_ms": oldest,
            "oldest_unsent_age_s": None if oldest is None else max(0, (now - oldest) // 1000),
            **{k: state[k] for k in ("last_success_ms", "last_error_ms", "last_error", "last_status",
                                     "blocked", "blocked_ms")},
            "points_sent": counters.get(POINTS_SENT, 0),
            "bytes_sent": counters.get(BYTES_SENT, 0),
            "dead_letters": counters.get(DEAD_LETTERS, 0),
            "skipped_old": counters.get(SKIPPED_OLD, 0),
            "dropped_rows": counters.get(DROPPED_UNSENT, 0),
        }

    # -- writing (the replicator only) ------------------------------------------------

    def commit(self, stream: Stream, position: int, *, points: int, bytes_sent: int,
               dead: Iterable[tuple[int, int, str, str]] = (), skipped: int = 0, ts_ms: int | None = None) -> None:
        """After a 2xx: move the watermark (never back), store dead letters (row_key, status, message, line),
        count, and note the success; all in one transaction."""
        ts_ms = now_ms() if ts_ms is None else ts_ms
        dead = list(dead)
        with self.db.writing(f"could not record the replication of {stream.name}") as conn:
            conn.execute(
                "INSERT INTO replication_watermarks (stream, position, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(stream) DO UPDATE SET position = max(position, excluded.position), "
                "updated_ms = excluded.updated_ms", (stream.name, position, ts_ms))
            if dead:
                conn.executemany(
                    "INSERT INTO replication_dead_letters (ts_ms, stream, row_key, status, message, line) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(ts_ms, stream.name, key, status, message[:2000], line) for key, status, message, line in dead])
                conn.execute(
                    "DELETE FROM replication_dead_letters WHERE id <= "
                    "(SELECT max(id) FROM replication_dead_letters) - ?", (DEAD_LETTERS_KEPT,))
            for name, by in ((POINTS_SENT, points), (BYTES_SENT, bytes_sent), (DEAD_LETTERS, len(dead)),
                             (SKIPPED_OLD, skipped)):
                if by:
                    _bump(conn, name, by, ts_ms)
            self._set_state(conn, ts_ms, last_attempt_ms=ts_ms, last_success_ms=ts_ms,
                            blocked=None, blocked_credentials=None, blocked_ms=None)

    def record_failure(self, status: int | None, message: str, *, blocked: str | None = None,
                       credentials: str | None = None, ts_ms: int | None = None) -> None:
        """A batch was not acknowledged; with `blocked`, sending stops until the credentials change."""
        ts_ms = now_ms() if ts_ms is None else ts_ms
        values = dict(last_attempt_ms=ts_ms, last_error_ms=ts_ms, last_error=message[:2000], last_status=status)
        if blocked:
            values.update(blocked=blocked, blocked_credentials=credentials, blocked_ms=ts_ms)
        with self.db.writing("could not record a replication error") as conn:
            self._set_state(conn, ts_ms, **values)

    def clear_block(self) -> None:
        """The credentials changed: sending may start again."""
        with self.db.writing("could not record the replication state") as conn:
            self._set_state(conn, now_ms(), blocked=None, blocked_credentials=None, blocked_ms=None)

    @staticmethod
    def _set_state(conn, ts_ms: int, **values) -> None:
        cols = list(values)
        conn.execute(
            f"INSERT INTO replication_state (id, {', '.join(cols)}, updated_ms) "
            f"VALUES (1, {', '.join('?' for _ in cols)}, ?) ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in cols) + ", updated_ms = excluded.updated_ms",
            (*values.values(), ts_ms))

    def close(self) -> None:
        """Close the connections (of a Database this outbox opened; a shared one stays open)."""
        if self._owned:
            self.db.close()


def _bump(conn: sqlite3.Connection, name: str, by: int, ts_ms: int) -> None:
    conn.execute(BUMP_COUNTER, (name, by, ts_ms))
