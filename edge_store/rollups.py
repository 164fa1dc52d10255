"""Rollups: statistics per local day (months are a view over days) and one-minute buckets.

`Rollups.on_sample()` runs inside the transaction that stores a sample, so a
statistic is never older than the newest sample. Each live sample adds:
- its values to the min/max, count and first/last time of its day;
- the trapezoid between it and its neighbour samples to the energy (pv_power,
  load_power), charge/discharge (battery_current by sign, split at the zero
  crossing) and covered time of the days the interval spans, split at day
  boundaries by time (the interpolated value at the boundary).
An interval longer than `max_gap_s` adds nothing: no energy is invented
across an outage. A late sample replaces the prev→next trapezoid with
prev→new and new→next. Samples are ordered by (ts_ms, id), as the rebuild
(edge_store/rebuild.py) reads them, so both give the same rows. The
`rollup_monthly` view sums the days of each month.

Minute buckets: the minute of a device's newest sample is open
(`open_minute_ms` of its day row) and the `minute_buckets` view reads it from
its raw samples; when the next minute starts, its bucket is written to
rollup_minute from those samples, in that sample's transaction. A late sample
into a closed minute is added to its bucket. So the next in-order sample of a
minute updates one row and one page.

Days are local days of the site's zone, as UTC spans [start_ms, end_ms):
23 h and 25 h on DST days. Rows carry their local date as text for display.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from .errors import StoreError
from .registers import LIVE, STATS
from .schema import MINUTE_METRICS

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
_SAMPLE = itemgetter("battery_voltage", "pv_voltage", "state_of_charge", "battery_temperature")
_MINUTE_VALUES = itemgetter(*MINUTE_METRICS)
# W·ms → kWh and A·ms → Ah, with the trapezoid's halving folded in.
_KWH_HALF = 2 * 3_600_000 * 1000.0
_AH_HALF = 2 * 3_600_000.0

META_TIMEZONE = "timezone"
# The timezone value once a writer of another zone met the rollups: the next start rebuilds.
MIXED = "mixed:"
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


def _newer(col: str) -> str:
    # The device's own figures: the latest device_statistics row of the day wins.
    newer = "excluded.device_stats_ts_ms >= coalesce(device_stats_ts_ms, excluded.device_stats_ts_ms)"
    return f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {col} END"


# Add deltas to a day row: ?1 device, ?2 day, ?3 zone, ?4 start, ?5 end, ?6-?9 the sample's
# battery_voltage, pv_voltage, state_of_charge, battery_temperature (or NULLs), ?10-?13 energy
# generated and consumed, charge and discharge, ?14 samples, ?15 sample time, ?16 covered ms,
# ?17-?19 the device's figures of the day and their time, ?20 version, ?21-?22 the month's
# bounds, ?23-?24 the device's figures of the month.
DAILY_UPSERT = (
    "INSERT INTO rollup_daily (device, day, timezone, start_ms, end_ms, "
    "battery_voltage_min, battery_voltage_max, pv_voltage_min, pv_voltage_max, soc_min, soc_max, "
    "battery_temperature_min, battery_temperature_max, energy_generated_kwh, energy_consumed_kwh, "
    "battery_charge_ah, battery_discharge_ah, samples, first_ts_ms, last_ts_ms, covered_ms, "
    "device_generated_kwh, device_consumed_kwh, device_stats_ts_ms, version, month_start_ms, month_end_ms, "
    "device_month_generated_kwh, device_month_consumed_kwh) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7, ?8, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, "
    "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24) "
    "ON CONFLICT (device, day) DO UPDATE SET "
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
        # device_stats_ts_ms last: the CASEs before it compare against its old value.
        _newer("device_generated_kwh"), _newer("device_consumed_kwh"),
        _newer("device_month_generated_kwh"), _newer("device_month_consumed_kwh"),
        _newer("device_stats_ts_ms"),
        "version = excluded.version",
    ])
    + " RETURNING rowid"
)

# rollup_minute's value columns, and the aggregates that compute them from live_samples rows.
MINUTE_COLUMNS = ", ".join(f"{m}_sum, {m}_min, {m}_max" for m in MINUTE_METRICS)
MINUTE_AGGREGATES = ", ".join(f"sum({m}), min({m}), max({m})" for m in MINUTE_METRICS)

# The hot path: the next in-order sample of the open minute of the open day, one row, one page.
# ?1 rowid, ?2 the version the writer last gave the row (another writer changed it: no row
# matches and the writer re-reads), ?3 new version, ?4-?7 energy generated and consumed,
# charge and discharge, ?8 covered ms, ?9 sample time, ?10-?13 battery_voltage, pv_voltage,
# state_of_charge, battery_temperature. The row has samples, so its min/max are not NULL.
FAST_UPDATE = (
    "UPDATE rollup_daily SET "
    "battery_voltage_min = min(battery_voltage_min, ?10), battery_voltage_max = max(battery_voltage_max, ?10), "
    "pv_voltage_min = min(pv_voltage_min, ?11), pv_voltage_max = max(pv_voltage_max, ?11), "
    "soc_min = min(soc_min, ?12), soc_max = max(soc_max, ?12), "
    "battery_temperature_min = min(battery_temperature_min, ?13), "
    "battery_temperature_max = max(battery_temperature_max, ?13), "
    "energy_generated_kwh = energy_generated_kwh + ?4, energy_consumed_kwh = energy_consumed_kwh + ?5, "
    "battery_charge_ah = battery_charge_ah + ?6, battery_discharge_ah = battery_discharge_ah + ?7, "
    "samples = samples + 1, last_ts_ms = ?9, covered_ms = covered_ms + ?8, version = ?3 "
    "WHERE rowid = ?1 AND version = ?2"
)

_MINUTE_MERGE = (
    " ON CONFLICT (device, minute_ms) DO UPDATE SET samples = samples + excluded.samples, "
    + ", ".join(f"{m}_sum = {m}_sum + excluded.{m}_sum, {m}_min = min({m}_min, excluded.{m}_min), "
                f"{m}_max = max({m}_max, excluded.{m}_max)" for m in MINUTE_METRICS)
)

# One late sample into its closed minute: ?1 device, ?2 minute, ?3.. MINUTE_METRICS values.
MINUTE_UPSERT = (
    f"INSERT INTO rollup_minute (device, minute_ms, samples, {MINUTE_COLUMNS}) VALUES (?1, ?2, 1, "
    + ", ".join(f"?{i}, ?{i}, ?{i}" for i in range(3, 3 + len(MINUTE_METRICS)))
    + ")" + _MINUTE_MERGE
)

# Close a device's open minute ?2: its bucket from its raw samples, as the rebuild computes
# it (edge_store/rebuild.py), ?1 device. Only the open minute has samples at or after it
# and before the newest sample's minute, so one minute, no GROUP BY (no sorter).
CLOSE_MINUTE = (
    f"INSERT INTO rollup_minute (device, minute_ms, samples, {MINUTE_COLUMNS}) "
    f"SELECT * FROM (SELECT ?1, ?2, count(*) AS n, {MINUTE_AGGREGATES}"
    " FROM live_samples WHERE device = ?1 AND ts_ms >= ?2 AND ts_ms < ?2 + 60000) WHERE n > 0"
    + _MINUTE_MERGE
)

_SET_OPEN_MINUTE = "UPDATE rollup_daily SET open_minute_ms = ? WHERE rowid = ?"


def bucket_means_sql(column: str) -> str:
    """SQL for the means of one MINUTE_METRICS column per ?1 ms bucket (a multiple of a minute)
    of device ?2 over the minutes in [?3, ?4): the closed minutes' buckets and the open
    minute's raw samples, as the minute_buckets view, but reading one column (the view's
    union carries all 37 of them through, three times slower over a day)."""
    if column not in MINUTE_METRICS:  # a column name is ours, never a request's text
        raise ValueError(f"no minute buckets for {column}")
    return (
        "SELECT m - m % ?1 AS bucket, sum(s) / sum(n) FROM ("
        f"SELECT minute_ms AS m, samples AS n, {column}_sum AS s FROM rollup_minute "
        "WHERE device = ?2 AND minute_ms >= ?3 AND minute_ms < ?4 "
        f"UNION ALL SELECT l.ts_ms - l.ts_ms % 60000, 1, l.{column} FROM rollup_daily d "
        "JOIN live_samples l ON l.device = d.device AND l.ts_ms >= d.open_minute_ms "
        "WHERE d.device = ?2 AND d.open_minute_ms IS NOT NULL "
        "AND l.ts_ms - l.ts_ms % 60000 >= ?3 AND l.ts_ms - l.ts_ms % 60000 < ?4"
        ") GROUP BY bucket ORDER BY bucket"
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


def max_version(db: sqlite3.Connection) -> int:
    """The largest version in rollup_daily (0 when empty)."""
    return db.execute("SELECT coalesce(max(version), 0) FROM rollup_daily").fetchone()[0]


def restamp_open_rows(db: sqlite3.Connection, top: int) -> None:
    """Give the open rows versions above `top` (the largest version in the table): how a writer
    other than the collector tells it to re-read.

    The collector numbers its changes itself and guards each hot-path update with the
    version it last gave the open row. Any other writer of rollup rows (a rebuild) calls
    this in each of its transactions, so the collector re-reads the largest version.
    """
    version = top
    for (rowid,) in db.execute("SELECT rowid FROM rollup_daily WHERE open_minute_ms IS NOT NULL").fetchall():
        version += 1
        db.execute("UPDATE rollup_daily SET version = ? WHERE rowid = ?", (version, rowid))


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
        """Fold one stored sample into the rollups, in the transaction open on `db` that stored it."""
        if group != LIVE and group != STATS:
            return
        try:
            if group == LIVE:
                o = self._open.get(device)
                if o is not None and o.newest[0] <= ts_ms < o.end:
                    minute = o.minute
                    if self._fast(db, o, ts_ms, values):
                        if ts_ms - ts_ms % MINUTE_MS != minute:  # the next minute of the day: close this one
                            db.execute(CLOSE_MINUTE, (device, minute))
                            o.minute = ts_ms - ts_ms % MINUTE_MS
                            db.execute(_SET_OPEN_MINUTE, (o.minute, o.rowid))
                        return
                    self.reset()  # another writer changed the row: re-read everything
                self._live(db, row_id, ts_ms, device, values)
            else:
                self._stats(db, ts_ms, device, values)
        except sqlite3.Error as exc:
            # The Store rolls the transaction back and resets this cache on any exception.
            raise StoreError(f"could not update rollups: {exc}",
                             retryable=isinstance(exc, sqlite3.OperationalError)) from exc

    def _fast(self, db: sqlite3.Connection, o: _Open, ts: int, v: Mapping[str, Any]) -> bool:
        new = (ts, v["pv_power"], v["load_power"], v["battery_current"])
        dt = ts - o.newest[0]
        if 0 < dt <= self.max_gap_ms:
            gen, cons, chg, dis = piece_whole(o.newest, new)
        else:
            gen = cons = chg = dis = 0.0
            dt = 0
        version = self._version + 1
        cur = db.execute(FAST_UPDATE, (o.rowid, o.version, version, gen, cons, chg, dis, dt, ts, *_SAMPLE(v)))
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
                row = db.execute("SELECT version, open_minute_ms FROM rollup_daily WHERE rowid = ?",
                                 (o.rowid,)).fetchone()
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

    def _upsert_day(self, db: sqlite3.Connection, device: str, key: str, start: int, end: int, values: tuple) -> int:
        """DAILY_UPSERT with a new version; `values` are ?6..?19 and ?23..?24 without the version."""
        ms, me = self.periods.month(key[:7])
        version = self._stamp()
        rowid = db.execute(DAILY_UPSERT, (device, key, self.settings.timezone, start, end, *values[:14], version,
                                          ms, me, *values[14:])).fetchone()[0]
        o = self._open.get(device)
        if o is not None and o.rowid == rowid:
            o.version = version
        return rowid

    def _live(self, db: sqlite3.Connection, row_id: int, ts: int, device: str, v: Mapping[str, Any]) -> None:
        if not self._sync(db):
            return
        new = (ts, v["pv_power"], v["load_power"], v["battery_current"])
        o = self._open.get(device)
        if o is not None and ts >= o.newest[0]:
            prev, nxt = o.newest, None
        else:
            prev = db.execute(_NEIGHBOURS[0], (device, ts, row_id)).fetchone()
            nxt = db.execute(_NEIGHBOURS[1], (device, ts)).fetchone()

        periods, gap = self.periods, self.max_gap_ms
        day, start, end = periods.day(ts)
        acc: dict = {}
        if prev is not None:
            _add_interval(periods, acc, prev, new, 1.0, gap)
        if nxt is not None:
            _add_interval(periods, acc, new, nxt, 1.0, gap)
            if prev is not None:
                _add_interval(periods, acc, prev, nxt, -1.0, gap)

        # The sample's own day, with whatever the intervals add to it, then the other days.
        own = acc.pop(day, None)
        deltas = own[2:7] if own else [0.0, 0.0, 0.0, 0.0, 0]
        rowid = self._upsert_day(db, device, day, start, end, (*_SAMPLE(v), *deltas[:4], 1, ts, deltas[4],
                                                              None, None, None, None, None))
        version = self._version  # the row's own: the days after it take later ones
        for key, (s, e, *d) in acc.items():
            self._upsert_day(db, device, key, s, e, (None, None, None, None, *d[:4], 0, None, d[4],
                                                     None, None, None, None, None))

        minute = ts - ts % MINUTE_MS
        if o is None:
            row = db.execute("SELECT rowid, open_minute_ms FROM rollup_daily "
                             "WHERE device = ? AND open_minute_ms IS NOT NULL", (device,)).fetchone()
            open_rowid, open_minute = row if row else (None, None)
        else:
            open_rowid, open_minute = o.rowid, o.minute
        if nxt is not None:
            # A late sample: the open minute is read from raw samples; a closed one takes it in.
            if open_minute is None or minute < open_minute:
                db.execute(MINUTE_UPSERT, (device, minute, *_MINUTE_VALUES(v)))
            return
        if open_minute != minute or open_rowid != rowid:
            # The newest sample opens its minute in its day row; the minutes before it close.
            if open_minute is not None:
                db.execute(CLOSE_MINUTE, (device, open_minute))
                db.execute(_SET_OPEN_MINUTE, (None, open_rowid))
            # A minute is closed or open, never both (a rebuild closes the minutes of the days it redoes).
            db.execute("DELETE FROM rollup_minute WHERE device = ? AND minute_ms >= ?", (device, minute))
            db.execute(_SET_OPEN_MINUTE, (minute, rowid))
        self._open[device] = _Open(rowid, end, minute, version, new)

    def _stats(self, db: sqlite3.Connection, ts: int, device: str, v: Mapping[str, Any]) -> None:
        if not self._sync(db):
            return
        day, start, end = self.periods.day(ts)
        self._upsert_day(db, device, day, start, end, (None, None, None, None, 0.0, 0.0, 0.0, 0.0, 0, None, 0,
                                                       v["generated_today"], v["consumed_today"], ts,
                                                       v["generated_this_month"], v["consumed_this_month"]))
