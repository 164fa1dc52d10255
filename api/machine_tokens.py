"""Machine tokens: long-lived, scoped, revocable API tokens for machines (a Prometheus scraper).

A user's access token lives 15 minutes, which no scraper can renew. A machine
token is a random secret (`kmt_` and 256 random bits), printed once by
`kammthaar token create NAME --scope SCOPE`; only its SHA-256 is stored (the
secret is random, so a fast hash is enough: nothing to guess from it). It is
valid until `kammthaar token revoke NAME`. Its scope says which resources it
opens: a resource lists the scopes it accepts in `scopes`; everything else
answers 403 to it. `metrics` opens /metrics (and /health, which needs no
token at all).

The rows live in `machine_tokens` (edge_store/schema.py, migration 0007),
reached through SQLAlchemy Core on the users' engine (api/users.py): the
store's SQLite file at the edge, PostgreSQL if a cloud deployment gives it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from edge_store.db import core_reading, core_writing
from edge_store.errors import StoreError
from edge_store.schema import machine_tokens
from edge_store.store import now_ms

from .errors import Unauthorized
from .users import Prepared, UserError

log = logging.getLogger("kammthaar.api")

PREFIX = "kmt_"
SCOPES = {"metrics": "/metrics and /health"}
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# `last used` is written at most this often per token: a scrape every 15 s costs no write each.
LAST_USED_EVERY_MS = 60_000


@dataclass(frozen=True)
class MachineToken:
    name: str
    scope: str
    created_ms: int
    last_used_ms: int | None


def is_machine_token(token: str) -> bool:
    return token.startswith(PREFIX)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_COLUMNS = (machine_tokens.c.name, machine_tokens.c.scope, machine_tokens.c.created_ms,
            machine_tokens.c.last_used_ms)
# Every request a machine token opens looks it up: compiled once (api/users.py `Prepared`).
_BY_HASH = select(*_COLUMNS).where(machine_tokens.c.token_hash == bindparam("token_hash"))


class MachineTokens:
    """The machine_tokens table on an SQLAlchemy engine (the users')."""

    def __init__(self, engine: Engine, *, clock_ms=now_ms):
        self._engine = engine
        self._clock_ms = clock_ms
        self._by_hash = Prepared(_BY_HASH, engine)

    def create(self, name: str, scope: str) -> str:
        """A new token for `name` with `scope`: the secret, to be shown once."""
        if not NAME.match(name or ""):
            raise UserError(f"token name {name!r} is not allowed: 1 to 64 letters, digits, '.', '_', '@' or '-'")
        if scope not in SCOPES:
            raise UserError(f"--scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            with core_writing(self._engine, "cannot write the machine tokens") as conn:
                conn.execute(insert(machine_tokens).values(name=name, scope=scope, token_hash=digest(token),
                                                           created_ms=self._clock_ms(), last_used_ms=None))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise UserError(f"a token named {name!r} exists already (revoke it first)") from exc
            raise
        return token

    def list(self) -> list[MachineToken]:
        with core_reading(self._engine, "cannot read the machine tokens") as conn:
            return [MachineToken(*r) for r in conn.execute(select(*_COLUMNS).order_by(machine_tokens.c.name))]

    def revoke(self, name: str) -> None:
        with core_writing(self._engine, "cannot write the machine tokens") as conn:
            count = conn.execute(delete(machine_tokens).where(machine_tokens.c.name == name)).rowcount
        if not count:
            raise UserError(f"no token named {name!r}")

    def check(self, token: str) -> MachineToken:
        """The token's row; Unauthorized when no such token exists (never created, or revoked)."""
        t = machine_tokens
        rows = self._by_hash.rows("cannot read the machine tokens", token_hash=digest(token))
        if not rows:
            raise Unauthorized("the machine token is not valid (unknown or revoked)")
        found = MachineToken(*rows[0])
        now = self._clock_ms()
        if found.last_used_ms is None or now - found.last_used_ms >= LAST_USED_EVERY_MS:
            try:
                with core_writing(self._engine, "cannot note the token's use") as conn:
                    conn.execute(update(t).where(t.c.name == found.name).values(last_used_ms=now))
            except StoreError as exc:  # a full disk must not refuse the scrape that would tell about it
                log.debug("%s", exc)
        return found
