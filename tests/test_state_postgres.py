"""The API's state in `[api] state_url`: the migrations on PostgreSQL and on a file of its own, and two
`kammthaar serve` sharing one PostgreSQL (tests/fixtures_fleet.py): a logout on one holds on the other,
failed logins are counted across both."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, insert

from api.access import Access, Grant
from api.machine_tokens import MachineTokens
from api.users import Users
from edge_store import migrate, schema
from edge_store.db import engine_for
from tests.fixtures_fleet import INSTALLER, PASSWORD

STATE_TABLES = {"users", "revoked_tokens", "login_failures", "machine_tokens", "user_sites"}


def state_metadata() -> MetaData:
    out = MetaData()
    for name in STATE_TABLES:
        schema.metadata.tables[name].to_metadata(out)
    return out


def test_postgresql_gets_the_state_tables_alone_up_down_and_up_again(postgres):
    url = postgres.database()
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.HEAD
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == STATE_TABLES | {"alembic_version"}
        with engine.connect() as conn:  # the code's tables, BIGINT millisecond times included
            diff = compare_metadata(MigrationContext.configure(conn), state_metadata())
        # Column comments are documentation of the code (SQLite keeps none, the migrations write none).
        assert [d for d in diff if "comment" not in str((d[0] if isinstance(d, list) else d)[0])] == []
        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.ensure_schema(url)
        assert migrate.current(url) == migrate.HEAD
        migrate.ensure_schema(url)  # at head: nothing to do
    finally:
        engine.dispose()
    users = Users(url)
    try:
        users.add("ana", PASSWORD, role="viewer", sites=("van-lisa",))
        far = 4_102_444_800_000  # 2100-01-01 in ms: beyond PostgreSQL's 32-bit INTEGER
        users.revoke("jti-1", "ana", far)
        assert users.is_revoked("jti-1") and users.authenticate("ana", PASSWORD, "c") is not None
        assert Access(users.engine).grant_of("ana") == Grant("viewer", ("van-lisa",))
        tokens = MachineTokens(users.engine)
        assert tokens.check(tokens.create("scraper", "metrics")).name == "scraper"
        users.remove("ana")
        assert Access(users.engine).grant_of("ana") is None
    finally:
        users.close()


def test_a_state_file_of_its_own_gets_no_store_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    migrate.upgrade(url)
    tables = {r[0] for r in sqlite3.connect(tmp_path / "state.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables - {"sqlite_sequence"} == STATE_TABLES | {"alembic_version"}


def test_the_migration_makes_every_existing_user_an_installer(tmp_path):
    db = tmp_path / "k.db"
    migrate.upgrade(db, "0007")
    engine = engine_for(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(insert(schema.users).values(username="old", password_hash="x", token_version=0,
                                                 created_ms=1, password_changed_ms=1))
    engine.dispose()
    migrate.upgrade(db)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT role, sites FROM v_users WHERE username = 'old'").fetchall()
    assert rows == [("installer", None)]
    migrate.downgrade(db, "0007")
    migrate.upgrade(db)


def test_a_logout_on_one_instance_is_refused_by_the_other(fleet):
    a, b = fleet.a.client(), fleet.b.client()
    resp = a.post("/login", json_body={"username": INSTALLER, "password": PASSWORD})
    refresh = resp.cookies()["refresh_token_cookie"].value
    assert b.post("/refresh", json_body={"refresh_token": refresh}).status == 200
    assert a.post("/logout", json_body={"refresh_token": refresh}).status == 200
    refused = b.post("/refresh", json_body={"refresh_token": refresh})
    assert refused.status == 401 and "revoked" in refused.json()["message"]


def test_failed_logins_are_throttled_across_both_instances(fleet):
    # One client (its own loopback address) guessing one user's password, alternating instances.
    servers = [fleet.a.client(source_address="127.0.0.9"), fleet.b.client(source_address="127.0.0.9")]
    wrong = {"username": "mallory-target", "password": "not-the-password"}
    for k in range(5):
        assert servers[k % 2].post("/login", json_body=wrong).status == 401
    for c in servers:
        blocked = c.post("/login", json_body=wrong)
        assert blocked.status == 429 and int(blocked.headers["retry-after"]) > 0
