"""Login throttling: failed logins counted per (client, user) pair, per client and per user.

Every attempt is recorded as a failure *before* its password is hashed, in
one writing transaction that also decides whether the attempt may go on
(the upserts' RETURNING gives each key's count; on SQLite `BEGIN IMMEDIATE`
serialises them, on PostgreSQL the upserted rows stay locked until the
commit). A refused attempt rolls its own counts back, so nothing above a
limit is ever hashed, however many arrive together. A successful login takes
its provisional failure back (and clears its pair). A client refused already
is refused on a read first, without taking the store's write lock: a flood
from a blocked address costs no write.

What is refused (429, Retry-After: until the key's window ends):
- a pair with PAIR_LIMIT failures (one client guessing one user's password);
- a client with CLIENT_LIMIT failures (one client spraying many users);
- a client that has already failed for a user once that user has USER_LIMIT
  failures from anywhere: under a distributed guess each address gets one
  guess per window, while a client that has not failed for that user (the
  owner on their own device) is never refused because of other clients'
  failures. The per-user protection is a growing cost, not a lock-out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.engine import Engine

from edge_store.db import core_reading, core_writing
from edge_store.errors import KammthaarError
from edge_store.schema import login_failures

WINDOW_MS = 15 * 60 * 1000
PAIR_LIMIT = 5      # one user from one client: guessing one password
CLIENT_LIMIT = 20   # one client, any users: password spraying
USER_LIMIT = 10     # one user, any clients: beyond it, each client that failed for it waits for the window
NAME_CHARS = 128


class Throttled(KammthaarError):
    """Too many failed logins for a user or a client: try again in `retry_after_s`."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    """The keys an allowed attempt was counted against (taken back by `succeeded`)."""

    pair: str
    client: str
    user: str


def keys(username: str, client: str) -> Attempt:
    name = username[:NAME_CHARS]
    return Attempt(pair=f"pair:{name}@{client}", client=f"client:{client}", user=f"user:{name}")


class Throttle:
    """The login_failures table on the users' engine; `insert` is the dialect's upserting insert."""

    def __init__(self, engine: Engine, insert, clock_ms):
        self._engine = engine
        self._insert = insert
        self._clock_ms = clock_ms

    def attempt(self, username: str, client: str) -> Attempt:
        """Count an attempt as a failure, atomically with the decision; raises Throttled (nothing counted)."""
        now = self._clock_ms()
        k = keys(username, client)
        lf = login_failures
        with core_reading(self._engine, "cannot read the failed logins") as conn:
            rows = conn.execute(select(lf.c.key, lf.c.failures, lf.c.window_start_ms).where(
                lf.c.key.in_([k.pair, k.client, k.user]), lf.c.window_start_ms > now - WINDOW_MS)).all()
        seen = {key: (failures, start) for key, failures, start in rows}
        self._decide(k, {key: (n + 1, start) for key, (n, start) in seen.items()}, now)
        # Old rows go first, in a transaction of their own that waits for no other (rows another
        # attempt holds are left for later): the table stays small. Within the counting transaction
        # this delete locked rows in table order, and another instance's attempt holding one of them
        # while waiting for this one's key was a deadlock on PostgreSQL. The counting transaction
        # locks its three keys only, always pair, client, user: no cycle. A window that ended
        # starts again at 0 in `_count` whether or not its row went.
        with core_writing(self._engine, "cannot record the login attempt") as conn:
            conn.execute(delete(lf).where(lf.c.key.in_(
                select(lf.c.key).where(lf.c.window_start_ms <= now - WINDOW_MS).with_for_update(skip_locked=True))))
        with core_writing(self._engine, "cannot record the login attempt") as conn:
            counted = {key: self._count(conn, key, now) for key in (k.pair, k.client, k.user)}
            self._decide(k, counted, now)  # raised inside: the transaction rolls this attempt back
        return k

    @staticmethod
    def _decide(k: Attempt, counted: dict[str, tuple[int, int]], now: int) -> None:
        """Raise Throttled when the attempt may not go on; `counted`: (failures including this attempt,
        window start) per key (a key without a row has had no failure)."""
        pair, pair_start = counted.get(k.pair, (1, now))
        client_n, client_start = counted.get(k.client, (1, now))
        user_n, user_start = counted.get(k.user, (1, now))
        refused_until = None
        if pair - 1 >= PAIR_LIMIT:
            refused_until = pair_start
        elif client_n - 1 >= CLIENT_LIMIT:
            refused_until = client_start
        elif user_n - 1 >= USER_LIMIT and pair - 1 >= 1:
            refused_until = user_start
        if refused_until is not None:
            raise Throttled("too many failed logins: try again later",
                            retry_after_s=max(1, -(-(refused_until + WINDOW_MS - now) // 1000)))

    def _count(self, conn, key: str, now: int) -> tuple[int, int]:
        lf = login_failures
        expired = lf.c.window_start_ms <= now - WINDOW_MS
        upsert = self._insert(lf).values(key=key, failures=1, window_start_ms=now, blocked_until_ms=None)
        upsert = upsert.on_conflict_do_update(index_elements=[lf.c.key], set_={
            "failures": case((expired, 1), else_=lf.c.failures + 1),
            "window_start_ms": case((expired, now), else_=lf.c.window_start_ms),
        }).returning(lf.c.failures, lf.c.window_start_ms)
        failures, start = conn.execute(upsert).one()
        return failures, start

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: its pair is cleared, the client's and user's provisional failure taken back."""
        lf = login_failures
        with core_writing(self._engine, "cannot record the login") as conn:
            conn.execute(delete(lf).where(lf.c.key == attempt.pair))
            conn.execute(update(lf).where(lf.c.key.in_([attempt.client, attempt.user]), lf.c.failures > 0)
                         .values(failures=lf.c.failures - 1))

    def forget_user(self, username: str):
        """The statement removing a user's own count (with the user)."""
        return delete(login_failures).where(login_failures.c.key == keys(username, "").user)
