"""Rollups: statistics per local day and month, and one-minute buckets, kept as samples arrive.

`Rollups.on_sample()` runs inside the transaction that stores a sample, so a
statistic is never older than the newest sample. Each live sample adds:
- its values to the min/max, count and first/last time of its day and month,
  and to the sum/min/max/count of its UTC minute;
- the trapezoid between it and its neighbour samples to the energy (pv_power,
  load_power), charge/discharge (battery_current by sign, split at the zero
  crossing) and covered time of the periods the interval spans, split at
  period boundaries by time (the interpolated value at the boundary).
An interval longer than `max_gap_s` adds nothing: no energy is invented
across an outage. A late sample replaces the prev→next trapezoid with
prev→new and new→next. Samples are ordered by (ts_ms, id), as the rebuild
(edge_store/rebuild.py) reads them, so both give the same rows.

Days are local days of the site's zone, as UTC spans [start_ms, end_ms):
23 h and 25 h on DST days. Rows carry their local date as text for display.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from .errors import StoreError
from .registers import LIVE, STATS
from .schema import MINUTE_METRICS

MINUTE_MS = 60_000
_SAMPLE = itemgetter("battery_voltage", "pv_voltage", "state_of_charge", "battery_temperature")
_MINUTE_VALUES = itemgetter(*MINUTE_METRICS)
# W·ms → kWh and A·ms → Ah, with the trapezoid's halving folded in.
_KWH_HALF = 2 * 3_600_000 * 1000.0
_AH_HALF = 2 * 3_600_000.0

META_TIMEZONE = "timezone"
META_PRUNED = "samples_pruned_before_ms"


@dataclass(frozen=True)
class RollupSettings:
    """What the rollups need: the site's IANA zone and the longest gap that is still integrated."""

    timezone: str
    max_gap_s: float

    @property
    def max_gap_ms(self) -> int:
        return int(round(self.max_gap_s * 1000))


# -- periods -------------------------------------------------------------------

class Periods:
    """Local days and months of one zone as UTC millisecond spans (cached)."""

    def __init__(self, timezone: str):
        self.tz = ZoneInfo(timezone)
        self.current = ("", 0, 0)  # the last day asked for: (key, start_ms, end_ms)
        self._days: dict[date, int] = {}
        self._months: dict[str, tuple[int, int]] = {}

    def start_of(self, d: date) -> int:
        """UTC ms of local midnight opening day `d`.

        Midnight can fall in a DST gap or repeat (zones that switch at 00:00):
        the later candidate keeps every day one contiguous span.
        """
        ms = self._days.get(d)
        if ms is None:
            t0 = datetime(d.year, d.month, d.day, tzinfo=self.tz, fold=0).timestamp()
            t1 = datetime(d.year, d.month, d.day, tzinfo=self.tz, fold=1).timestamp()
            ms = self._days[d] = round(max(t0, t1) * 1000)
            if len(self._days) > 4096:  # a rebuild of years: keep the cache small
                self._days.clear()
        return ms

    def day(self, ts_ms: int) -> tuple[str, int, int]:
        """(YYYY-MM-DD, start_ms, end_ms) of the local day holding `ts_ms`."""
        key, start, end = self.current
        if start <= ts_ms < end:
            return self.current
        d = datetime.fromtimestamp(ts_ms / 1000, self.tz).date()
        start = self.start_of(d)
        if ts_ms < start:  # inside an hour repeated before a 00:00 switch
            d -= timedelta(days=1)
            start = self.start_of(d)
        end = self.start_of(d + timedelta(days=1))
        self.current = (d.isoformat(), start, end)
        return self.current

    def day_bounds(self, d: date) -> tuple[int, int]:
        """(start_ms, end_ms) of local day `d`."""
        return self.start_of(d), self.start_of(d + timedelta(days=1))

    def month(self, key: str) -> tuple[int, int]:
        """(start_ms, end_ms) of local month `key` (YYYY-MM)."""
        bounds = self._months.get(key)
        if bounds is None:
            y, m = int(key[:4]), int(key[5:7])
            nxt = date(y + m // 12, m % 12 + 1, 1)
            bounds = self._months[key] = (self.start_of(date(y, m, 1)), self.start_of(nxt))
        return bounds


# -- integration -----------------------------------------------------------------
# A point is (ts_ms, pv_power, load_power, battery_current).

def _at(a: tuple, b: tuple, x: int, i: int) -> float:
    if x == a[0]:
        return a[i]
    if x == b[0]:
        return b[i]
    return a[i] + (b[i] - a[i]) * (x - a[0]) / (b[0] - a[0])


def piece(a: tuple, b: tuple, x: int, y: int) -> tuple[float, float, float, float]:
    """(generated kWh, consumed kWh, charge Ah, discharge Ah) of the a→b trapezoid over [x, y]."""
    w = y - x
    gen = w * (_at(a, b, x, 1) + _at(a, b, y, 1)) / _KWH_HALF
    cons = w * (_at(a, b, x, 2) + _at(a, b, y, 2)) / _KWH_HALF
    c0, c1 = _at(a, b, x, 3), _at(a, b, y, 3)
    if c0 >= 0 and c1 >= 0:
        return gen, cons, w * (c0 + c1) / _AH_HALF, 0.0
    if c0 <= 0 and c1 <= 0:
        return gen, cons, 0.0, -w * (c0 + c1) / _AH_HALF
    # Opposite signs: two triangles meeting where the current crosses zero.
    w0 = w * abs(c0) / (abs(c0) + abs(c1))
    first, second = w0 * abs(c0) / _AH_HALF, (w - w0) * abs(c1) / _AH_HALF
    return (gen, cons, first, second) if c0 > 0 else (gen, cons, second, first)


def piece_whole(a: tuple, b: tuple) -> tuple[float, float, float, float]:
    """`piece(a, b, a[0], b[0])` without the interpolation: the same floats, faster."""
    w = b[0] - a[0]
    c0, c1 = a[3], b[3]
    if c0 >= 0 and c1 >= 0:
        chg, dis = w * (c0 + c1) / _AH_HALF, 0.0
    elif c0 <= 0 and c1 <= 0:
        chg, dis = 0.0, -w * (c0 + c1) / _AH_HALF
    else:
        return piece(a, b, a[0], b[0])
    return w * (a[1] + b[1]) / _KWH_HALF, w * (a[2] + b[2]) / _KWH_HALF, chg, dis


def _add_interval(periods: Periods, acc: dict, a: tuple, b: tuple, sign: float, max_gap_ms: int) -> None:
    # acc: day key -> [start, end, gen, cons, charge, discharge, covered_ms]
    if not 0 < b[0] - a[0] <= max_gap_ms:
        return
    x = a[0]
    while x < b[0]:
        key, start, end = periods.day(x)
        y = b[0] if b[0] <= end else end
        gen, cons, chg, dis = piece(a, b, x, y)
        row = acc.get(key)
        if row is None:
            row = acc[key] = [start, end, 0.0, 0.0, 0.0, 0.0, 0]
        row[2] += sign * gen
        row[3] += sign * cons
        row[4] += sign * chg
        row[5] += sign * dis
        row[6] += int(sign) * (y - x)
        x = y


# -- SQL ---------------------------------------------------------------------------

def _least(col: str) -> str:
    # SQLite's two-argument min() is NULL if either side is: the other side wins then.
    return f"{col} = min(coalesce({col}, excluded.{col}), coalesce(excluded.{col}, {col}))"


def _greatest(col: str) -> str:
    return f"{col} = max(coalesce({col}, excluded.{col}), coalesce(excluded.{col}, {col}))"


def _period_upsert(table: str, key: str) -> str:
    """Add deltas to a period row (?1 device ... ?19 device stats time); see `Rollups._write`."""
    newer = "excluded.device_stats_ts_ms >= coalesce(device_stats_ts_ms, excluded.device_stats_ts_ms)"
    return (
        f"INSERT INTO {table} (device, {key}, timezone, start_ms, end_ms, "
        "battery_voltage_min, battery_voltage_max, pv_voltage_min, pv_voltage_max, soc_min, soc_max, "
        "battery_temperature_min, battery_temperature_max, energy_generated_kwh, energy_consumed_kwh, "
        "battery_charge_ah, battery_discharge_ah, samples, first_ts_ms, last_ts_ms, covered_ms, "
        "device_generated_kwh, device_consumed_kwh, device_stats_ts_ms, version) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7, ?8, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, "
        f"?17, ?18, ?19, (SELECT coalesce(max(version), 0) + 1 FROM {table})) "
        f"ON CONFLICT (device, {key}) DO UPDATE SET "
        + ", ".join([
            _least("battery_voltage_min"), _greatest("battery_voltage_max"),
            _least("pv_voltage_min"), _greatest("pv_voltage_max"),
            _least("soc_min"), _greatest("soc_max"),
            _least("battery_temperature_min"), _greatest("battery_temperature_max"),
            "energy_generated_kwh = energy_generated_kwh + excluded.energy_generated_kwh",
            "energy_consumed_kwh = energy_consumed_kwh + excluded.energy_consumed_kwh",
            "battery_charge_ah = battery_charge_ah + excluded.battery_charge_ah",
            "battery_discharge_ah = battery_discharge_ah + excluded.battery_discharge_ah",
            "samples = samples + excluded.samples",
            _least("first_ts_ms"), _greatest("last_ts_ms"),
            "covered_ms = covered_ms + excluded.covered_ms",
            # The device's own figures: the latest device_statistics row of the period wins.
            f"device_generated_kwh = CASE WHEN {newer} THEN excluded.device_generated_kwh ELSE device_generated_kwh END",
            f"device_consumed_kwh = CASE WHEN {newer} THEN excluded.device_consumed_kwh ELSE device_consumed_kwh END",
            f"device_stats_ts_ms = CASE WHEN {newer} THEN excluded.device_stats_ts_ms ELSE device_stats_ts_ms END",
            f"version = (SELECT max(version) + 1 FROM {table})",
        ])
    )


DAILY_UPSERT = _period_upsert("rollup_daily", "day")
MONTHLY_UPSERT = _period_upsert("rollup_monthly", "month")

MINUTE_UPSERT = (
    "INSERT INTO rollup_minute (device, minute_ms, samples, "
    + ", ".join(f"{m}_sum, {m}_min, {m}_max" for m in MINUTE_METRICS)
    + ") VALUES (?1, ?2, 1, "
    + ", ".join(f"?{i}, ?{i}, ?{i}" for i in range(3, 3 + len(MINUTE_METRICS)))
    + ") ON CONFLICT (device, minute_ms) DO UPDATE SET samples = samples + 1, "
    + ", ".join(f"{m}_sum = {m}_sum + excluded.{m}_sum, {m}_min = min({m}_min, excluded.{m}_min), "
                f"{m}_max = max({m}_max, excluded.{m}_max)" for m in MINUTE_METRICS)
)

_NEIGHBOURS = (
    # Samples are ordered by (ts_ms, id) and the new row has the largest id: everything
    # at the same time came before it.
    "SELECT ts_ms, pv_power, load_power, battery_current FROM live_samples "
    "WHERE device = ? AND ts_ms <= ? AND id <> ? ORDER BY ts_ms DESC, id DESC LIMIT 1",
    "SELECT ts_ms, pv_power, load_power, battery_current FROM live_samples "
    "WHERE device = ? AND ts_ms > ? ORDER BY ts_ms, id LIMIT 1",
)


def read_meta(db: sqlite3.Connection, key: str) -> str | None:
    """A rollup_meta value, or None."""
    row = db.execute("SELECT value FROM rollup_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def write_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    """Set a rollup_meta value."""
    db.execute("INSERT INTO rollup_meta (key, value) VALUES (?, ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def record_prune(conn, before_ms: int) -> None:
    """Remember that raw samples before `before_ms` may be gone (a rebuild stops there)."""
    conn.exec_driver_sql(
        "INSERT INTO rollup_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
        "DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
        (META_PRUNED, str(int(before_ms))),
    )


# -- the incremental path ------------------------------------------------------------

class Rollups:
    """Keeps the rollup tables of one writer up to date, one sample at a time.

    The newest live sample of each device is cached, so an in-order sample costs
    three or four UPSERTs and no SELECT; a late one costs two index lookups for its
    neighbours. The collector is the only writer of samples: another process
    inserting live samples of the same device would make the cache stale.
    """

    def __init__(self, settings: RollupSettings):
        self.settings = settings
        self.periods = Periods(settings.timezone)
        self.max_gap_ms = settings.max_gap_ms
        self._newest: dict[str, tuple] = {}
        self._zone_checked = False

    def reset(self) -> None:
        """Forget the cache (after a failed transaction: it may describe rows that were rolled back)."""
        self._newest.clear()
        self._zone_checked = False

    def on_sample(self, conn, group: str, row_id: int, ts_ms: int, device: str, values: Mapping[str, Any]) -> None:
        """Fold one stored sample into the rollups, in the caller's open transaction."""
        if group != LIVE and group != STATS:
            return
        db = conn.connection.driver_connection
        try:
            if not self._zone_checked:
                self._check_zone(db)
            if group == LIVE:
                self._live(db, row_id, ts_ms, device, values)
            else:
                self._stats(db, ts_ms, device, values)
        except sqlite3.Error as exc:
            self.reset()
            raise StoreError(f"could not update rollups: {exc}",
                             retryable=isinstance(exc, sqlite3.OperationalError)) from exc

    def _check_zone(self, db: sqlite3.Connection) -> None:
        built = read_meta(db, META_TIMEZONE)
        if built is None:
            write_meta(db, META_TIMEZONE, self.settings.timezone)
        elif built != self.settings.timezone:
            # Only a rebuild makes the rows of one zone: refuse to mix two (the collector
            # rebuilds at start, so this is a writer started without ensure_built).
            raise StoreError(f"the rollups were built in {built}, this writer runs in {self.settings.timezone}: "
                             "restart the collector or run `kammthaar rollups rebuild`")
        self._zone_checked = True

    def _live(self, db: sqlite3.Connection, row_id: int, ts: int, device: str, v: Mapping[str, Any]) -> None:
        new = (ts, v["pv_power"], v["load_power"], v["battery_current"])
        newest = self._newest.get(device)
        day, start, end = self.periods.current
        if newest is not None and start <= newest[0] <= ts < end:
            # The common case, kept lean: the next sample of the same day, in order.
            self._newest[device] = new
            sample = _SAMPLE(v)
            dt = ts - newest[0]
            if 0 < dt <= self.max_gap_ms:
                deltas = (*piece_whole(newest, new), 1, ts, dt)
            else:
                deltas = (0.0, 0.0, 0.0, 0.0, 1, ts, 0)
            tz = self.settings.timezone
            month = day[:7]
            ms, me = self.periods.month(month)
            db.execute(DAILY_UPSERT, (device, day, tz, start, end, *sample, *deltas, None, None, None))
            db.execute(MONTHLY_UPSERT, (device, month, tz, ms, me, *sample, *deltas, None, None, None))
            db.execute(MINUTE_UPSERT, (device, ts - ts % MINUTE_MS, *_MINUTE_VALUES(v)))
            return
        if newest is not None and ts >= newest[0]:
            prev, nxt = newest, None
        else:
            prev = db.execute(_NEIGHBOURS[0], (device, ts, row_id)).fetchone()
            nxt = db.execute(_NEIGHBOURS[1], (device, ts)).fetchone()
        if nxt is None:
            self._newest[device] = new

        periods, gap = self.periods, self.max_gap_ms
        day, start, end = periods.day(ts)
        acc: dict = {}
        if prev is not None:
            _add_interval(periods, acc, prev, new, 1.0, gap)
        if nxt is not None:
            _add_interval(periods, acc, new, nxt, 1.0, gap)
            if prev is not None:
                _add_interval(periods, acc, prev, nxt, -1.0, gap)
        sample = _SAMPLE(v)
        tz = self.settings.timezone

        # The sample's own day and month, with whatever the intervals add to them.
        own = acc.pop(day, None)
        deltas = own[2:7] if own else [0.0, 0.0, 0.0, 0.0, 0]
        db.execute(DAILY_UPSERT, (device, day, tz, start, end, *sample, *deltas[:4], 1, ts, deltas[4], None, None, None))
        month = day[:7]
        months = {month: list(deltas)}
        for key, (s, e, *d) in acc.items():
            db.execute(DAILY_UPSERT, (device, key, tz, s, e, None, None, None, None, *d[:4], 0, None, d[4], None, None, None))
            m = months.get(key[:7])
            if m is None:
                months[key[:7]] = d
            else:
                for i in range(5):
                    m[i] += d[i]
        for key, d in months.items():
            ms, me = periods.month(key)
            own_month = key == month
            db.execute(MONTHLY_UPSERT, (device, key, tz, ms, me, *(sample if own_month else (None,) * 4), *d[:4],
                                        1 if own_month else 0, ts if own_month else None, d[4], None, None, None))
        db.execute(MINUTE_UPSERT, (device, ts - ts % MINUTE_MS, *_MINUTE_VALUES(v)))

    def _stats(self, db: sqlite3.Connection, ts: int, device: str, v: Mapping[str, Any]) -> None:
        day, start, end = self.periods.day(ts)
        tz = self.settings.timezone
        db.execute(DAILY_UPSERT, (device, day, tz, start, end, None, None, None, None, 0.0, 0.0, 0.0, 0.0,
                                  0, None, 0, v["generated_today"], v["consumed_today"], ts))
        ms, me = self.periods.month(day[:7])
        db.execute(MONTHLY_UPSERT, (device, day[:7], tz, ms, me, None, None, None, None, 0.0, 0.0, 0.0, 0.0,
                                    0, None, 0, v["generated_this_month"], v["consumed_this_month"], ts))
