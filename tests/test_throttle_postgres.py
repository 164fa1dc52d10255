"""Login throttling on a real PostgreSQL (`[api] state_url`, migrations up to the head, account ids of 0013
included): an attempt and another instance's transaction on the same rows never deadlock; account ids and
machine tokens there."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.dialects import postgresql

from api.auth import ACCESS, Tokens
from api.errors import Unauthorized
from api.machine_tokens import MachineTokens
from api.throttle import WINDOW_MS, Throttle
from api.users import Users
from edge_store import migrate, schema
from tests.fixtures_api import SECRET

NOW_MS = 1_800_000_000_000
EXPIRED, LIVE = "client:203.0.113.9", "user:ana"


def _waiting_for_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'")).scalar())


def test_an_attempt_and_another_instances_transaction_never_deadlock(postgres):
    url = postgres.database()
    migrate.upgrade(url)
    users = Users(url, clock_ms=lambda: NOW_MS)
    engine = users.engine
    try:
        with engine.begin() as conn:  # an ended window (a row the next attempt clears) and a live one
            conn.execute(text("INSERT INTO login_failures (key, failures, window_start_ms) VALUES "
                              "(:e, 3, :old), (:l, 2, :now)"), {"e": EXPIRED, "l": LIVE,
                                                                "old": NOW_MS - WINDOW_MS - 1, "now": NOW_MS})
        throttle = Throttle(engine, postgresql.insert, lambda: NOW_MS)
        other = engine.connect()  # another instance, in the middle of a transaction on user:ana
        other_tx = other.begin()
        other.execute(text("SELECT failures FROM login_failures WHERE key = :l FOR UPDATE"), {"l": LIVE})
        outcome: dict = {}

        def attempt():
            try:
                outcome["attempt"] = throttle.attempt("ana", "198.51.100.1")
            except Exception as exc:  # noqa: BLE001 - the test reports it
                outcome["error"] = exc

        worker = threading.Thread(target=attempt)
        worker.start()
        for _ in range(1200):  # until the attempt waits for user:ana (never a fixed sleep)
            if _waiting_for_a_lock(engine) or not worker.is_alive():
                break
            time.sleep(0.05)
        assert _waiting_for_a_lock(engine), outcome
        try:
            # The other instance now touches the ended row: the attempt must not be holding it.
            other.execute(text("UPDATE login_failures SET failures = failures WHERE key = :e"), {"e": EXPIRED})
            other_tx.commit()
        finally:
            other.close()
        worker.join(60)
        assert not worker.is_alive() and "error" not in outcome, outcome
        assert outcome["attempt"].user == LIVE
        with engine.connect() as conn:
            counts = dict(conn.execute(text("SELECT key, failures FROM login_failures")).all())
        assert counts == {LIVE: 3, "client:198.51.100.1": 1, "pair:ana@198.51.100.1": 1}
    finally:
        users.close()


def test_account_ids_on_postgresql_existing_users_and_a_name_given_again(postgres):
    url = postgres.database()
    migrate.upgrade(url, "0012")  # users from before the account ids
    engine = create_engine(url)
    with engine.begin() as conn:
        for name in ("old1", "old2"):
            conn.execute(insert(schema.users).values(username=name, password_hash="x", token_version=0,
                                                     created_ms=1, password_changed_ms=1))
    engine.dispose()
    migrate.upgrade(url)
    users = Users(url)
    try:
        ids = {u.username: u.account_id for u in users.list()}
        assert len(ids) == 2 and len(set(ids.values())) == 2 and all(len(i) == 32 for i in ids.values())
        tokens = Tokens(SECRET, access_ttl_s=900, refresh_ttl_s=3600, users=users)
        issued = tokens.issue("old1", 0, ids["old1"], ACCESS).token
        assert tokens.check(issued, ACCESS)["sub"] == "old1"
        users.remove("old1")
        users.add("old1", "another password 3")
        with pytest.raises(Unauthorized, match="no longer exists"):
            tokens.check(issued, ACCESS)
        machines = MachineTokens(users.engine)
        first = machines.create("scraper", "metrics")
        machines.revoke("scraper")
        again = machines.create("scraper", "metrics")
        assert machines.check(again).name == "scraper"
        with pytest.raises(Unauthorized):
            machines.check(first)
    finally:
        users.close()
