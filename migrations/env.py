"""Alembic environment: runs on the connection edge_store.migrate hands over."""

from alembic import context
from sqlalchemy import create_engine

from edge_store.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # `alembic` run by hand: -x url=sqlite:///path or sqlalchemy.url
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
        engine = create_engine(url)
        with engine.begin() as conn:
            _run(conn)
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
