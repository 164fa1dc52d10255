"""The one owner of the SQLite file: connections, pragmas, transactions, error translation.

One `Database` per file (datasette's habit). Everything that opens the store
goes through it: the collector's Store and its rollups, the replicator's
Outbox, migrations, `kammthaar status`, the API's local source and its users.

- Pragmas in one place: WAL so the collector, the replicator and the API share
  the file; a busy timeout so a writer waits instead of failing; small pages
  (what an SD card pays per commit); a longer WAL between checkpoints; `synchronous`; foreign keys.
- `writing(what)`: this thread's writer connection inside `BEGIN IMMEDIATE`,
  so two writers queue on the lock up front instead of dead-locking on an
  upgrade; committed on the way out, rolled back on any exception.
- `reading(what)`: one snapshot (deferred `BEGIN`, so writers never wait).
  A read-only Database keeps one connection per thread and stat()s the file
  first: a file that went away is a StoreError, a replaced one is reopened,
  never read through a stale handle. A writable Database reads on its writer.
- Both translate driver errors (sqlite3.Error, SQLAlchemyError) into
  StoreError in one place, `what` naming what we were doing; busy, locked and
  I/O errors (OperationalError) are retryable.
- `engine`: SQLAlchemy on the same file with the same pragmas, for the jobs it
  does well: typed reads through the schema, Alembic, and queries that must
  also run on PostgreSQL (`engine_for(url)`, the API's users). Its
  transactions are deferred; `core_writing` makes them `BEGIN IMMEDIATE`.

The raw driver connections are the hot path (one sample, one transaction);
SQLAlchemy's statement layer would double its cost.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool, QueuePool

from .errors import StoreError

BUSY_TIMEOUT_MS = 10_000
# Small pages: each commit rewrites a few whole pages (row, index, sequence), so the
# page size is what an SD card pays per sample. Only takes effect when the file is created.
PAGE_SIZE = 1024
# Pages in the WAL before a commit checkpoints them into the file (SQLite's default is 1000). A
# checkpoint copies each distinct page once, and the same few pages (the tables' last leaves, the
# day rows) recur in most commits: a longer WAL copies fewer pages per sample (bench/store_bytes.py:
# about 150 bytes per sample less at the defaults) for a WAL of up to 4 MB.
WAL_AUTOCHECKPOINT_PAGES = 4000
SYNCHRONOUS = ("NORMAL", "FULL")
DRIVER_ERRORS = (sqlite3.Error, sa_exc.SQLAlchemyError)

# Execution option a SQLAlchemy connection carries when its transaction must take the write lock.
_IMMEDIATE = "kammthaar_immediate"


def translate(exc: BaseException, what: str) -> StoreError:
    """The StoreError for a driver error: what we were doing, what the driver said, and
    whether trying again can help (busy, locked, I/O: OperationalError)."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's own error
    # DB-API 2 drivers (sqlite3, psycopg) all name their busy/connection errors OperationalError.
    retryable = isinstance(exc, sa_exc.OperationalError) or any(
        cls.__name__ == "OperationalError" for cls in type(orig).__mro__)
    return StoreError(f"{what}: {orig}", retryable=retryable)


def dicts(cur: sqlite3.Cursor) -> list[dict]:
    """The cursor's remaining rows as dicts keyed by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


@contextmanager
def translated(what: str, driver_errors: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Driver errors raised inside come out as StoreError (see `translate`); `driver_errors` adds
    another driver's base class (a raw DBAPI connection of PostgreSQL raises its own)."""
    try:
        yield
    except (*DRIVER_ERRORS, *driver_errors) as exc:
        raise translate(exc, what) from exc


@contextmanager
def core_reading(engine: Engine, what: str) -> Iterator[Connection]:
    """A SQLAlchemy connection of `engine` for reads (one deferred transaction), errors translated."""
    with translated(what), engine.connect() as conn:
        yield conn


@contextmanager
def core_writing(engine: Engine, what: str) -> Iterator[Connection]:
    """A SQLAlchemy connection of `engine` in a transaction committed on the way out (on SQLite
    `BEGIN IMMEDIATE`), errors translated."""
    with translated(what), engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def engine_for(url: str, *, create: bool = False) -> Engine:
    """A SQLAlchemy engine on `url`: an SQLite file gets this module's pragmas and transactions
    (`Database.engine`; the file is created only with `create`), any other database
    SQLAlchemy's defaults."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(f"{url}: an SQLite URL must name a file")
        return Database(parsed.database, create=create).engine
    return create_engine(parsed, pool_pre_ping=True)


class Database:
    """One SQLite file: its pragmas, connections, transactions and error translation.

    Thread-safe: each thread gets its own raw connections. `readonly` opens
    the file read-only (`mode=ro`); `create=False` never creates a file where
    the store should be (`mode=rw`).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, synchronous: str = "NORMAL",
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS, create: bool = True):
        if synchronous not in SYNCHRONOUS:
            raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = str(path)
        self.readonly = readonly
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.create = create and not readonly
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: set[sqlite3.Connection] = set()  # the cached ones, closed by close()
        self._generation = 0  # bumped by close(): every thread's cached connection is stale then
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        return f"Database({self.path!r}{', readonly' if self.readonly else ''})"

    # -- connections ------------------------------------------------------------------

    def connect(self, *, readonly: bool | None = None) -> sqlite3.Connection:
        """A new connection with our pragmas (the caller closes it); raises sqlite3.Error."""
        readonly = self.readonly if readonly is None else readonly
        if readonly:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False)
        elif not self.create:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, isolation_level=None,
                                   check_same_thread=False)
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # isolation_level=None: we issue BEGIN ourselves; the driver must not.
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            if not readonly:
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _cached(self, slot: str, what: str) -> sqlite3.Connection:
        """This thread's connection in `slot` ("writer" or "reader"), opened when missing or stale.

        A reader first stat()s the file: gone is a StoreError, replaced is a new connection.
        """
        entry = getattr(self._local, slot, None)
        if entry is not None and entry[2] == self._generation:
            if slot == "writer" or entry[0].in_transaction:  # an outer context holds a reader: kept
                return entry[0]
        identity = None
        if slot == "reader":
            try:
                st = os.stat(self.path)
            except OSError as exc:
                self._drop(slot)
                raise StoreError(f"{what}: {exc.strerror}", retryable=True) from None
            identity = (st.st_dev, st.st_ino)
            if entry is not None and entry[1] == identity and entry[2] == self._generation:
                return entry[0]
        self._drop(slot)
        try:
            conn = self.connect(readonly=slot == "reader")
        except sqlite3.Error as exc:
            raise translate(exc, what) from exc
        with self._lock:
            self._opened.add(conn)
        setattr(self._local, slot, (conn, identity, self._generation))
        return conn

    def _drop(self, slot: str) -> None:
        entry = getattr(self._local, slot, None)
        if entry is not None:
            setattr(self._local, slot, None)
            with self._lock:
                self._opened.discard(entry[0])
            entry[0].close()

    def forget(self) -> None:
        """Close this thread's connections (after a failure): the next use opens new ones."""
        self._drop("writer")
        self._drop("reader")

    # -- transactions -----------------------------------------------------------------

    @contextmanager
    def writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """This thread's writer inside `BEGIN IMMEDIATE`: committed on the way out, rolled back on
        any exception; a driver error comes out as StoreError("{what}: ...") and the connection
        is closed. Nested in another context of this thread: joins its transaction."""
        if self.readonly:
            raise StoreError(f"{what}: {self.path} was opened read-only")
        conn = self._cached("writer", what)
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            self._drop("writer")  # closing rolls back whatever is still open
            raise translate(exc, what) from exc

    @contextmanager
    def reading(self, what: str) -> Iterator[sqlite3.Connection]:
        """A connection inside one deferred transaction (one snapshot; writers never wait), ended on
        the way out; a driver error comes out as StoreError("{what}: ...") and the connection is
        closed. Read-only: this thread's reader, reopened when the file was replaced. Writable:
        this thread's writer. Nested in another context of this thread: joins its transaction."""
        slot = "reader" if self.readonly else "writer"
        conn = self._cached(slot, what)
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            self._drop(slot)
            raise translate(exc, what) from exc

    def check(self, what: str) -> None:
        """Whether the file can be opened (a reader stat()s it): a StoreError if not."""
        self._cached("reader" if self.readonly else "writer", what)

    def query(self, what: str, sql: str, params=()) -> sqlite3.Cursor:
        """One statement on this thread's reader (writable: its writer), fetched by the caller.

        A single statement is its own snapshot, so no BEGIN/COMMIT around it: the API's
        hot path pays one execute. Inside a `reading` context of this thread it joins that
        snapshot. Errors as in `reading`."""
        slot = "reader" if self.readonly else "writer"
        conn = self._cached(slot, what)
        try:
            return conn.execute(sql, params)
        except DRIVER_ERRORS as exc:
            if not conn.in_transaction:
                self._drop(slot)
            raise translate(exc, what) from exc

    # -- SQLAlchemy ---------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """SQLAlchemy on this file, with the same pragmas (made on first use).

        Read-only: a new connection each time (a replaced file is seen); writable:
        a small pool. Transactions are deferred unless `core_writing` asks for
        `BEGIN IMMEDIATE`.
        """
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> Engine:
        pool = {"poolclass": NullPool} if self.readonly else {"poolclass": QueuePool, "pool_size": 2,
                                                              "max_overflow": 2}
        engine = create_engine(f"sqlite:///{self.path}", creator=self.connect, **pool)
        readonly = self.readonly

        @event.listens_for(engine, "begin")
        def _begin(conn):
            immediate = not readonly and conn.get_execution_options().get(_IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def core_reading(self, what: str):
        """`core_reading` on this file's engine."""
        return core_reading(self.engine, what)

    def core_writing(self, what: str):
        """`core_writing` on this file's engine."""
        if self.readonly:
            raise StoreError(f"{what}: {self.path} was opened read-only")
        return core_writing(self.engine, what)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this Database opened, in every thread; it may be used again."""
        with self._lock:
            opened, self._opened = self._opened, set()
            self._generation += 1
            engine, self._engine = self._engine, None
        for conn in opened:
            try:
                conn.close()
            except sqlite3.Error:  # closing a connection another thread is using: it fails there
                pass
        self._local = threading.local()
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
