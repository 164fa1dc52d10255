"""Users of the API, their password hashes, revoked refresh tokens and login throttling.

Passwords are kept as salted scrypt hashes (`hashlib.scrypt`, memory-hard and
slow on purpose), with their parameters in the stored text so they can be
raised later without invalidating older hashes. A login for a user that does
not exist costs the same hash, so timing does not tell which users exist.

Every account has a random `account_id` (migration 0013), carried by its
tokens: a user removed and added again is another account, and the tokens
of the first are refused (its token_version starts again at 0, its account
id does not come back).

Everything lives in the tables `users`, `revoked_tokens` and `login_failures`
(edge_store/schema.py, migrations 0004 and 0013; roles and sites: `user_sites`,
0014, api/access.py; the throttling is api/throttle.py's), reached through
SQLAlchemy Core on an engine URL: at the edge the store's SQLite file (the
only rows the API writes), with the file's pragmas and `BEGIN IMMEDIATE`
writes from edge_store/db.py; a cloud deployment may give a PostgreSQL URL.
Every worker process of the server sees the same users, revocations and
throttling. The engine keeps its connections open, so tokens stay checkable
while the store's file is moved away (the data sources then answer 503).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from edge_store.db import core_reading, core_writing, engine_for, translated
from edge_store.errors import KammthaarError, StoreError
from edge_store.schema import revoked_tokens, user_sites, users
from edge_store.store import now_ms

from .throttle import CLIENT_LIMIT, PAIR_LIMIT, USER_LIMIT, Throttle, Throttled  # noqa: F401 (re-exported)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

class UserError(KammthaarError):
    """A user name or password that cannot be used (the message says why)."""


# -- hashing --------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash as `scrypt$N$r$p$salt$hash`."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM,
                            dklen=HASH_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` hashes to `stored` (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of nothing anybody types, checked when the user does not exist (made once)."""
    return hash_password(secrets.token_urlsafe(16))


def check_username(name: str) -> str:
    if not USERNAME.match(name or ""):
        raise UserError(f"user name {name!r} is not allowed: 1 to 64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD} characters")
    return password


@dataclass(frozen=True)
class User:
    username: str
    token_version: int
    created_ms: int
    password_changed_ms: int
    account_id: str


_UPSERTING_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_USER_COLUMNS = (users.c.username, users.c.token_version, users.c.created_ms, users.c.password_changed_ms,
                 users.c.account_id)


# The reads every authenticated request makes: compiled once per dialect (see `Prepared`).
_IDENTITY = select(users.c.token_version, users.c.account_id).where(users.c.username == bindparam("username"))
_REVOKED = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == bindparam("jti"))


class Prepared:
    """A Core statement compiled once for an engine's dialect, run on a pooled DBAPI connection.

    Executing a Core statement costs about 0.3 ms on this hardware (building, cache
    key, events, transaction), 40 times the query itself; the token checks run on
    every request, so they skip that layer: the same SQL, 0.02 ms.
    """

    def __init__(self, statement, engine):
        compiled = statement.compile(dialect=engine.dialect)
        self._engine = engine
        self._compiled = compiled
        self._sql = str(compiled)
        self._order = compiled.positiontup if engine.dialect.positional else None
        self._driver_errors = (engine.dialect.loaded_dbapi.Error,)

    def rows(self, what: str, **values) -> list:
        bound = self._compiled.construct_params(values)
        params = [bound[name] for name in self._order] if self._order is not None else bound
        with translated(what, self._driver_errors):
            conn = self._engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute(self._sql, params)
                return cur.fetchall()
            finally:
                conn.close()  # back to the pool, its transaction ended


def store_url(path: str | Path) -> str:
    """The SQLAlchemy URL of the store's SQLite file."""
    return f"sqlite:///{path}"


class Users:
    """The users table and its companions (migrated to 0004 or later) on an SQLAlchemy URL.

    `target` is the URL, or the store's file path (`store_url`). On SQLite the
    file is never created: it must be the migrated store.
    """

    def __init__(self, target: str | Path, *, clock_ms=now_ms):
        self.url = target if isinstance(target, str) and "://" in target else store_url(target)
        self._clock_ms = clock_ms
        self._engine = engine_for(self.url)
        # Upserts are spelled per dialect (both have ON CONFLICT).
        self._insert = _UPSERTING_INSERT.get(self._engine.dialect.name)
        if self._insert is None:
            self._engine.dispose()
            raise StoreError(f"the users need SQLite or PostgreSQL, not {self._engine.dialect.name}")
        self._identity = Prepared(_IDENTITY, self._engine)
        self._throttle = Throttle(self._engine, self._insert, clock_ms)
        self._revoked = Prepared(_REVOKED, self._engine)

    # -- connections ------------------------------------------------------------------

    def connect(self) -> None:
        """Open a connection now (at worker start) rather than at the first request; the engine keeps it."""
        with core_reading(self._engine, "cannot open the users"):
            pass

    def _read(self, statement) -> list:
        with core_reading(self._engine, "cannot read the users") as conn:
            return conn.execute(statement).all()

    def _write(self, statements) -> list[int]:
        """Run the statements in one writing transaction; their rowcounts."""
        with core_writing(self._engine, "cannot write the users") as conn:
            return [conn.execute(statement).rowcount for statement in statements]

    @property
    def engine(self):
        """The SQLAlchemy engine (the machine tokens share it: api/machine_tokens.py)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # -- users ------------------------------------------------------------------------

    def get(self, username: str) -> User | None:
        rows = self._read(select(*_USER_COLUMNS).where(users.c.username == username))
        return User(*rows[0]) if rows else None

    def identity(self, username: str) -> tuple[int, str] | None:
        """(token version, account id) that every valid token of the user carries, or None when the user is gone."""
        rows = self._identity.rows("cannot read the users", username=username)
        return (rows[0][0], rows[0][1]) if rows else None

    def list(self) -> list[User]:
        return [User(*r) for r in self._read(select(*_USER_COLUMNS).order_by(users.c.username))]

    def add(self, username: str, password: str, *, role: str = "installer", sites: tuple[str, ...] = ()) -> User:
        """A new user: an installer (every site) unless `role` says viewer of `sites` (api/access.py)."""
        check_username(username)
        hashed = hash_password(check_password(password))
        now = self._clock_ms()
        account_id = secrets.token_hex(16)
        statements = [insert(users).values(username=username, password_hash=hashed, token_version=0,
                                           created_ms=now, password_changed_ms=now, role=role,
                                           account_id=account_id)]
        statements += [insert(user_sites).values(username=username, site=site) for site in sites]
        try:
            self._write(statements)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # the unique user name
                raise UserError(f"user {username!r} exists already (change the password with `user passwd`)") from exc
            raise
        return User(username, 0, now, now, account_id)

    def set_password(self, username: str, password: str) -> None:
        """New password; every token issued before is no longer accepted."""
        hashed = hash_password(check_password(password))
        (count,) = self._write([update(users).where(users.c.username == username).values(
            password_hash=hashed, token_version=users.c.token_version + 1, password_changed_ms=self._clock_ms())])
        if not count:
            raise UserError(f"no user {username!r}")

    def remove(self, username: str) -> None:
        (count, *_) = self._write([delete(users).where(users.c.username == username),
                                   delete(user_sites).where(user_sites.c.username == username),
                                   self._throttle.forget_user(username)])
        if not count:
            raise UserError(f"no user {username!r}")

    def authenticate(self, username: str, password: str, client: str) -> User | None:
        """The user when both name and password are right, else None; raises Throttled.

        The attempt is counted and the throttling decided (api/throttle.py) before
        any hash is computed, so a refused guesser costs no CPU; a wrong name
        costs the same hash as a wrong password.
        """
        attempt = self._throttle.attempt(username, client)
        rows = self._read(select(users.c.password_hash, *_USER_COLUMNS).where(users.c.username == username))
        ok = verify_password(password, rows[0][0] if rows else _dummy_hash()) and bool(rows)
        if not ok:
            return None
        self._throttle.succeeded(attempt)
        return User(*rows[0][1:])

    # -- revoked refresh tokens ----------------------------------------------------------

    def revoke(self, jti: str, username: str, expires_ms: int) -> None:
        now = self._clock_ms()
        self._write([
            self._insert(revoked_tokens).values(jti=jti, username=username, expires_ms=expires_ms, revoked_ms=now)
            .on_conflict_do_nothing(index_elements=[revoked_tokens.c.jti]),
            delete(revoked_tokens).where(revoked_tokens.c.expires_ms < now),
        ])

    def is_revoked(self, jti: str) -> bool:
        return bool(self._revoked.rows("cannot read the users", jti=jti))


def generate_password() -> str:
    """A password for the demo user: 16 random URL-safe characters."""
    return secrets.token_urlsafe(12)


DEMO_USER = "demo"


def demo_login(users: Users, name: str = DEMO_USER) -> tuple[str, str]:
    """(name, password) of the demo user, with a new random password (created when missing)."""
    password = generate_password()
    if users.get(name) is None:
        users.add(name, password)
    else:
        users.set_password(name, password)
    return name, password
