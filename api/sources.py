"""Where answers come from: the edge store (`local`) or InfluxDB (`cloud`), in the configured order.

`Sources.answer(site, fn, since_ms)` asks each source in `[api] sources`
order: a source that does not hold the site or the window (local: another
site, or a window reaching before what the store pruned) is passed over; one
that cannot be reached or fails is passed over and remembered; the first
that answers wins, and its name goes out in `X-Data-Source`. When every
source that holds the site failed: `Unavailable` (503, Retry-After); when
they answered "nothing": `NotFound`.

- `LocalSource` reads the SQLite store through a read-only Database
  (edge_store/db.py): one connection per thread, kept open between requests;
  the file is stat()ed before each read: a file that went away is reported
  unreachable, a replaced one is reopened, never read through a stale handle.
  Series come from the one-minute buckets (closed ones and the open minute's
  samples), aggregated in SQL.
- `CloudSource` reads InfluxDB through replicator's InfluxQL reader (one per
  thread), every identifier and literal escaped. Reachability is probed
  (`/ping`) with a short timeout and remembered for a few seconds, so an
  unreachable cloud costs one timeout per worker every few seconds, not one
  per request. Series are `GROUP BY time()` means, computed by InfluxDB.
  Another site's devices and models: `remote_devices` (api/remote_devices.py).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from edge_store import schema
from edge_store.db import Database, dicts
from edge_store.catalogue import DEFAULT_MODEL, EPEVER_TRACER, MODELS, Catalogue
from edge_store.reconcile_log import ReconcileLog
from edge_store.catalogue.rollup_figures import DAY, FIGURES, MONTH, PERIOD_FIELD, Figure, answer_row
from edge_store.errors import KammthaarError, StoreError
from edge_store.outbox import Outbox
from edge_store.registers import LIVE, SETTINGS
from edge_store.rollups import META_PRUNED, bucket_means_sql
from replicator.influxql import InfluxQLReader, QueryError, ident, literal

from .errors import NotFound, Unavailable
from .families import Family, Metric, Snapshot
from .remote_devices import RemoteDevice, RemoteDevices

INFLUX_FIRST_DAY, INFLUX_LAST_DAY = date(1678, 1, 1), date(2262, 4, 1)
PROBE_TIMEOUT_S = 1.0
REMEMBER_S = 5.0

DAILY, MONTHLY = "daily", "monthly"
PERIOD_COLUMN = {DAILY: DAY, MONTHLY: MONTH}  # the rollup's period column


def _stat_object(kind: str, key: str, value: Callable[[Figure], Any]) -> dict:
    """The statistics object of one period: `value(figure)` of each figure, as the catalogue rounds it."""
    out: dict[str, Any] = {PERIOD_FIELD[PERIOD_COLUMN[kind]]: key}
    for figure in FIGURES:
        out[figure.name] = figure.answer(value(figure))
    return out


class LocalSource:
    """The SQLite store of this site, read-only."""

    name = "local"

    def __init__(self, path: str, *, site: str, device: str, models: Mapping[str, str] | None = None):
        self.path = str(path)
        self.site = site
        self.device = device
        self.models = dict(models or {})  # device -> model name ([[devices]]); others are the default model
        self.db = Database(self.path, readonly=True)
        self._what = f"the store {self.path} cannot be read"
        self._outbox = Outbox(self.db)

    # -- connections ------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable | dict = ()) -> list[tuple]:
        return self.db.query(self._what, sql, params if isinstance(params, dict) else tuple(params)).fetchall()

    def _dicts(self, sql: str, params: Iterable = ()) -> list[dict]:
        return dicts(self.db.query(self._what, sql, tuple(params)))

    def _row_dict(self, sql: str, params: Iterable = ()) -> dict | None:
        rows = self._dicts(sql, params)
        return rows[0] if rows else None

    def failed(self, exc: KammthaarError) -> None:
        self.db.forget()

    # -- what it holds ------------------------------------------------------------------

    def horizon_ms(self) -> int:
        """Samples before this time may have been pruned (0: nothing was)."""
        rows = self._rows("SELECT value FROM rollup_meta WHERE key = ?", (META_PRUNED,))
        return int(rows[0][0]) if rows else 0

    def holds(self, site: str, since_ms: int | None) -> bool:
        if site != self.site:
            return False
        self.db.check(self._what)  # reachable
        return since_ms is None or since_ms >= self.horizon_ms()

    # -- answers ------------------------------------------------------------------------

    def newest_row(self, group: str, device: str | None = None) -> dict | None:
        table = schema.SAMPLE_TABLES[group]
        return self._row_dict(f"SELECT * FROM {table} WHERE device = ? ORDER BY ts_ms DESC, id DESC LIMIT 1",
                              (device or self.device,))

    def newest(self, site: str, family: Family, device: str | None = None) -> Snapshot | None:
        rows = {part.group: self.newest_row(part.group, device) for part in family.parts}
        primary = rows[family.primary.group]
        if primary is None:
            return None
        return Snapshot(primary["ts_ms"], family.from_rows(rows))

    def newest_ts(self, site: str, group: str, device: str | None = None) -> int | None:
        table = schema.SAMPLE_TABLES[group]
        rows = self._rows(f"SELECT max(ts_ms) FROM {table} WHERE device = ?", (device or self.device,))
        return rows[0][0] if rows else None

    def series(self, site: str, metric: Metric, start_ms: int, end_ms: int, every_ms: int | None,
               device: str | None = None) -> list:
        """(ts_ms, value) pairs in [start_ms, end_ms): bucket means of the minute buckets, or raw samples."""
        device = device or self.device
        column = metric.column
        if column not in schema.MINUTE_METRICS:  # the metric table is ours; never a request's text
            raise StoreError(f"no minute buckets for {column}")
        if every_ms is None:
            return self._rows(f"SELECT ts_ms, {column} FROM live_samples WHERE device = ? AND ts_ms >= ? "
                              f"AND ts_ms < ? ORDER BY ts_ms", (device, start_ms, end_ms))
        return self._rows(bucket_means_sql(column), {"every_ms": every_ms, "device": device,
                                                     "start_ms": start_ms, "end_ms": end_ms})

    def periods(self, site: str, kind: str, first: str, last: str, device: str | None = None) -> list[dict]:
        """Statistics objects of the local days (months) first..last, both included, oldest first."""
        key = PERIOD_COLUMN[kind]
        table = f"rollup_{kind}"
        rows = self._dicts(f"SELECT * FROM {table} WHERE device = ? AND {key} >= ? AND {key} <= ? ORDER BY {key}",
                           (device or self.device, first, last))
        field = PERIOD_FIELD[key]
        return [answer_row(r, {field: r[key]}) for r in rows]

    def device_states(self, site: str, names: Iterable[str]) -> dict[str, dict]:
        """Per device: the newest live sample's time (None: none yet) and its errors by kind, one snapshot."""
        with self.db.reading(self._what):
            errors: dict[str, dict[str, int]] = {}
            for device, kind, value in self._rows("SELECT device, kind, value FROM device_errors"):
                errors.setdefault(device, {})[kind] = value
            return {name: {"newest_ms": self.newest_ts(site, LIVE, name), "errors": errors.get(name, {}),
                           "reported_model": self._reported_model(name)} for name in names}

    def _reported_model(self, device: str) -> str | None:
        """The model string the device reports (from its newest settings row), where its model has one."""
        column = MODELS.get(self.models.get(device, DEFAULT_MODEL), EPEVER_TRACER).reported_model
        if column is None:
            return None
        row = self.newest_row(SETTINGS, device)
        return None if row is None else row.get(column)
    def alerts(self, *, firing_only: bool, since_ms: int | None, device: str | None = None) -> list[dict]:
        """Alert events newest first, of one device or all (edge_store/alerts/events.py)."""
        from edge_store.alerts.events import list_events, read

        return read(self.db, "alert events", list_events, firing_only=firing_only, since_ms=since_ms, device=device)

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict:
        """Counters, rows ever stored, file size, the replicator's and the reconciliation's summaries, the alerts
        firing now."""
        with self.db.reading(self._what):  # one snapshot for all of them
            counters = dict(self._rows("SELECT name, value FROM counters"))
            stored = dict(self._rows("SELECT name, seq FROM sqlite_sequence WHERE name IN (?, ?, ?, ?)",
                                     tuple(schema.SAMPLE_TABLES.values())))
            replication = self._outbox.summary()
            reconciliation = ReconcileLog(self.db).summary()
            from edge_store.alerts.events import active_counts, read

            alerts = read(self.db, "active alerts", active_counts)
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return {"counters": counters, "stored": stored, "size_bytes": size,
                "replication": replication, "reconciliation": reconciliation,
                "alerts": alerts}


class CloudDown(QueryError):
    """The cloud was found unreachable a moment ago: not asked again until the verdict expires."""


class CloudSource:
    """InfluxDB through InfluxQL `/query`: any site, as the replicator wrote it."""

    name = "cloud"

    def __init__(self, make_reader: Callable[[], InfluxQLReader], *, device: str, timezone_name: str,
                 probe_timeout_s: float = PROBE_TIMEOUT_S, remember_s: float = REMEMBER_S,
                 monotonic: Callable[[], float] = time.monotonic, catalogue: Catalogue = EPEVER_TRACER,
                 models: Mapping[str, str] | None = None):
        self._make_reader = make_reader
        self.device = device
        self.catalogue = catalogue
        self.models = dict(models or {})  # device -> model name ([[devices]]); others are `catalogue`'s
        self.timezone_name = timezone_name
        self.probe_timeout_s = probe_timeout_s
        self.remember_s = remember_s
        self._monotonic = monotonic
        self._local = threading.local()
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._state: tuple[bool, float, str] | None = None  # (up, until, why)
        self.remote = RemoteDevices(self._reader)

    def _reader(self) -> InfluxQLReader:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self._make_reader()
        return reader

    def reader(self) -> InfluxQLReader:
        """This thread's InfluxQL reader, once InfluxDB is known reachable (the fleet's queries: api/fleet.py)."""
        self._ensure_reachable()
        return self._reader()

    # -- reachability -------------------------------------------------------------------

    def _remembered(self) -> tuple[bool, float, str] | None:
        with self._lock:
            state = self._state
        if state is not None and self._monotonic() < state[1]:
            return state
        return None

    def _remember(self, up: bool, why: str = "") -> None:
        with self._lock:
            self._state = (up, self._monotonic() + self.remember_s, why)

    def reachable(self) -> bool:
        """Whether InfluxDB answers /ping: probed at most once per `remember_s` (per process)."""
        state = self._remembered()
        if state is None:
            with self._probe_lock:  # one probe at a time; the others wait for its verdict
                state = self._remembered()
                if state is None:
                    try:
                        self._reader().ping(self.probe_timeout_s)
                        self._remember(True)
                    except QueryError as exc:
                        self._remember(False, str(exc))
                    state = self._remembered() or (False, 0.0, "")
        return state[0]

    def _ensure_reachable(self) -> None:
        if not self.reachable():
            state = self._remembered()
            raise CloudDown(f"unreachable ({state[2] if state else 'no answer'})")

    def failed(self, exc: KammthaarError) -> None:
        # A query that got no answer makes the cloud unreachable for a while; the remembered
        # verdict itself (CloudDown) must not extend that while.
        if exc.retryable and not isinstance(exc, CloudDown):
            self._remember(False, str(exc))

    # -- what it holds ------------------------------------------------------------------

    def holds(self, site: str, since_ms: int | None) -> bool:
        self._ensure_reachable()
        return True

    # -- answers ------------------------------------------------------------------------

    def _where(self, site: str, device: str | None = None) -> str:
        return f"{ident('site')} = {literal(site)} AND {ident('device')} = {literal(device or self.device)}"

    def newest(self, site: str, family: Family, device: str | None = None) -> Snapshot | None:
        parts = [p for p in family.parts if p.measurement]
        statements = [f"SELECT {', '.join(ident(f) for f in p.fields)} FROM {ident(p.measurement)} "
                      f"WHERE {self._where(site, device)} ORDER BY time DESC LIMIT 1" for p in parts]
        answers = self._reader().query_each(statements)
        records: dict[str, dict | None] = {p.group: None for p in family.parts}
        for part, series in zip(parts, answers):
            if series and series[0].get("values"):
                records[part.group] = dict(zip(series[0]["columns"], series[0]["values"][0]))
        primary = records[family.primary.group]
        if primary is None:
            return None
        return Snapshot(int(primary["time"]), family.from_records(records))

    def newest_ts(self, site: str, group: str, device: str | None = None) -> int | None:
        # The newest point of a field the catalogue writes with every row of the group.
        stamp = MODELS[self.models[device]].stamp(group) if device in self.models else self.catalogue.stamp(group)
        if stamp is None:  # the device's model has no such group (a Rover's clock)
            return None
        (series,) = self._reader().query_each([
            f"SELECT {ident(stamp.influx)} FROM {ident(stamp.measurement)} WHERE {self._where(site, device)} "
            f"ORDER BY time DESC LIMIT 1"])
        if series and series[0].get("values"):
            return int(series[0]["values"][0][0])
        return None

    def series(self, site: str, metric: Metric, start_ms: int, end_ms: int, every_ms: int | None,
               device: str | None = None) -> list:
        where = f"{self._where(site, device)} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms"
        if every_ms is None:
            q = f"SELECT {ident(metric.field)} FROM {ident(metric.measurement)} WHERE {where} ORDER BY time ASC"
        else:
            q = (f"SELECT mean({ident(metric.field)}) FROM {ident(metric.measurement)} WHERE {where} "
                 f"GROUP BY time({int(every_ms)}ms) fill(none)")
        (series,) = self._reader().query_each([q])
        return [(int(t), v) for s in series for t, v in s.get("values", []) if v is not None]

    def periods(self, site: str, kind: str, first: str, last: str, device: str | None = None) -> list[dict]:
        field = PERIOD_FIELD[PERIOD_COLUMN[kind]]
        if kind == DAILY:
            lo, hi = date.fromisoformat(first), date.fromisoformat(last)
        else:
            lo = date.fromisoformat(first + "-01")
            y, m = int(last[:4]), int(last[5:7])
            hi = date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)
        # A period's point is at its local start: a day either side covers every zone.
        # ... within the times InfluxDB can hold (int64 nanoseconds: 1677 to 2262).
        lo, hi = max(lo, INFLUX_FIRST_DAY), min(hi, INFLUX_LAST_DAY)
        if lo > hi:
            return []
        start = datetime.combine(lo - timedelta(days=1), datetime.min.time(), timezone.utc)
        end = datetime.combine(hi + timedelta(days=2), datetime.min.time(), timezone.utc)
        q = (f"SELECT * FROM {ident('rollup_' + kind)} WHERE {self._where(site, device)} "
             f"AND time >= {literal(start)} AND time < {literal(end)} ORDER BY time ASC")
        (series,) = self._reader().query_each([q])
        out: dict[str, dict] = {}
        for s in series:
            for values in s.get("values", []):
                record = dict(zip(s["columns"], values))
                key = record.get(field)
                if isinstance(key, str) and first <= key <= last:
                    out[key] = _stat_object(kind, key, lambda f, r=record: r.get(f.name))
        return [out[k] for k in sorted(out)]

    def device_states(self, site: str, names: Iterable[str]) -> dict[str, dict]:
        """Per device: the newest live point's time; its errors are the edge's (None: not known here)."""
        return {name: {"newest_ms": self.newest_ts(site, LIVE, name), "errors": None} for name in names}

    def remote_devices(self, site: str) -> tuple[RemoteDevice, ...]:
        """Another site's devices and their models, as InfluxDB knows them (api/remote_devices.py)."""
        return self.remote.of(site)


class Sources:
    """The sources in `[api] sources` order; `answer()` asks them in turn."""

    def __init__(self, sources: list):
        self.sources = list(sources)
        self.local = next((s for s in self.sources if s.name == "local"), None)
        self.cloud = next((s for s in self.sources if s.name == "cloud"), None)

    def answer(self, site: str, fn: Callable[[Any], Any], *, since_ms: int | None = None,
               what: str = "data") -> tuple[Any, str]:
        """(answer, source name) from the first source that holds `site` (since `since_ms`) and answers.

        `fn(source)` returns the answer, or None for "nothing here" (the next source is asked).
        """
        down: list[str] = []
        empty = False
        for source in self.sources:
            try:
                if not source.holds(site, since_ms):
                    continue
                result = fn(source)
            except (StoreError, QueryError) as exc:
                source.failed(exc)
                down.append(f"{source.name}: {exc}")
                continue
            if result is None:
                empty = True
                continue
            return result, source.name
        if down:
            raise Unavailable("no data source can answer right now (" + "; ".join(down) + ")")
        if empty:
            raise NotFound(f"no {what} stored for site {site!r} yet")
        raise NotFound(f"site {site!r} is not served here")
