"""Which database a migration runs on: the store, or a database of the API's state alone.

The chain is one line of revisions for both. The store (SQLite, `kammthaar db
upgrade`, the default `[api] state_url`) gets every table. A state database
(`[api] state_url` naming PostgreSQL or another SQLite file: edge_store/migrate.py
passes `state_only`; `alembic -x url=postgresql+...` by hand implies it) gets
the API's tables only: a migration of the store's samples, rollups or
replication starts with `if state_only(): return` in upgrade() and downgrade(),
so its revision is recorded there and changes nothing. Decided so (rather than
two branches of revisions) because the store's file also holds the state by
default: one chain, one head, one `alembic_version` per database.
tests/test_state_postgres.py checks that PostgreSQL gets exactly the state tables.
"""

from alembic import context


def state_only() -> bool:
    """Whether the database being migrated holds the API's state alone (no store tables)."""
    return bool(context.config.attributes.get("state_only"))
