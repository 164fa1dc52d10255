"""The store on a real SQLite file: migrations, WAL, ids never reused, sharing between processes."""

import sqlite3
import subprocess
import sys

from sqlalchemy import create_engine
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from edge_store import migrate, schema
from edge_store.registers import LIVE
from edge_store.store import Store
from tests.samples import LIVE_VALUES


def test_migrations_upgrade_from_empty_downgrade_to_base_and_upgrade_again(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path)
    assert migrate.current(path) == migrate.head()
    migrate.downgrade(path, "base")
    assert migrate.current(path) is None
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    assert tables <= {"alembic_version", "sqlite_sequence"}
    migrate.upgrade(path)
    assert migrate.current(path) == migrate.head()


def test_migrated_database_matches_the_code_schema(db_path):
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []


def test_database_is_in_wal_mode_with_normal_sync(store, db_path):
    store.insert_sample(LIVE, 1000, True, "epever", LIVE_VALUES)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    full = Store(db_path, synchronous="FULL")
    with full.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    full.close()


def test_row_ids_are_never_reused_after_everything_was_pruned(store):
    ids = [store.insert_sample(LIVE, 1000 + i, True, "epever", LIVE_VALUES) for i in range(5)]
    assert ids == sorted(ids)
    assert store.prune(before_ms=10**15) == 5
    assert store.count(LIVE) == 0
    new_id = store.insert_sample(LIVE, 2000, True, "epever", LIVE_VALUES)
    assert new_id > max(ids)


def test_sample_round_trips_with_time_and_ntp_flag(store):
    row_id = store.insert_sample(LIVE, 1_764_000_000_123, False, "epever", LIVE_VALUES)
    row = store.latest(LIVE)
    assert row["id"] == row_id and row["ts_ms"] == 1_764_000_000_123 and row["ntp_synced"] is False
    for key, value in LIVE_VALUES.items():
        assert row[key] == value, key


def test_partial_sample_is_refused(store):
    partial = dict(LIVE_VALUES)
    del partial["battery_voltage"]
    try:
        store.insert_sample(LIVE, 1000, True, "epever", partial)
    except Exception as exc:  # noqa: BLE001 - any refusal will do, but it must refuse
        assert "battery_voltage" in str(exc)
    else:
        raise AssertionError("a sample without battery_voltage was stored")
    assert store.count(LIVE) == 0


def test_errors_are_counted_by_kind(store):
    store.record_error("timeout", "input:0x3100+18", "no answer", device="epever")
    store.record_error("timeout", "input:0x3100+18", "no answer", device="epever")
    store.record_error("crc", "input:0x3200+3", "bad frame", device="epever")
    assert store.counters() == {"modbus_errors.timeout": 2, "modbus_errors.crc": 1}
    assert [e["kind"] for e in store.errors()] == ["crc", "timeout", "timeout"]


WRITER = """
import sys
from edge_store.store import Store
from tests.samples import LIVE_VALUES
s = Store(sys.argv[1])
for i in range(300):
    s.insert_sample("live", i, True, sys.argv[2], LIVE_VALUES)
s.close()
"""


def test_two_processes_write_the_same_file_without_busy_errors(db_path, processes):
    procs = [processes.start([sys.executable, "-c", WRITER, str(db_path), name], f"writer-{name}")
             for name in ("a", "b")]
    # A reader in this process at the same time.
    reader = Store(db_path, readonly=True)
    while any(p.alive() for p in procs):
        reader.count(LIVE)
    for p in procs:
        assert p.wait() == 0, p.log()
    assert reader.count(LIVE) == 600
    reader.close()


def test_field_views_answer_in_the_sqlite3_shell(store, db_path):
    store.insert_sample(LIVE, 1000, True, "epever", LIVE_VALUES)
    store.record_error("timeout", "input:0x3100+18", "no answer", device="epever")
    out = subprocess.run(["sqlite3", str(db_path), "SELECT battery_state, charging_stage, battery_voltage FROM v_latest;"
                          "SELECT kind FROM v_errors; SELECT count(*) FROM v_last_hour;"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["NORMAL|BOOST|13.1", "timeout", "0"]  # the sample is from 1970: not in the last hour


def test_head_constant_is_alembics_head(tmp_path):
    assert migrate.HEAD == migrate.head()
    path = tmp_path / "e.db"
    migrate.ensure_schema(path)
    assert migrate.current(path) == migrate.HEAD
    migrate.ensure_schema(path)  # at head already: nothing to do


def test_prune_on_a_locked_database_is_a_store_error_not_a_crash(db_path):
    from edge_store.errors import StoreError

    store = Store(db_path, busy_timeout_ms=100)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        try:
            store.prune(before_ms=10**15)
        except StoreError as exc:
            assert exc.retryable and "locked" in str(exc)
        else:
            raise AssertionError("prune on a locked database did not fail")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.prune(before_ms=10**15) == 0  # the store works again once the lock is gone
    store.close()
