"""The one owner of the SQLite file (edge_store/db.py) on real files: replaced files, errors, writers."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
from sqlalchemy import text

from api.users import Users
from edge_store import migrate
from edge_store.db import Database, core_writing, engine_for
from edge_store.errors import StoreError


def make_file(path, value: int) -> None:
    """A database file in WAL mode (as migrations make it) holding one row `value`, by plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        conn.execute("INSERT INTO t (id, value) VALUES (1, ?)", (value,))
        conn.commit()
    finally:
        conn.close()


def read_value(db: Database) -> int:
    with db.reading("reading t") as conn:
        return conn.execute("SELECT value FROM t WHERE id = 1").fetchone()[0]


def test_a_reader_reopens_a_replaced_file_and_reports_a_removed_one(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 1)
    db = Database(path, readonly=True)
    try:
        assert read_value(db) == 1
        # Replaced under the open connection (a restore, or `mv` of a copy): the new file is read.
        make_file(tmp_path / "copy.db", 2)
        os.replace(tmp_path / "copy.db", path)
        assert read_value(db) == 2
        # Gone: a retryable StoreError naming what we were doing, not an answer from the old handle.
        path.rename(tmp_path / "away.db")
        with pytest.raises(StoreError, match="^reading t: ") as caught:
            read_value(db)
        assert caught.value.retryable
        (tmp_path / "away.db").rename(path)
        assert read_value(db) == 2
    finally:
        db.close()


def test_a_busy_database_is_a_retryable_store_error_and_a_refused_row_is_not(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 1)
    db = Database(path, busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="^storing a row: database is locked") as caught:
            with db.writing("storing a row") as conn:
                conn.execute("UPDATE t SET value = 5")
        assert caught.value.retryable
        # The same through SQLAlchemy, translated in the same place.
        with pytest.raises(StoreError, match="locked") as caught:
            with db.core_writing("storing a row") as conn:
                conn.execute(text("UPDATE t SET value = 5"))
        assert caught.value.retryable
    finally:
        other.execute("ROLLBACK")
        other.close()
    with pytest.raises(StoreError, match="^storing a row: UNIQUE constraint failed") as caught:
        with db.writing("storing a row") as conn:
            conn.execute("INSERT INTO t (id, value) VALUES (1, 9)")
    assert not caught.value.retryable
    with pytest.raises(StoreError, match="UNIQUE constraint failed") as caught:
        with db.core_writing("storing a row") as conn:
            conn.execute(text("INSERT INTO t (id, value) VALUES (1, 9)"))
    assert not caught.value.retryable
    # Nothing of the failed transactions stayed, and the Database works again.
    with db.writing("storing a row") as conn:
        conn.execute("UPDATE t SET value = value + 1")
    assert read_value(db) == 2
    db.close()


def test_an_exception_inside_a_writing_transaction_rolls_it_back(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 1)
    with Database(path) as db:
        with pytest.raises(KeyError):
            with db.writing("storing a row") as conn:
                conn.execute("UPDATE t SET value = 7")
                raise KeyError("refused after the UPDATE")
        assert read_value(db) == 1


def test_a_read_only_database_refuses_to_write(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 1)
    with Database(path, readonly=True) as db:
        with pytest.raises(StoreError, match="read-only"):
            with db.writing("storing a row"):
                pass
        with pytest.raises(StoreError, match="readonly database"):
            with db.reading("sneaking a write") as conn:
                conn.execute("UPDATE t SET value = 5")


def test_begin_immediate_serialises_two_writers_doing_read_modify_write(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 0)
    first, second = Database(path), Database(path)  # two owners, as two processes would have
    inside, trying = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_then_increment():
        try:
            with first.writing("incrementing") as conn:
                value = conn.execute("SELECT value FROM t").fetchone()[0]
                inside.set()
                trying.wait(30)  # the other writer is at its BEGIN now, or about to be
                conn.execute("UPDATE t SET value = ?", (value + 1,))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def increment_many(db, n):
        try:
            for _ in range(n):
                with db.writing("incrementing") as conn:
                    value = conn.execute("SELECT value FROM t").fetchone()[0]
                    conn.execute("UPDATE t SET value = ?", (value + 1,))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    holder = threading.Thread(target=hold_then_increment)
    holder.start()
    inside.wait(30)
    trying.set()
    increment_many(second, 1)  # waits for the holder's COMMIT, then reads its value: no lost update
    holder.join()
    # And many at once, from two threads and two Databases.
    threads = [threading.Thread(target=increment_many, args=(db, 200)) for db in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert read_value(first) == 402
    first.close()
    second.close()


def test_nested_reads_share_one_snapshot(tmp_path):
    path = tmp_path / "store.db"
    make_file(path, 1)
    with Database(path, readonly=True) as reader, Database(path) as writer:
        with reader.reading("outer") as outer:
            assert outer.execute("SELECT value FROM t").fetchone()[0] == 1
            with writer.writing("writing meanwhile") as conn:
                conn.execute("UPDATE t SET value = 2")
            assert read_value(reader) == 1  # the inner read joins the outer snapshot
        assert read_value(reader) == 2


def test_the_sqlalchemy_engine_has_the_pragmas_and_an_sqlite_url_never_creates_the_file(tmp_path):
    path = tmp_path / "store.db"
    migrate.upgrade(path)
    with Database(path, synchronous="FULL") as db, db.core_writing("checking") as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 1024
    engine = engine_for(f"sqlite:///{tmp_path / 'nowhere.db'}")
    with pytest.raises(StoreError, match="unable to open"):
        with core_writing(engine, "opening"):
            pass
    engine.dispose()
    assert not (tmp_path / "nowhere.db").exists()
    # The users on an SQLAlchemy URL, or on the store's path: the same rows.
    by_url, by_path = Users(f"sqlite:///{path}"), Users(path)
    try:
        by_url.add("alice", "alice-password-1")
        assert by_path.get("alice").username == "alice"
    finally:
        by_url.close()
        by_path.close()
