"""The rollups' writer: `Rollups.on_sample()` folds each stored sample into the rollup tables.

It runs inside the transaction that stores the sample (edge_store/store.py),
so a statistic is never older than the newest sample. Each live sample adds:
- its values to the min/max, count and first/last time of its day;
- the trapezoid between it and its neighbour samples (integration.py) to the
  energy, charge/discharge and covered time of the days the interval spans.
A late sample replaces the prev→next trapezoid with prev→new and new→next.
Samples are ordered by (ts_ms, id), as the rebuild (rebuild.py) reads them,
so both give the same rows.

Minute buckets: the minute of a device's newest sample is open
(`open_minute_ms` of its day row) and the `minute_buckets` view reads it from
its raw samples; when the next minute starts, its bucket is written to
rollup_minute from those samples, in that sample's transaction. A late sample
into a closed minute is added to its bucket. So the next in-order sample of a
minute updates one row and one page.
"""

from __future__ import annotations

import logging
import sqlite3
from operator import itemgetter
from typing import Any, Mapping

from ..registers import LIVE, STATS
from . import sql
from .integration import add_interval, piece_whole, point
from .meta import META_TIMEZONE, MIXED, max_version, read_meta, write_meta
from .periods import MINUTE_MS, Periods
from .rollup_settings import RollupSettings

log = logging.getLogger(__name__)

_SAMPLE = itemgetter("battery_voltage", "pv_voltage", "state_of_charge", "battery_temperature")
# The hot path binds FAST_UPDATE by position, in sql.FAST_UPDATE_ORDER: the row, its two versions,
# the six deltas, the covered ms and the sample's time, then the sample's values, taken by name.
_FAST_UPDATE = sql.FAST_UPDATE_BY_POSITION
_FAST_VALUES = itemgetter(*sql.FAST_UPDATE_ORDER[11:])
# A day row's columns that no sample or no device figure fills.
_NO_SAMPLE = {"battery_voltage": None, "pv_voltage": None, "state_of_charge": None, "battery_temperature": None,
              "ts_ms": None}
_NO_DEVICE = {"device_generated_kwh": None, "device_consumed_kwh": None, "device_stats_ts_ms": None,
              "device_month_generated_kwh": None, "device_month_consumed_kwh": None}


# -- the incremental path ------------------------------------------------------------

class _Open:
    """What the writer knows of a device's open row: where it is and the newest sample in it."""

    __slots__ = ("rowid", "end", "minute", "version", "newest")

    def __init__(self, rowid: int, end: int, minute: int, version: int, newest: tuple):
        self.rowid, self.end, self.minute, self.version, self.newest = rowid, end, minute, version, newest


class Rollups:
    """Keeps the rollup tables of one writer up to date, one sample at a time.

    The next in-order sample of a device's open day costs one UPDATE of one row,
    its day row; when it starts a new minute, the open one is written to
    rollup_minute too. Every other sample (a new day, a late one, the first after
    start) takes the general path: neighbour lookups and UPSERTs per day touched.

    The writer numbers its changes from the largest version it read; a rebuild
    re-stamps the open rows (`restamp_open_rows`), so the guarded hot-path update
    misses and the writer re-reads. The collector is the only writer of samples:
    another process inserting live samples of the same device is not seen.
    """

    def __init__(self, settings: RollupSettings):
        self.settings = settings
        self.periods = Periods(settings.timezone)
        self.max_gap_ms = settings.max_gap_ms
        self._open: dict[str, _Open] = {}
        self._version: int | None = None
        self._mixed = False  # the rollups are another zone's: logged once

    def reset(self) -> None:
        """Forget what is cached (after a failed transaction, or another writer's)."""
        self._open.clear()
        self._version = None

    def on_sample(self, db: sqlite3.Connection, group: str, row_id: int, ts_ms: int, device: str,
                  values: Mapping[str, Any]) -> None:
        """Fold one stored sample into the rollups, in the transaction open on `db` that stored it.

        On any exception the caller rolls the transaction back and calls `reset()`.
        """
        if group == LIVE:
            o = self._open.get(device)
            if o is not None and o.newest[0] <= ts_ms < o.end:
                minute = o.minute
                if self._fast(db, o, ts_ms, values):
                    if ts_ms - ts_ms % MINUTE_MS != minute:  # the next minute of the day: close this one
                        db.execute(sql.CLOSE_MINUTE, {"device": device, "minute_ms": minute})
                        o.minute = ts_ms - ts_ms % MINUTE_MS
                        db.execute(sql.SET_OPEN_MINUTE, {"minute_ms": o.minute, "rowid": o.rowid})
                    return
                self.reset()  # another writer changed the row: re-read everything
            self._live(db, row_id, ts_ms, device, values)
        elif group == STATS:
            self._stats(db, ts_ms, device, values)

    def _fast(self, db: sqlite3.Connection, o: _Open, ts: int, v: Mapping[str, Any]) -> bool:
        new = point(ts, v)
        dt = ts - o.newest[0]
        if 0 < dt <= self.max_gap_ms:
            deltas = piece_whole(o.newest, new)
        else:
            deltas = (0.0,) * 6
            dt = 0
        version = self._version + 1
        cur = db.execute(_FAST_UPDATE, (o.rowid, o.version, version, *deltas, dt, ts, *_FAST_VALUES(v)))
        if cur.rowcount != 1:
            return False
        self._version = o.version = version
        o.newest = new
        return True

    def _sync(self, db: sqlite3.Connection) -> bool:
        """Make sure the cache describes the database (re-read it after another writer); False: skip the rollups."""
        if self._version is not None:
            # Another writer re-stamps every open row, so an open row as this writer left it
            # proves nobody else wrote since. Without one there is no proof: read again.
            if not self._open:
                self.reset()
            for o in self._open.values():
                row = db.execute(sql.OPEN_ROW_STATE, {"rowid": o.rowid}).fetchone()
                if row != (o.version, o.minute):
                    self.reset()
                    break
        if self._version is None:
            if not self._check_zone(db):
                return False
            self._version = max_version(db)
        return True

    def _stamp(self) -> int:
        self._version += 1
        return self._version

    def _check_zone(self, db: sqlite3.Connection) -> bool:
        """True when the rollups are this writer's zone; else mark them for a rebuild and say so once."""
        built = read_meta(db, META_TIMEZONE)
        if built is None:
            write_meta(db, META_TIMEZONE, self.settings.timezone)
        elif built != self.settings.timezone:
            # Only a rebuild makes the rows of one zone: never mix two. The sample is kept
            # (the caller stores it regardless); the next start's ensure_built rebuilds.
            if not built.startswith(MIXED):
                write_meta(db, META_TIMEZONE, f"{MIXED} {built} rollups, a {self.settings.timezone} writer")
            if not self._mixed:
                log.error("the rollups were built in %s and this writer runs in %s: samples are kept, statistics "
                          "wait for a rebuild (restart the collector)", built, self.settings.timezone)
            self._mixed = True
            return False
        return True

    def _upsert_day(self, db: sqlite3.Connection, device: str, key: str, start: int, end: int,
                    values: dict[str, Any]) -> int:
        """DAILY_UPSERT of a day with a new version; `values` are the sample's, the deltas and the device's."""
        ms, me = self.periods.month(key[:7])
        version = self._stamp()
        rowid = db.execute(sql.DAILY_UPSERT, {
            "device": device, "day": key, "timezone": self.settings.timezone, "start_ms": start, "end_ms": end,
            "month_start_ms": ms, "month_end_ms": me, "version": version, **values}).fetchone()[0]
        o = self._open.get(device)
        if o is not None and o.rowid == rowid:
            o.version = version
        return rowid

    @staticmethod
    def _deltas(acc_row) -> dict[str, Any]:
        """The named deltas of an `add_interval` accumulator row (or none)."""
        gen, cons, chg, dis, chg_kwh, dis_kwh, covered = acc_row[2:9] if acc_row else (0.0,) * 6 + (0,)
        return {"generated_kwh": gen, "consumed_kwh": cons, "charge_ah": chg, "discharge_ah": dis,
                "charge_kwh": chg_kwh, "discharge_kwh": dis_kwh, "covered_ms": covered}

    def _live(self, db: sqlite3.Connection, row_id: int, ts: int, device: str, v: Mapping[str, Any]) -> None:
        if not self._sync(db):
            return
        new = point(ts, v)
        o = self._open.get(device)
        if o is not None and ts >= o.newest[0]:
            prev, nxt = o.newest, None
        else:
            prev = db.execute(sql.PREVIOUS_SAMPLE, {"device": device, "ts_ms": ts, "id": row_id}).fetchone()
            nxt = db.execute(sql.NEXT_SAMPLE, {"device": device, "ts_ms": ts}).fetchone()

        periods, gap = self.periods, self.max_gap_ms
        day, start, end = periods.day(ts)
        acc: dict = {}
        if prev is not None:
            add_interval(periods, acc, prev, new, 1.0, gap)
        if nxt is not None:
            add_interval(periods, acc, new, nxt, 1.0, gap)
            if prev is not None:
                add_interval(periods, acc, prev, nxt, -1.0, gap)

        # The sample's own day, with whatever the intervals add to it, then the other days.
        bv, pv, soc, temp = _SAMPLE(v)
        rowid = self._upsert_day(db, device, day, start, end, {
            "battery_voltage": bv, "pv_voltage": pv, "state_of_charge": soc, "battery_temperature": temp,
            "ts_ms": ts, "samples": 1, **self._deltas(acc.pop(day, None)), **_NO_DEVICE})
        version = self._version  # the row's own: the days after it take later ones
        for key, row in acc.items():
            self._upsert_day(db, device, key, row[0], row[1], {**_NO_SAMPLE, "samples": 0, **self._deltas(row),
                                                               **_NO_DEVICE})

        minute = ts - ts % MINUTE_MS
        if o is None:
            row = db.execute(sql.OPEN_ROW_OF_DEVICE, {"device": device}).fetchone()
            open_rowid, open_minute = row if row else (None, None)
        else:
            open_rowid, open_minute = o.rowid, o.minute
        if nxt is not None:
            # A late sample: the open minute is read from raw samples; a closed one takes it in.
            if open_minute is None or minute < open_minute:
                db.execute(sql.MINUTE_UPSERT, {**v, "device": device, "minute_ms": minute})
            return
        if open_minute != minute or open_rowid != rowid:
            # The newest sample opens its minute in its day row; the minutes before it close.
            if open_minute is not None:
                db.execute(sql.CLOSE_MINUTE, {"device": device, "minute_ms": open_minute})
                db.execute(sql.SET_OPEN_MINUTE, {"minute_ms": None, "rowid": open_rowid})
            # A minute is closed or open, never both (a rebuild closes the minutes of the days it redoes).
            db.execute(sql.DELETE_MINUTES_FROM, {"device": device, "minute_ms": minute})
            db.execute(sql.SET_OPEN_MINUTE, {"minute_ms": minute, "rowid": rowid})
        self._open[device] = _Open(rowid, end, minute, version, new)

    def _stats(self, db: sqlite3.Connection, ts: int, device: str, v: Mapping[str, Any]) -> None:
        if not self._sync(db):
            return
        day, start, end = self.periods.day(ts)
        self._upsert_day(db, device, day, start, end, {
            **_NO_SAMPLE, "samples": 0, **self._deltas(None),
            "device_generated_kwh": v["generated_today"], "device_consumed_kwh": v["consumed_today"],
            "device_stats_ts_ms": ts, "device_month_generated_kwh": v["generated_this_month"],
            "device_month_consumed_kwh": v["consumed_this_month"]})
