"""Users of the API, their password hashes, revoked refresh tokens and login throttling.

Passwords are kept as salted scrypt hashes (`hashlib.scrypt`, memory-hard and
slow on purpose), with their parameters in the stored text so they can be
raised later without invalidating older hashes. A login for a user that does
not exist costs the same hash, so timing does not tell which users exist.

Everything lives in the store's SQLite file (tables `users`, `revoked_tokens`,
`login_failures`, migration 0004): the only rows the API writes. Reads that
run on every request (a token's user and version) use one read-only
connection per thread; writes are short `BEGIN IMMEDIATE` transactions, so
every worker process of the server sees the same users, revocations and
throttling.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from edge_store.errors import KammthaarError, StoreError
from edge_store.store import BUSY_TIMEOUT_MS, now_ms

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# Failed logins: (key kind, failures allowed in the window). A key reaching its
# limit is blocked until its window ends; a success clears its pair.
THROTTLE_WINDOW_MS = 15 * 60 * 1000
PAIR_LIMIT = 5      # one user from one client: guessing one password
CLIENT_LIMIT = 20   # one client, any users: password spraying
USER_LIMIT = 50     # one user, any clients: a distributed guess


class UserError(KammthaarError):
    """A user name or password that cannot be used (the message says why)."""


class Throttled(KammthaarError):
    """Too many failed logins for a user or a client: try again in `retry_after_s`."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


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


class Users:
    """The users table and its companions on one SQLite file (migrated to 0004 or later)."""

    def __init__(self, path: str | Path, *, clock_ms=now_ms):
        self.path = str(path)
        self._clock_ms = clock_ms
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()

    # -- connections ------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        # One read-only connection per process, shared by its threads (under `_read_lock`), kept open:
        # the tokens of a worker stay checkable while its handle on the file works.
        if self._shared is None:
            try:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the users in {self.path}: {exc}", retryable=True) from exc
            self._shared = conn
        return self._shared

    def connect(self) -> None:
        """Open the shared read connection now (at worker start) rather than at the first request."""
        with self._read_lock:
            self._reader()

    def _writer(self) -> sqlite3.Connection:
        conn = getattr(self._local, "writer", None)
        if conn is None:
            try:
                # mode=rw: never create a database where the store should be.
                conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the users in {self.path}: {exc}", retryable=True) from exc
            self._local.writer = conn
        return conn

    def _read(self, sql: str, params=()) -> list[tuple]:
        with self._read_lock:
            try:
                return self._reader().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                if self._shared is not None:
                    self._shared.close()
                    self._shared = None
                raise StoreError(f"cannot read the users: {exc}", retryable=True) from exc

    def _write(self, statements) -> list:
        """Run (sql, params) pairs in one immediate transaction; the cursors' rowcounts."""
        conn = self._writer()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                counts = [conn.execute(sql, params).rowcount for sql, params in statements]
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return counts
        except sqlite3.Error as exc:
            self._drop("writer")
            raise StoreError(f"cannot write the users: {exc}", retryable=True) from exc

    def _drop(self, which: str) -> None:
        conn = getattr(self._local, which, None)
        if conn is not None:
            conn.close()
            setattr(self._local, which, None)

    def close(self) -> None:
        with self._read_lock:
            if self._shared is not None:
                self._shared.close()
                self._shared = None
        self._drop("writer")

    # -- users ------------------------------------------------------------------------

    def get(self, username: str) -> User | None:
        rows = self._read("SELECT username, token_version, created_ms, password_changed_ms FROM users "
                          "WHERE username = ?", (username,))
        return User(*rows[0]) if rows else None

    def token_version(self, username: str) -> int | None:
        """The version every valid token of the user carries, or None when the user is gone."""
        rows = self._read("SELECT token_version FROM users WHERE username = ?", (username,))
        return rows[0][0] if rows else None

    def list(self) -> list[User]:
        return [User(*r) for r in self._read(
            "SELECT username, token_version, created_ms, password_changed_ms FROM users ORDER BY username")]

    def add(self, username: str, password: str) -> User:
        check_username(username)
        hashed = hash_password(check_password(password))
        now = self._clock_ms()
        try:
            self._write([("INSERT INTO users (username, password_hash, token_version, created_ms, "
                          "password_changed_ms) VALUES (?, ?, 0, ?, ?)", (username, hashed, now, now))])
        except StoreError as exc:
            if "UNIQUE" in str(exc):
                raise UserError(f"user {username!r} exists already (change the password with `user passwd`)") from exc
            raise
        return User(username, 0, now, now)

    def set_password(self, username: str, password: str) -> None:
        """New password; every token issued before is no longer accepted."""
        hashed = hash_password(check_password(password))
        (count,) = self._write([(
            "UPDATE users SET password_hash = ?, token_version = token_version + 1, password_changed_ms = ? "
            "WHERE username = ?", (hashed, self._clock_ms(), username))])
        if not count:
            raise UserError(f"no user {username!r}")

    def remove(self, username: str) -> None:
        (count, _) = self._write([("DELETE FROM users WHERE username = ?", (username,)),
                                  ("DELETE FROM login_failures WHERE key = ?", (f"user:{username}",))])
        if not count:
            raise UserError(f"no user {username!r}")

    def authenticate(self, username: str, password: str, client: str) -> User | None:
        """The user when both name and password are right, else None; raises Throttled.

        Every key (pair, client, user) is checked before any hash is computed,
        so a blocked guesser costs no CPU; a failure counts against all three.
        """
        keys = self._throttle_keys(username, client)
        self._check_throttle(keys)
        rows = self._read("SELECT password_hash, username, token_version, created_ms, password_changed_ms "
                          "FROM users WHERE username = ?", (username,))
        ok = verify_password(password, rows[0][0] if rows else _dummy_hash()) and bool(rows)
        if ok:
            self._write([("DELETE FROM login_failures WHERE key = ?", (keys[0][0],))])
            return User(*rows[0][1:])
        self._record_failure(keys)
        return None

    # -- throttling -------------------------------------------------------------------

    @staticmethod
    def _throttle_keys(username: str, client: str) -> list[tuple[str, int]]:
        name = username[:128]
        return [(f"pair:{name}@{client}", PAIR_LIMIT), (f"client:{client}", CLIENT_LIMIT),
                (f"user:{name}", USER_LIMIT)]

    def _check_throttle(self, keys: list[tuple[str, int]]) -> None:
        now = self._clock_ms()
        marks = "?, " * (len(keys) - 1) + "?"
        rows = self._read(f"SELECT key, blocked_until_ms FROM login_failures WHERE key IN ({marks}) "
                          "AND blocked_until_ms > ?", (*(k for k, _ in keys), now))
        if rows:
            until = max(r[1] for r in rows)
            raise Throttled("too many failed logins: try again later",
                            retry_after_s=max(1, -(-(until - now) // 1000)))

    def _record_failure(self, keys: list[tuple[str, int]]) -> None:
        now = self._clock_ms()
        window = THROTTLE_WINDOW_MS
        statements = []
        for key, limit in keys:
            statements.append((
                "INSERT INTO login_failures (key, failures, window_start_ms, blocked_until_ms) VALUES (?1, 1, ?2, NULL) "
                "ON CONFLICT (key) DO UPDATE SET "
                "failures = CASE WHEN window_start_ms <= ?2 - ?3 THEN 1 ELSE failures + 1 END, "
                "window_start_ms = CASE WHEN window_start_ms <= ?2 - ?3 THEN ?2 ELSE window_start_ms END",
                (key, now, window)))
            statements.append((
                "UPDATE login_failures SET blocked_until_ms = window_start_ms + ?3 "
                "WHERE key = ?1 AND failures >= ?2", (key, limit, window)))
        # Old rows go with the next failure: the table stays small.
        statements.append(("DELETE FROM login_failures WHERE window_start_ms <= ? "
                           "AND coalesce(blocked_until_ms, 0) <= ?", (now - window, now)))
        self._write(statements)

    # -- revoked refresh tokens ----------------------------------------------------------

    def revoke(self, jti: str, username: str, expires_ms: int) -> None:
        now = self._clock_ms()
        self._write([
            ("INSERT OR IGNORE INTO revoked_tokens (jti, username, expires_ms, revoked_ms) VALUES (?, ?, ?, ?)",
             (jti, username, expires_ms, now)),
            ("DELETE FROM revoked_tokens WHERE expires_ms < ?", (now,)),
        ])

    def is_revoked(self, jti: str) -> bool:
        return bool(self._read("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)))


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
