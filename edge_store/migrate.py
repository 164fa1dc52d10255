"""Run the Alembic migrations in migrations/ on a database file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

import migrations

from .errors import StoreError
from .store import make_engine

SCRIPT_LOCATION = str(Path(migrations.__file__).parent)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def _run(path: str | Path, action, *args) -> None:
    engine = make_engine(path)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            action(cfg, *args)
    except SQLAlchemyError as exc:
        raise StoreError(f"migration of {path} failed: {exc}") from exc
    finally:
        engine.dispose()


def upgrade(path: str | Path, revision: str = "head") -> None:
    """Bring the database at `path` (created if missing) up to `revision`."""
    _run(path, command.upgrade, revision)


def downgrade(path: str | Path, revision: str = "base") -> None:
    """Take the database at `path` down to `revision` (`base`: empty)."""
    _run(path, command.downgrade, revision)


def current(path: str | Path) -> str | None:
    """The revision the database is at, or None before the first migration."""
    engine = make_engine(path)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
