"""The SQLite store: engine set-up, writing samples and errors, reading them back.

WAL mode so the collector, the replicator and the API share one file; a busy
timeout so a writer waits instead of failing; `BEGIN IMMEDIATE` for writes so
two writers queue on the lock up front instead of dead-locking on an upgrade.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from . import schema
from .errors import StoreError

BUSY_TIMEOUT_MS = 10_000


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


class Store:
    """The edge store on one SQLite file. Not thread-safe: one per thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", readonly: bool = False):
        self.path = str(path)
        self.readonly = readonly
        self.engine = make_engine(self.path, synchronous=synchronous, readonly=readonly)
        self._conn = None
        self._insert = {group: insert(table) for group, table in schema.sample_tables.items()}

    # -- writing -------------------------------------------------------------

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.engine.connect()
        return self._conn

    def insert_sample(self, group: str, ts_ms: int, ntp_synced: bool, device: str,
                      values: Mapping[str, Any]) -> int:
        """Store one sample of a register group in its own transaction; return its row id."""
        row = {"ts_ms": ts_ms, "ntp_synced": ntp_synced, "device": device, **values}
        conn = self._connection()
        try:
            with conn.begin():
                result = conn.execute(self._insert[group], row)
                return result.inserted_primary_key[0]
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not store {group} sample: {exc.orig if hasattr(exc, 'orig') else exc}",
                             retryable=isinstance(exc, OperationalError)) from exc

    def insert_samples(self, group: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store many samples of one group in one transaction; return how many."""
        rows = list(rows)
        if not rows:
            return 0
        conn = self._connection()
        try:
            with conn.begin():
                conn.execute(self._insert[group], rows)
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not store {len(rows)} {group} samples: {exc}",
                             retryable=isinstance(exc, OperationalError)) from exc
        return len(rows)

    def record_error(self, kind: str, block: str, detail: str, *, device: str, ts_ms: int | None = None) -> None:
        """Log one collector error and count it under `modbus_errors.<kind>`."""
        ts_ms = now_ms() if ts_ms is None else ts_ms
        conn = self._connection()
        try:
            with conn.begin():
                conn.execute(schema.collector_errors.insert(),
                             {"ts_ms": ts_ms, "device": device, "kind": kind, "block": block, "detail": detail[:500]})
                self._bump(conn, f"modbus_errors.{kind}", 1, ts_ms)
        except SQLAlchemyError as exc:
            self._reset()
            raise StoreError(f"could not record error: {exc}", retryable=True) from exc

    def increment(self, name: str, by: int = 1) -> None:
        """Add to a named counter (created at zero)."""
        conn = self._connection()
        try:
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

    def prune(self, before_ms: int) -> int:
        """Delete samples and error lines older than `before_ms`; return rows deleted."""
        deleted = 0
        conn = self._connection()
        with conn.begin():
            for table in (*schema.sample_tables.values(), schema.collector_errors):
                deleted += conn.execute(delete(table).where(table.c.ts_ms < before_ms)).rowcount
        return deleted

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
