"""Figures of the Pi's own health that the replicator's heartbeat sends (replicator/heartbeat.py):
per device, the newest live sample and its errors; the database's size and the free disk."""

from __future__ import annotations

import os

from .db import Database

NEWEST_LIVE = "SELECT max(ts_ms) FROM live_samples WHERE device = ?"  # ix_live_samples_device_ts
DEVICE_ERRORS = "SELECT count(*) FROM collector_errors WHERE device = ?"


def device_figures(db: Database, device: str) -> tuple[int | None, int]:
    """(time of the device's newest live sample or None, its read errors still stored), one snapshot."""
    with db.reading(f"could not read the health of device {device}") as conn:
        newest = conn.execute(NEWEST_LIVE, (device,)).fetchone()[0]
        errors = conn.execute(DEVICE_ERRORS, (device,)).fetchone()[0]
    return newest, errors


def free_bytes(path: str) -> int:
    """Bytes free for the database at `path` on its filesystem (what an unprivileged writer may use);
    OSError when it cannot be measured. The collector's floor, its alert, status and the heartbeat read it."""
    st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    return st.f_bavail * st.f_frsize


def database_bytes(path: str) -> int:
    """Bytes of the database file and its WAL (OSError when they cannot be measured)."""
    return sum(os.path.getsize(path + ext) for ext in ("", "-wal") if os.path.exists(path + ext))


def disk_figures(path: str) -> tuple[int, int]:
    """(bytes of the database file and its WAL, bytes free for it on its filesystem)."""
    return database_bytes(path), free_bytes(path)
