"""Reading the rollups back from a store file, as the rollup tests compare them."""

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_store.registers import LIVE
from tests.samples import LIVE_VALUES

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
HOUR = 3_600_000

def local_ms(tz, *args):
    """UTC ms of a local wall time (the first one when it repeats)."""
    return round(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def live(**values):
    return {**LIVE_VALUES, **values}


def rows(db_path, table, key):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return {(r["device"], r[key]): dict(r) for r in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.close()


def daily(db_path):
    """Day rows without the open minute: it is in minutes(), and a rebuild closes it."""
    return {k: {c: v for c, v in r.items() if not c.startswith("open_")}
            for k, r in rows(db_path, "rollup_daily", "day").items()}


def monthly(db_path):
    return rows(db_path, "rollup_monthly", "month")


def minutes(db_path):
    """Every minute bucket, the open minutes included; a minute is open or closed, never both."""
    conn = sqlite3.connect(db_path)
    try:
        (duplicates,) = conn.execute("SELECT count(*) - count(DISTINCT device || ' ' || minute_ms) "
                                     "FROM minute_buckets").fetchone()
    finally:
        conn.close()
    assert duplicates == 0
    return rows(db_path, "minute_buckets", "minute_ms")

def feed(store, start_ms, end_ms, step_ms, device="epever", **values):
    """Live samples every step_ms from start_ms to end_ms inclusive, constant values."""
    t = start_ms
    while t <= end_ms:
        store.insert_sample(LIVE, t, True, device, live(**values))
        t += step_ms


def without_battery_kwh(by_key):
    """Rollup rows without migration 0015's columns: what a downgrade below it keeps."""
    return {k: {c: v for c, v in r.items() if c not in ("battery_charge_kwh", "battery_discharge_kwh")}
            for k, r in by_key.items()}
