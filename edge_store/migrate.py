"""Run the Alembic migrations in migrations/ on a database file.

Alembic is imported only when a migration has to run: the long-running
processes check the schema revision with one query (`ensure_schema`) and so
never carry Alembic and Mako in memory on a Pi.
"""

from __future__ import annotations

from pathlib import Path

import migrations

from .db import Database
from .errors import StoreError

SCRIPT_LOCATION = str(Path(migrations.__file__).parent)

# The newest revision in migrations/versions; a test keeps it equal to Alembic's head.
HEAD = "0011"


def ensure_schema(path: str | Path) -> None:
    """Upgrade the database to head unless it is there already (one cheap query)."""
    try:
        with Database(path, readonly=True) as db, db.reading("could not read the schema revision") as conn:
            rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except StoreError:  # no file, or no alembic_version yet
        rev = None
    if not rev or rev[0] != HEAD:
        upgrade(path)


def _alembic_config():
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def _run(path: str | Path, action, *args) -> None:
    with Database(path) as db, db.core_writing(f"migration of {path} failed") as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        action(cfg, *args)


def upgrade(path: str | Path, revision: str = "head") -> None:
    """Bring the database at `path` (created if missing) up to `revision`."""
    from alembic import command

    _run(path, command.upgrade, revision)


def downgrade(path: str | Path, revision: str = "base") -> None:
    """Take the database at `path` down to `revision` (`base`: empty)."""
    from alembic import command

    _run(path, command.downgrade, revision)


def current(path: str | Path) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with Database(path) as db, db.core_reading(f"could not read the revision of {path}") as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision the code knows, as Alembic sees it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
