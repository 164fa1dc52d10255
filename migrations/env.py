"""Alembic environment: runs on the connection edge_store.migrate hands over."""

from alembic import context

from edge_store.db import core_writing, engine_for
from edge_store.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # `alembic` run by hand: -x url=sqlite:///path or sqlalchemy.url; the file's pragmas
        # and transactions are edge_store/db.py's, as for `kammthaar db upgrade`.
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
        engine = engine_for(url, create=True)
        # Anything but SQLite is a state database: the API's tables only (migrations/scope.py).
        config.attributes.setdefault("state_only", engine.dialect.name != "sqlite")
        try:
            with core_writing(engine, f"migration of {url} failed") as conn:
                _run(conn)
        finally:
            engine.dispose()
        return
    _run(connection)


def _run(connection) -> None:
    # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; use `kammthaar db upgrade`")
run_migrations_online()
