"""Run the Alembic migrations in migrations/ on the store's file or on a database of the API's state.

A target is the store's path (every table) or an SQLAlchemy URL, the API's
`[api] state_url` (PostgreSQL, or an SQLite file of its own): there the
migrations run "state only" and create the API's tables alone (users,
revoked tokens, login throttling, machine tokens, sites granted), never the
store's samples, rollups or replication (migrations/scope.py).

Alembic is imported only when a migration has to run: the long-running
processes check the schema revision with one query (`ensure_schema`) and so
never carry Alembic and Mako in memory on a Pi.
"""

from __future__ import annotations

from pathlib import Path

import migrations

from sqlalchemy import text

from .db import Database, core_reading, core_writing, engine_for
from .errors import StoreError

SCRIPT_LOCATION = str(Path(migrations.__file__).parent)

# The newest revision in migrations/versions; a test keeps it equal to Alembic's head.
HEAD = "0011"

# Two `kammthaar serve` starting together on one PostgreSQL migrate one after the other (a
# transaction-scoped advisory lock; PostgreSQL runs DDL in transactions).
_PG_MIGRATION_LOCK = 7_242_015


def is_url(target: str | Path) -> bool:
    """Whether `target` is an SQLAlchemy URL (a state database) rather than the store's path."""
    return isinstance(target, str) and "://" in target


def ensure_schema(target: str | Path) -> None:
    """Upgrade the database to head unless it is there already (one cheap query)."""
    try:
        if is_url(target):
            engine = engine_for(target)
            try:
                with core_reading(engine, "could not read the schema revision") as conn:
                    rev = conn.execute(text("SELECT version_num FROM alembic_version")).fetchone()
            finally:
                engine.dispose()
        else:
            with Database(target, readonly=True) as db, db.reading("could not read the schema revision") as conn:
                rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except StoreError:  # no file, or no alembic_version yet
        rev = None
    if not rev or rev[0] != HEAD:
        upgrade(target)


def _alembic_config():
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def _run(target: str | Path, action, *args) -> None:
    if not is_url(target):
        with Database(target) as db, db.core_writing(f"migration of {target} failed") as conn:
            _act(conn, action, args, state_only=False)
        return
    engine = engine_for(target, create=True)
    try:
        with core_writing(engine, f"migration of the state database {engine.url!r} failed") as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            _act(conn, action, args, state_only=True)
    finally:
        engine.dispose()


def _act(conn, action, args, *, state_only: bool) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    cfg.attributes["state_only"] = state_only
    action(cfg, *args)


def upgrade(path: str | Path, revision: str = "head") -> None:
    """Bring the store at `path` (created if missing), or the state database at a URL, up to `revision`."""
    from alembic import command

    _run(path, command.upgrade, revision)


def downgrade(path: str | Path, revision: str = "base") -> None:
    """Take the database at `path` down to `revision` (`base`: empty)."""
    from alembic import command

    _run(path, command.downgrade, revision)


def current(path: str | Path) -> str | None:
    """The revision the database (a path or a URL) is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    if is_url(path):
        engine = engine_for(path)
        try:
            with core_reading(engine, "could not read the revision of the state database") as conn:
                return MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()
    with Database(path) as db, db.core_reading(f"could not read the revision of {path}") as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision the code knows, as Alembic sees it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
