"""The SQLite store: engine set-up, writing samples and errors, reading them back.

WAL mode so the collector, the replicator and the API share one file; a busy
timeout so a writer waits instead of failing; `BEGIN IMMEDIATE` for writes so
two writers queue on the lock up front instead of dead-locking on an upgrade.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from . import rollups as rollups_mod
from . import schema
from .errors import StoreError
from .rollups import RollupSettings

BUSY_TIMEOUT_MS = 10_000
PAGE_SIZE = 1024


def make_engine(path: str | Path, *, synchronous: str = "NORMAL", readonly: bool = False,
                busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine on the database file with our pragmas on every connection."""
    path = str(path)
    if readonly:
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if synchronous not in ("NORMAL", "FULL"):
        raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    # One process rarely needs more than a couple of connections; NullPool for
    # readers so a moved or replaced file is reopened, a small queue for writers.
    engine = create_engine(url, poolclass=NullPool if readonly else QueuePool,
                           **({} if readonly else {"pool_size": 2, "max_overflow": 2}))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # We issue BEGIN ourselves (below); the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if not readonly:
            # Small pages: each commit rewrites a few whole pages (row, index,
            # sequence), so the page size is what an SD card pays per sample.
            # Only takes effect when the file is created.
            cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def now_ms() -> int:
    """Current UTC time in integer milliseconds."""
    return time.time_ns() // 1_000_000


_SAMPLE_TABLE_NAMES = frozenset(t.name for t in schema.sample_tables.values())


def _watermark(stream: str):
    """The replication watermark of a stream (0 before anything was sent), as a scalar subquery."""
    w = schema.replication_watermarks
    return select(func.coalesce(func.max(w.c.position), 0)).where(w.c.stream == stream).scalar_subquery()


class Store:
    """The edge store on one SQLite file. Not thread-safe: one per thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", readonly: bool = False,
                 rollups: RollupSettings | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = str(path)
        self.readonly = readonly
        self.engine = make_engine(self.path, synchronous=synchronous, readonly=readonly,
                                  busy_timeout_ms=busy_timeout_ms)
        self._conn = None
        self._dbapi = None
        # With settings, daily/monthly statistics and minute buckets are kept in the
        # transaction that stores each sample (edge_store/rollups.py).
        self.rollups = rollups_mod.Rollups(rollups) if rollups is not None else None
        # Plain parameterised SQL per group: the insert is the hot path of the
        # collector, and SQLAlchemy's statement layer would double its cost.
        self._columns = {group: [c.name for c in table.columns if c.name != "id"]
                         for group, table in schema.sample_tables.items()}
        self._insert_sql = {
            group: f"INSERT INTO {table.name} ({', '.join(self._columns[group])}) "
                   f"VALUES ({', '.join(':' + c for c in self._columns[group])})"
            for group, table in schema.sample_tables.items()
        }

    # -- writing -------------------------------------------------------------

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.engine.connect()
            # The rollups talk to sqlite3 directly; looking this up per sample costs 0.4 µs.
            self._dbapi = self._conn.connection.driver_connection
        return self._conn

    def insert_sample(self, group: str, ts_ms: int, ntp_synced: bool, device: str,
                      values: Mapping[str, Any]) -> int:
        """Store one sample of a register group in its own transaction; return its row id."""
        row = {"ts_ms": ts_ms, "ntp_synced": ntp_synced, "device": device, **values}
        params = self._params(group, row)
        try:
            conn = self._connection()
            with conn.begin():
                row_id = conn.exec_driver_sql(self._insert_sql[group], params).lastrowid
                if self.rollups is not None:
                    self.rollups.on_sample(self._dbapi, group, row_id, ts_ms, device, row)
                return row_id
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not store {group} sample: {exc.orig if hasattr(exc, 'orig') else exc}",
                             retryable=isinstance(exc, OperationalError)) from exc
        except BaseException:
            # Rolled back: the rollups' cache may describe the row that is not there.
            self._forget_rollups()
            raise

    def _params(self, group: str, row: Mapping[str, Any]) -> dict[str, Any]:
        # A sample with a value missing is refused whole: nothing is made up.
        missing = [c for c in self._columns[group] if c not in row]
        if missing:
            raise StoreError(f"{group} sample lacks {', '.join(missing)}")
        return {c: row[c] for c in self._columns[group]}

    def insert_samples(self, group: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store many samples of one group in one transaction; return how many."""
        # Every row checked before the transaction: a bad one refuses the batch up front.
        batch = [self._params(group, r) for r in rows]
        if not batch:
            return 0
        try:
            conn = self._connection()
            with conn.begin():
                if self.rollups is None:
                    conn.exec_driver_sql(self._insert_sql[group], batch)
                else:  # one by one: the rollups need each row's id
                    for params in batch:
                        row_id = conn.exec_driver_sql(self._insert_sql[group], params).lastrowid
                        self.rollups.on_sample(self._dbapi, group, row_id, params["ts_ms"], params["device"], params)
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not store {len(batch)} {group} samples: {exc}",
                             retryable=isinstance(exc, OperationalError)) from exc
        except BaseException:
            self._forget_rollups()
            raise
        return len(batch)

    def _forget_rollups(self) -> None:
        if self.rollups is not None:
            self.rollups.reset()

    def record_error(self, kind: str, block: str, detail: str, *, device: str, ts_ms: int | None = None) -> None:
        """Log one collector error and count it under `modbus_errors.<kind>`."""
        ts_ms = now_ms() if ts_ms is None else ts_ms
        try:
            conn = self._connection()
            with conn.begin():
                conn.execute(schema.collector_errors.insert(),
                             {"ts_ms": ts_ms, "device": device, "kind": kind, "block": block, "detail": detail[:500]})
                self._bump(conn, f"modbus_errors.{kind}", 1, ts_ms)
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not record error: {exc}", retryable=True) from exc

    def increment(self, name: str, by: int = 1) -> None:
        """Add to a named counter (created at zero)."""
        try:
            conn = self._connection()
            with conn.begin():
                self._bump(conn, name, by, now_ms())
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not update counter {name}: {exc}", retryable=True) from exc

    @staticmethod
    def _bump(conn, name: str, by: int, ts_ms: int) -> None:
        conn.exec_driver_sql(
            "INSERT INTO counters (name, value, updated_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value, updated_ms = excluded.updated_ms",
            (name, by, ts_ms),
        )

    def prune(self, before_ms: int, *, keep_unsent: bool = False) -> int:
        """Delete samples, error lines and minute buckets older than `before_ms`; return rows deleted.

        Daily and monthly statistics are never pruned. With `keep_unsent` (a
        cloud is configured) samples above their stream's replication watermark
        stay: the cloud does not have them yet.
        """
        try:
            return self._prune(before_ms, keep_unsent)
        except SQLAlchemyError as exc:
            # Busy past the timeout or a full disk: the collector logs it and tries again later.
            self._reset()
            raise StoreError(f"could not prune: {exc}", retryable=True) from exc

    def _prune(self, before_ms: int, keep_unsent: bool) -> int:
        deleted = 0
        conn = self._connection()
        with conn.begin():
            for table in (*schema.sample_tables.values(), schema.collector_errors):
                condition = table.c.ts_ms < before_ms
                if keep_unsent and table.name in _SAMPLE_TABLE_NAMES:
                    condition = condition & (table.c.id <= _watermark(table.name))
                deleted += conn.execute(delete(table).where(condition)).rowcount
            # A minute bucket goes only once every sample it summarises is gone.
            minute = schema.rollup_minute
            buckets_before_ms = before_ms
            if keep_unsent:
                oldest = conn.execute(select(func.min(schema.live_samples.c.ts_ms))).scalar()
                buckets_before_ms = before_ms if oldest is None else min(before_ms, oldest)
            deleted += conn.execute(delete(minute).where(minute.c.minute_ms <= buckets_before_ms - rollups_mod.MINUTE_MS)).rowcount
            rollups_mod.record_prune(conn, before_ms)
        return deleted

    def used_bytes(self) -> int:
        """Bytes of the database file in use (pages not on the free list)."""
        try:
            with self.engine.connect() as conn:
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
                free = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not measure the database: {exc}", retryable=True) from exc
        return (pages - free) * size

    def enforce_size(self, max_bytes: int, *, keep_unsent: bool = False, target: float = 0.9) -> dict[str, int]:
        """Keep the pages in use under `max_bytes` by deleting the oldest samples.

        Above the cap, samples are deleted oldest first until the database uses
        `target` of the cap: with `keep_unsent` (a cloud is configured) the
        replicated ones first, and unsent ones only when those alone pass the
        cap; these are counted in `store.dropped_unsent`. Freed pages are
        reused, so the file stops growing. Returns {"pruned": n, "dropped_unsent": m}.
        """
        out = {"pruned": 0, "dropped_unsent": 0}
        if self.used_bytes() <= max_bytes:
            return out
        goal = max_bytes * target
        for sent_only in ((True, False) if keep_unsent else (False,)):
            for _ in range(8):
                used = self.used_bytes()
                if used <= goal:
                    return out
                freed = self._delete_oldest((used - goal) / used, sent_only=sent_only, count_unsent=keep_unsent)
                if freed == (0, 0):
                    break
                out["pruned"] += freed[0]
                out["dropped_unsent"] += freed[1]
        return out

    def _delete_oldest(self, fraction: float, *, sent_only: bool, count_unsent: bool) -> tuple[int, int]:
        """Delete about `fraction` of each sample table's rows, oldest first; (deleted, unsent among them)."""
        deleted = unsent = 0
        newest_deleted_ms = None
        try:
            conn = self._connection()
            with conn.begin():
                for table in schema.sample_tables.values():
                    total = conn.execute(select(func.count()).select_from(table)).scalar_one()
                    want = min(total, max(1, int(total * fraction) + 1)) if total else 0
                    if not want:
                        continue
                    mark = conn.execute(select(_watermark(table.name))).scalar_one()
                    oldest = select(table.c.id, table.c.ts_ms).order_by(table.c.ts_ms, table.c.id).limit(want)
                    if sent_only:
                        oldest = oldest.where(table.c.id <= mark)
                    victims = conn.execute(oldest).all()
                    if not victims:
                        continue
                    ids = [v.id for v in victims]
                    for i in range(0, len(ids), 500):
                        conn.execute(delete(table).where(table.c.id.in_(ids[i:i + 500])))
                    deleted += len(ids)
                    if count_unsent:
                        unsent += sum(1 for v in victims if v.id > mark)
                    last = max(v.ts_ms for v in victims)
                    newest_deleted_ms = last if newest_deleted_ms is None else max(newest_deleted_ms, last)
                if newest_deleted_ms is not None:
                    # Samples up to there may be gone now: a rollup rebuild stops there.
                    rollups_mod.record_prune(conn, newest_deleted_ms + 1)
                if unsent:
                    self._bump(conn, "store.dropped_unsent", unsent, now_ms())
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not prune for size: {exc}", retryable=True) from exc
        return deleted, unsent

    # -- reading -------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Every counter by name."""
        with self.engine.connect() as conn:
            return {name: value for name, value in conn.execute(select(schema.counters.c.name, schema.counters.c.value))}

    def latest(self, group: str, device: str | None = None) -> dict[str, Any] | None:
        """The newest sample of a group (of one device if given), as a dict, or None."""
        table = schema.sample_tables[group]
        query = select(table).order_by(table.c.ts_ms.desc(), table.c.id.desc()).limit(1)
        if device is not None:
            query = query.where(table.c.device == device)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def rows(self, group: str, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Samples of a group with id above `after_id`, in id order."""
        table = schema.sample_tables[group]
        query = select(table).where(table.c.id > after_id).order_by(table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count(self, group: str) -> int:
        """How many samples of a group are stored."""
        table = schema.sample_tables[group]
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest collector errors, newest first."""
        t = schema.collector_errors
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t).order_by(t.c.id.desc()).limit(limit)).mappings()]

    # -- lifecycle -----------------------------------------------------------

    def _reset(self) -> None:
        if self.rollups is not None:
            self.rollups.reset()
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def close(self) -> None:
        """Close connections; the file stays consistent whatever happens next."""
        self._reset()
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
