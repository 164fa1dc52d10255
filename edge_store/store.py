"""The SQLite store: writing samples and errors, reading them back, pruning.

The file itself (pragmas, connections, transactions, error translation) is
edge_store/db.py's: writes run in `Database.writing` (`BEGIN IMMEDIATE`, so
two writers queue on the lock up front), on the raw driver connection, which
is the collector's hot path; reads go through SQLAlchemy for typed rows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select

from .health_figures import free_bytes
from . import rollups as rollups_mod
from . import catalogue, schema
from .db import BUSY_TIMEOUT_MS, Database
from .errors import StoreError
from .rollups import RollupSettings
from .sample_ids import FIRST_ABOVE, note_deleted, rows_above


def now_ms() -> int:
    """Current UTC time in integer milliseconds."""
    return time.time_ns() // 1_000_000


_SAMPLE_TABLE_NAMES = tuple(t.name for t in schema.sample_tables.values())
# The replication watermark of a stream ? (0 before anything was sent), as a scalar subquery.
_WATERMARK = "(SELECT coalesce(max(position), 0) FROM replication_watermarks WHERE stream = ?)"
BUMP_COUNTER = ("INSERT INTO counters (name, value, updated_ms) VALUES (?, ?, ?) "
         "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value, updated_ms = excluded.updated_ms")
_INSERT_ERROR = "INSERT INTO collector_errors (ts_ms, device, kind, block, detail) VALUES (?, ?, ?, ?, ?)"

_BUMP_DEVICE_ERRORS = ("INSERT INTO device_errors (device, kind, value, updated_ms) VALUES (?, ?, 1, ?) "
                       "ON CONFLICT(device, kind) DO UPDATE SET value = value + 1, updated_ms = excluded.updated_ms")


# Rows a prune (or the size cap) deletes per transaction: a few tens of ms of write lock here
# (bench/scale.py prints the longest), well under the collector's patience on a Pi.
PRUNE_CHUNK_ROWS = 5000
# The prune's statements, each a search on an index (tests/test_scale_plans.py pins them). `+id`
# keeps the planner on the time index: the watermark bound is a filter, not the walk.
_PRUNE_SAMPLES = ("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE ts_ms < ? ORDER BY ts_ms LIMIT ?) "
                  "RETURNING id")
_PRUNE_SENT = ("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE ts_ms < ? AND +id <= ? ORDER BY ts_ms "
               "LIMIT ?) RETURNING id")
_PRUNE_ERRORS = ("DELETE FROM collector_errors WHERE id IN "
                 "(SELECT id FROM collector_errors WHERE ts_ms < ? ORDER BY ts_ms LIMIT ?)")
_PRUNE_MINUTES = ("DELETE FROM rollup_minute WHERE rowid IN "
                  "(SELECT rowid FROM rollup_minute WHERE minute_ms <= ? ORDER BY minute_ms LIMIT ?)")
_OLDEST_LIVE = "SELECT min(ts_ms) FROM live_samples"


class Store:
    """The edge store on one SQLite file. Not thread-safe: one per thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", readonly: bool = False,
                 rollups: RollupSettings | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                 alerts=None):
        self.db = Database(path, readonly=readonly, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        self.path = self.db.path
        # With settings, daily/monthly statistics and minute buckets are kept in the
        # transaction that stores each sample (edge_store/rollups/).
        self.rollups = rollups_mod.Rollups(rollups) if rollups is not None else None
        self.alerts = alerts  # an alerts Engine (the collector's): samples evaluated in their transaction
        # Plain parameterised SQL per group: the insert is the hot path of the
        # collector, and SQLAlchemy's statement layer would double its cost.
        self._columns = {group: [c.name for c in table.columns if c.name != "id"]
                         for group, table in schema.sample_tables.items()}
        self._insert_sql = {
            group: f"INSERT INTO {table.name} ({', '.join(self._columns[group])}) "
                   f"VALUES ({', '.join(':' + c for c in self._columns[group])})"
            for group, table in schema.sample_tables.items()
        }
        self._storing = {group: f"could not store {group} sample" for group in schema.sample_tables}
        # What each device model fills per group: a row may leave out exactly what its model lacks.
        self._model_columns = {group: [frozenset(c.name for c in cat.columns(group))
                                       for cat in catalogue.MODELS.values() if group in cat.groups()]
                               for group in schema.sample_tables}

    @property
    def engine(self):
        """SQLAlchemy on the store's file (edge_store/db.py)."""
        return self.db.engine

    # -- writing -------------------------------------------------------------

    def insert_sample(self, group: str, ts_ms: int, ntp_synced: bool, device: str,
                      values: Mapping[str, Any]) -> int:
        """Store one sample of a register group in its own transaction; return its row id."""
        row = {"ts_ms": ts_ms, "ntp_synced": ntp_synced, "device": device, **values}
        return self._write([(group, self._params(group, row))], (), (), self._storing[group])[0]

    def _params(self, group: str, row: Mapping[str, Any]) -> dict[str, Any]:
        # A sample with a value missing is refused whole: nothing is made up. A column its
        # device model does not have is NULL (a row complete for one of the models).
        missing = [c for c in self._columns[group] if c not in row]
        if missing:
            if not any(model <= row.keys() for model in self._model_columns[group]):
                raise StoreError(f"{group} sample lacks {', '.join(missing)}")
            return {c: row.get(c) for c in self._columns[group]}
        return {c: row[c] for c in self._columns[group]}

    def insert_samples(self, group: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store many samples of one group in one transaction; return how many."""
        # Every row checked before the transaction: a bad one refuses the batch up front.
        batch = [self._params(group, r) for r in rows]
        if not batch:
            return 0
        what = f"could not store {len(batch)} {group} samples"
        if self.rollups is not None or self.alerts is not None:  # one by one: the rollups need each row's id
            return len(self._write([(group, params) for params in batch], [], [], what))
        with self.db.writing(what) as conn:
            conn.executemany(self._insert_sql[group], batch)
        return len(batch)

    def write_round(self, samples: Iterable[tuple[str, Mapping[str, Any]]], errors: Iterable[tuple] = (),
                    figures: Iterable[tuple[str, str, int, float]] = ()) -> list[int]:
        """Store a poll round (or a commit window of them) in ONE transaction; the new row ids, in order.

        `samples`: (group, row) with ts_ms, ntp_synced, device and the group's values; `errors`:
        (kind, block, detail, device, ts_ms) as `record_error` takes them. One commit writes each
        page it touches once (the tables' last leaves, their indexes, sqlite_sequence, the day
        row): batching polls is what cuts the bytes written per sample (bench/store_bytes.py).
        Every sample is checked first: a bad one refuses the round. With alerts, each sample (held in the
        window or not) is evaluated at its own time, then `figures` (field, device, ts_ms, value), in here.
        """
        batch = [(group, self._params(group, row)) for group, row in samples]
        errors, figures = list(errors), list(figures) if self.alerts is not None else []
        if not batch and not errors and not figures:
            return []
        return self._write(batch, errors, figures, f"could not store {len(batch)} samples")

    def _write(self, batch: list[tuple[str, dict[str, Any]]], errors: list[tuple], figures: list[tuple],
               what: str) -> list[int]:
        """Checked samples (with their rollups and alerts), errors and figures in one transaction; the ids."""
        ids = []
        try:
            with self.db.writing(what) as conn:
                for group, params in batch:
                    ids.append(conn.execute(self._insert_sql[group], params).lastrowid)
                    if self.rollups is not None:
                        self.rollups.on_sample(conn, group, ids[-1], params["ts_ms"], params["device"], params)
                    if self.alerts is not None:
                        self.alerts.on_sample(conn, group, params["ts_ms"], params["device"], params)
                for kind, block, detail, device, ts_ms in errors:
                    self._error(conn, kind, block, detail, device, ts_ms)
                for field, device, ts_ms, value in figures:
                    self.alerts.on_figure(conn, field, device, ts_ms, value)
        except BaseException:
            self._forget_rollups()
            raise
        return ids

    def _forget_rollups(self) -> None:
        if self.rollups is not None:
            self.rollups.reset()
        if self.alerts is not None:
            self.alerts.reset()

    def record_error(self, kind: str, block: str, detail: str, *, device: str, ts_ms: int | None = None) -> None:
        """Log one collector error and count it under `modbus_errors.<kind>`."""
        ts_ms = now_ms() if ts_ms is None else ts_ms
        with self.db.writing("could not record error") as conn:
            self._error(conn, kind, block, detail, device, ts_ms)

    @staticmethod
    def _error(conn, kind: str, block: str, detail: str, device: str, ts_ms: int) -> None:
        conn.execute(_INSERT_ERROR, (ts_ms, device, kind, block, detail[:500]))
        conn.execute(BUMP_COUNTER, (f"modbus_errors.{kind}", 1, ts_ms))
        conn.execute(_BUMP_DEVICE_ERRORS, (device, kind, ts_ms))

    def increment(self, name: str, by: int = 1) -> None:
        """Add to a named counter (created at zero)."""
        with self.db.writing(f"could not update counter {name}") as conn:
            conn.execute(BUMP_COUNTER, (name, by, now_ms()))

    def prune(self, before_ms: int, *, keep_unsent: bool = False, chunk_rows: int = PRUNE_CHUNK_ROWS) -> int:
        """Delete samples, error lines and minute buckets older than `before_ms`; return rows deleted.

        Daily and monthly statistics are never pruned. With `keep_unsent` (a
        cloud is configured) samples above their stream's replication watermark
        stay: the cloud does not have them yet. Each chunk of `chunk_rows` is its
        own transaction (`prune_step`). Busy past the timeout or a full disk: a
        retryable StoreError (the collector logs it and tries again later).
        """
        deleted = 0
        while True:
            n, done = self.prune_step(before_ms, keep_unsent=keep_unsent, chunk_rows=chunk_rows)
            deleted += n
            if done:
                return deleted

    def prune_step(self, before_ms: int, *, keep_unsent: bool = False, chunk_rows: int = PRUNE_CHUNK_ROWS,
                   budget_s: float | None = None) -> tuple[int, bool]:
        """Prune as `prune` does, by index, one short transaction per chunk of `chunk_rows`, until done
        or `budget_s` has passed; (rows deleted, done). The collector calls it between its polls, so
        however far behind the prune is, no poll waits for more than about one step."""
        start = time.monotonic()
        deleted = 0
        with self.db.writing("could not prune") as conn:
            # First: a rebuild or the API must not count on the samples before before_ms from now on.
            rollups_mod.record_prune(conn, before_ms)
        jobs = [(name, before_ms) for name in (*_SAMPLE_TABLE_NAMES, "collector_errors")] + [("rollup_minute", None)]
        for name, cut in jobs:
            while True:
                with self.db.writing("could not prune") as conn:
                    if name == "rollup_minute":
                        # A minute bucket goes only once every sample it summarises is gone.
                        oldest = conn.execute(_OLDEST_LIVE).fetchone()[0] if keep_unsent else None
                        cut = before_ms if oldest is None else min(before_ms, oldest)
                        n = conn.execute(_PRUNE_MINUTES, (cut - rollups_mod.MINUTE_MS, chunk_rows)).rowcount
                    elif name == "collector_errors":
                        n = conn.execute(_PRUNE_ERRORS, (cut, chunk_rows)).rowcount
                    else:
                        n = self._prune_chunk(conn, name, before_ms, keep_unsent, chunk_rows)
                deleted += n
                if n < chunk_rows:
                    break
                if budget_s is not None and time.monotonic() - start >= budget_s:
                    return deleted, False
        return deleted, True

    @staticmethod
    def _prune_chunk(conn, name: str, before_ms: int, keep_unsent: bool, chunk_rows: int) -> int:
        if keep_unsent:
            mark = conn.execute(f"SELECT {_WATERMARK}", (name,)).fetchone()[0]
            # Rows from the first unsent one on stay; walking the time index stops there.
            first = conn.execute(FIRST_ABOVE.format(t=name), (mark,)).fetchone()
            cut = before_ms if first is None else min(before_ms, first[0])
            ids = conn.execute(_PRUNE_SENT.format(t=name), (cut, mark, chunk_rows)).fetchall()
        else:
            ids = conn.execute(_PRUNE_SAMPLES.format(t=name), (before_ms, chunk_rows)).fetchall()
        note_deleted(conn, name, [i for (i,) in ids])
        return len(ids)

    def used_bytes(self) -> int:
        """Bytes of the database file in use (pages not on the free list)."""
        with self.db.reading("could not measure the database") as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size

    def space_cap(self, min_free_bytes: int) -> int:
        """The most bytes in use the file may hold and leave `min_free_bytes` free on its filesystem:
        what it holds already (its pages, in use or free, and its WAL, which writes reuse) plus what
        the filesystem has above the floor."""
        try:
            free = free_bytes(self.path)
            wal = os.path.getsize(self.path + "-wal") if os.path.exists(self.path + "-wal") else 0
        except OSError as exc:
            raise StoreError(f"could not measure the free space of {self.path}: {exc.strerror}") from exc
        with self.db.reading("could not measure the database") as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return pages * size + wal + free - min_free_bytes

    def enforce_size(self, max_bytes: int, *, keep_unsent: bool = False, target: float = 0.9) -> dict[str, int]:
        """Keep the pages in use under `max_bytes` by deleting the oldest samples.

        Above the cap, samples are deleted oldest first until the database uses
        `target` of the cap: with `keep_unsent` (a cloud is configured) the
        replicated ones first, and unsent ones only when those alone pass the
        cap; these are counted in `store.dropped_unsent`. Freed pages are
        reused, so the file stops growing. Returns {"pruned": n, "dropped_unsent": m}.
        """
        out = {"pruned": 0, "dropped_unsent": 0}
        used = self.used_bytes()
        if used <= max_bytes:
            return out
        goal = max_bytes * target
        for sent_only in ((True, False) if keep_unsent else (False,)):
            for _ in range(8):
                if used <= goal:
                    return out
                freed = self._delete_oldest((used - goal) / used, sent_only=sent_only, count_unsent=keep_unsent)
                if freed == (0, 0):
                    break
                out["pruned"] += freed[0]
                out["dropped_unsent"] += freed[1]
                used = self.used_bytes()
        return out

    def _delete_oldest(self, fraction: float, *, sent_only: bool, count_unsent: bool) -> tuple[int, int]:
        """Delete about `fraction` of each sample table's rows, oldest first, in transactions of at most
        PRUNE_CHUNK_ROWS rows; (deleted, unsent among them)."""
        deleted = unsent = 0
        for name in _SAMPLE_TABLE_NAMES:
            with self.db.reading("could not prune for size") as conn:
                total = rows_above(conn, name, 0)
            want = min(total, max(1, int(total * fraction) + 1)) if total else 0
            while want > 0:
                with self.db.writing("could not prune for size") as conn:
                    mark = conn.execute(f"SELECT {_WATERMARK}", (name,)).fetchone()[0]
                    where = "WHERE +id <= ? " if sent_only else ""
                    ask = min(want, PRUNE_CHUNK_ROWS)
                    victims = conn.execute(f"SELECT id, ts_ms FROM {name} {where}ORDER BY ts_ms, id LIMIT ?",
                                           (mark, ask) if sent_only else (ask,)).fetchall()
                    if not victims:
                        break
                    ids = [v[0] for v in victims]
                    for i in range(0, len(ids), 500):
                        chunk = ids[i:i + 500]
                        conn.execute(f"DELETE FROM {name} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
                    note_deleted(conn, name, ids)
                    # Samples up to there may be gone now: a rollup rebuild stops there.
                    rollups_mod.record_prune(conn, max(v[1] for v in victims) + 1)
                    lost = sum(1 for v in ids if v > mark) if count_unsent else 0
                    if lost:
                        conn.execute(BUMP_COUNTER, ("store.dropped_unsent", lost, now_ms()))
                deleted += len(ids)
                unsent += lost
                want -= len(ids)
                if len(ids) < ask:
                    break
        return deleted, unsent

    # -- reading -------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Every counter by name."""
        with self.db.core_reading("could not read the counters") as conn:
            return {name: value for name, value in conn.execute(select(schema.counters.c.name, schema.counters.c.value))}

    def latest(self, group: str, device: str | None = None) -> dict[str, Any] | None:
        """The newest sample of a group (of one device if given), as a dict, or None."""
        table = schema.sample_tables[group]
        query = select(table).order_by(table.c.ts_ms.desc(), table.c.id.desc()).limit(1)
        if device is not None:
            query = query.where(table.c.device == device)
        with self.db.core_reading(f"could not read the newest {group} sample") as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def rows(self, group: str, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Samples of a group with id above `after_id`, in id order."""
        table = schema.sample_tables[group]
        query = select(table).where(table.c.id > after_id).order_by(table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.db.core_reading(f"could not read {group} samples") as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def rows_kept(self, group: str) -> int:
        """How many samples of a group are stored, from their ids (`rows_above`): the same figure as
        `count` without reading the table."""
        with self.db.reading(f"could not count {group} samples") as conn:
            return rows_above(conn, schema.SAMPLE_TABLES[group], 0)

    def count(self, group: str) -> int:
        """How many samples of a group are stored (counted: for tests and checks; see `rows_kept`)."""
        table = schema.sample_tables[group]
        with self.db.core_reading(f"could not count {group} samples") as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def device_errors(self) -> dict[str, dict[str, int]]:
        """Errors ever counted, per device and kind."""
        t = schema.device_errors
        out: dict[str, dict[str, int]] = {}
        with self.db.core_reading("could not read the device errors") as conn:
            for device, kind, value in conn.execute(select(t.c.device, t.c.kind, t.c.value)):
                out.setdefault(device, {})[kind] = value
        return out

    def errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest collector errors, newest first."""
        t = schema.collector_errors
        with self.db.core_reading("could not read the collector errors") as conn:
            return [dict(r) for r in conn.execute(select(t).order_by(t.c.id.desc()).limit(limit)).mappings()]

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close connections; the file stays consistent whatever happens next."""
        self._forget_rollups()
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
