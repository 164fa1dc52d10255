"""Login throttling on a real PostgreSQL (`[api] state_url`, migrations up to the head, account ids of 0013
included): an attempt and another instance's transaction on the same rows never deadlock."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from api.throttle import WINDOW_MS, Throttle
from api.users import Users
from edge_store import migrate

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
