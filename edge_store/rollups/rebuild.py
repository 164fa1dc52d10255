"""Recompute the rollups from raw samples: `kammthaar rollups rebuild`, and after a zone change.

A day is recomputed from the samples around it with the same arithmetic as the
incremental path (writer.py), so both give the same rows; months are a view
over days. Each day is its own short transaction, so a running collector only
waits for one day at a time, and its samples land either before a day is read
or on top of the recomputed row. A recomputed day's minute buckets all go to
rollup_minute (its open minute is closed), and every transaction re-stamps the
open rows so the collector re-reads what changed.

Statistics outlive raw samples: a day whose samples may have been pruned
(`Store.prune` records how far) is left as it is, and rows are never deleted;
a row that no longer has anything behind it is written back empty with a new
version, so replication carries the change.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..errors import StoreError
from . import sql
from .integration import piece
from .meta import META_PRUNED, META_TIMEZONE, max_version, read_meta, restamp_open_rows, write_meta
from .periods import MINUTE_MS, Periods
from .rollup_settings import RollupSettings

# The computed columns of a day row, after the period's own three (timezone, start_ms, end_ms).
_COMPUTED = sql.PERIOD_COLUMNS[3:-2]


@dataclass
class RebuildResult:
    """What a rebuild did."""

    days: int = 0
    months: int = 0
    skipped_days: list[str] = field(default_factory=list)  # samples pruned: left as they were
    timezone: str = ""


def _parse_day(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise StoreError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _day_of(periods: Periods, ts_ms: int | None) -> date | None:
    return None if ts_ms is None else date.fromisoformat(periods.day(ts_ms)[0])


def compute_day(db: sqlite3.Connection, device: str, start: int, end: int, max_gap_ms: int) -> tuple | None:
    """The statistic columns of one device over [start, end) from raw samples, or None when empty."""
    rows = db.execute(sql.DAY_SAMPLES, {"device": device, "start_ms": start - max_gap_ms,
                                        "end_ms": end + max_gap_ms}).fetchall()
    mins: list[Any] = [None] * 4
    maxs: list[Any] = [None] * 4
    sums = [0.0] * 6  # generated, consumed, charge Ah, discharge Ah, charge kWh, discharge kWh
    samples = covered = 0
    first = last = None
    prev = None
    for row in rows:
        t = row[0]
        if start <= t < end:
            samples += 1
            first = t if first is None else first
            last = t
            for i in range(4):
                v = row[5 + i]
                mins[i] = v if mins[i] is None or v < mins[i] else mins[i]
                maxs[i] = v if maxs[i] is None or v > maxs[i] else maxs[i]
        if prev is not None and 0 < t - prev[0] <= max_gap_ms:
            x, y = max(prev[0], start), min(t, end)
            if x < y:
                for i, v in enumerate(piece(prev, row, x, y)):
                    sums[i] += v
                covered += y - x
        prev = row
    stats = db.execute(sql.LAST_STATS, {"device": device, "start_ms": start, "end_ms": end}).fetchone()
    if not samples and not covered and stats is None:
        return None
    return (mins[0], maxs[0], mins[1], maxs[1], mins[2], maxs[2], mins[3], maxs[3], *sums,
            samples, first, last, covered, *(stats or (None,) * 5))


def _empty_row() -> tuple:
    return (None,) * 8 + (0.0,) * 6 + (0, None, None, 0) + (None,) * 5


def rebuild(store, settings: RollupSettings, *, from_day: str | date | None = None,
            to_day: str | date | None = None, progress: bool = False) -> RebuildResult:
    """Recompute daily rows (and so the monthly view) and minute buckets from raw samples.

    Without bounds: every day with samples or rows, in `settings.timezone`, which
    is then recorded as the zone the rollups are built in. With bounds (local
    dates, inclusive): only those days and the months holding them; the zone
    must then be the one the rollups were built in.
    """
    from tqdm import tqdm

    first_day, last_day = _parse_day(from_day), _parse_day(to_day)
    periods = Periods(settings.timezone)
    gap = settings.max_gap_ms
    result = RebuildResult(timezone=settings.timezone)
    database = store.db
    with database.reading("could not plan the rollup rebuild") as db:
        built = read_meta(db, META_TIMEZONE)
        if (first_day or last_day) and built not in (None, settings.timezone):
            raise StoreError(f"the rollups were built in {built}: a rebuild in {settings.timezone} "
                             "must cover every day (drop --from/--to)")
        pruned = read_meta(db, META_PRUNED)
        pruned_before = int(pruned) if pruned is not None else None
        plan = _plan(db, periods, first_day, last_day)

    total = sum((stop - start).days + 1 for _, start, stop, _ in plan)
    with tqdm(total=total, unit="day", disable=not progress, desc="rollups") as bar:
        for device, start, stop, existing in plan:
            months: set[str] = set()
            d = start
            while d <= stop:
                _rebuild_day(database, device, d, periods, gap, pruned_before, existing, months, result)
                d += timedelta(days=1)
                bar.update(1)
            result.months += len(months)
    if not (first_day or last_day):
        with database.writing("could not record the rollups' zone") as db:
            write_meta(db, META_TIMEZONE, settings.timezone)
            # A writer that read the old zone since the last day's transaction must read again.
            restamp_open_rows(db, max_version(db))
    # A writer in this process must not keep integrating on a stale picture of the zone.
    if store.rollups is not None:
        store.rollups.reset()
    return result


def _plan(db: sqlite3.Connection, periods: Periods, first_day: date | None,
          last_day: date | None) -> list[tuple[str, date, date, set[str]]]:
    """Per device, the days to recompute (first, last) and the days it has rows for."""
    plan = []
    for (device,) in db.execute(sql.DEVICES).fetchall():
        key = {"device": device}
        lo = [d for d in (_day_of(periods, db.execute(sql.FIRST_TS[t], key).fetchone()[0]) for t in sql.FIRST_TS) if d]
        hi = [d for d in (_day_of(periods, db.execute(sql.LAST_TS[t], key).fetchone()[0]) for t in sql.LAST_TS) if d]
        existing = {r[0] for r in db.execute(sql.DAYS_OF_DEVICE, key)}
        if existing:
            lo.append(date.fromisoformat(min(existing)))
            hi.append(date.fromisoformat(max(existing)))
        start = max(first_day, min(lo)) if first_day else min(lo)
        stop = min(last_day, max(hi)) if last_day else max(hi)
        if start <= stop:
            plan.append((device, start, stop, existing))
    return plan


def _rebuild_day(database, device, d, periods, gap, pruned_before, existing, months, result) -> None:
    key = d.isoformat()
    start, end = periods.day_bounds(d)
    # Intervals reaching into the day start up to one gap before it.
    if pruned_before is not None and start - gap < pruned_before:
        if key in existing:
            result.skipped_days.append(key)
        return
    with database.writing(f"could not rebuild the rollups of {key}") as db:
        row = compute_day(db, device, start, end, gap)
        top = max_version(db)  # read again in each transaction: the collector may have written since
        if row is None and key not in existing:
            pass
        else:
            top += 1
            ms, me = periods.month(key[:7])
            db.execute(sql.DAILY_REPLACE, {
                "device": device, "day": key, "timezone": periods.tz.key, "start_ms": start, "end_ms": end,
                **dict(zip(_COMPUTED, row or _empty_row())), "month_start_ms": ms, "month_end_ms": me,
                "version": top})
            months.add(key[:7])
            result.days += 1
        # Minute buckets of the day's whole minutes (local midnight is on a minute everywhere today).
        minutes = {"device": device, "start_ms": start - start % MINUTE_MS, "end_ms": end - end % MINUTE_MS}
        db.execute(sql.DELETE_MINUTES_BETWEEN, minutes)
        db.execute(sql.MINUTES_FROM_SAMPLES, minutes)
        restamp_open_rows(db, top)


def ensure_built(store, settings: RollupSettings, *, progress: bool = False) -> RebuildResult | None:
    """Rebuild everything when the rollups were built in another zone, or never; else None.

    The collector calls this at start, before its first sample.
    """
    with store.db.writing("could not check the rollups' zone") as db:
        built = read_meta(db, META_TIMEZONE)
        if built == settings.timezone:
            return None
        if built is None and not any(db.execute(q).fetchone() for q in sql.ANY_ROW.values()):
            write_meta(db, META_TIMEZONE, settings.timezone)
            return None
    return rebuild(store, settings, progress=progress)
