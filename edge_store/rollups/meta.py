"""What the rollups record about themselves: rollup_meta (their zone, how far samples were pruned)
and the version stamps of rollup_daily that tell the collector another writer changed a row."""

from __future__ import annotations

import sqlite3

from . import sql

META_TIMEZONE = "timezone"
# The timezone value once a writer of another zone met the rollups: the next start rebuilds.
MIXED = "mixed:"
META_PRUNED = "samples_pruned_before_ms"


def read_meta(db: sqlite3.Connection, key: str) -> str | None:
    """A rollup_meta value, or None."""
    row = db.execute(sql.READ_META, {"key": key}).fetchone()
    return row[0] if row else None


def write_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    """Set a rollup_meta value."""
    db.execute(sql.WRITE_META, {"key": key, "value": value})


def record_prune(db: sqlite3.Connection, before_ms: int) -> None:
    """Remember that raw samples before `before_ms` may be gone (a rebuild stops there)."""
    db.execute(sql.RAISE_META, {"key": META_PRUNED, "value": str(int(before_ms))})


def max_version(db: sqlite3.Connection) -> int:
    """The largest version in rollup_daily (0 when empty)."""
    return db.execute(sql.MAX_VERSION).fetchone()[0]


def restamp_open_rows(db: sqlite3.Connection, top: int) -> None:
    """Give the open rows versions above `top` (the largest version in the table): how a writer
    other than the collector tells it to re-read.

    The collector numbers its changes itself and guards each hot-path update with the
    version it last gave the open row. Any other writer of rollup rows (a rebuild) calls
    this in each of its transactions, so the collector re-reads the largest version.
    """
    version = top
    for (rowid,) in db.execute(sql.OPEN_ROWIDS).fetchall():
        version += 1
        db.execute(sql.SET_VERSION, {"version": version, "rowid": rowid})
