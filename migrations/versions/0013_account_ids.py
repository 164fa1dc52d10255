"""Users' account ids: a random id per account, carried by every token, so a removed user added again
never gets the earlier tokens back (its token_version starts again at 0).

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-04
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# SQLite's batch mode rebuilds the table: its view (0004's, SQLite only) goes and comes back around it.
V_USERS = ("CREATE VIEW v_users AS SELECT username, token_version, "
           "datetime(created_ms / 1000, 'unixepoch', 'localtime') AS created, "
           "datetime(password_changed_ms / 1000, 'unixepoch', 'localtime') AS password_changed "
           "FROM users ORDER BY username")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        op.execute("DROP VIEW IF EXISTS v_users")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("account_id", sa.Text, nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("account_id", sa.Text))
    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():  # a few rows: one random id each
        conn.execute(users.update().where(users.c.id == user_id).values(account_id=secrets.token_hex(16)))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("account_id", existing_type=sa.Text, nullable=False)
    if _sqlite():
        op.execute(V_USERS)


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP VIEW IF EXISTS v_users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("account_id")
    if _sqlite():
        op.execute(V_USERS)
