"""The API's own state: users, revoked refresh tokens, login throttling.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Millisecond times: INTEGER on SQLite (64 bits), BIGINT elsewhere (PostgreSQL's INTEGER is 32 bits).
MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("token_version", sa.Integer, nullable=False),
        sa.Column("created_ms", MS, nullable=False),
        sa.Column("password_changed_ms", MS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_users_username", "users", ["username"], unique=True)
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("expires_ms", MS, nullable=False),
        sa.Column("revoked_ms", MS, nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires", "revoked_tokens", ["expires_ms"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start_ms", MS, nullable=False),
        sa.Column("blocked_until_ms", MS),
    )
    if op.get_bind().dialect.name != "sqlite":  # the view is for the sqlite3 shell
        return
    # Who can log in, without the hashes.
    op.execute("CREATE VIEW v_users AS SELECT username, token_version, "
               "datetime(created_ms / 1000, 'unixepoch', 'localtime') AS created, "
               "datetime(password_changed_ms / 1000, 'unixepoch', 'localtime') AS password_changed "
               "FROM users ORDER BY username")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_users")
    op.drop_table("login_failures")
    op.drop_index("ix_revoked_tokens_expires", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    op.drop_index("ux_users_username", table_name="users")
    op.drop_table("users")
