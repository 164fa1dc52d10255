"""Machine tokens: long-lived, scoped, revocable API tokens (a Prometheus scraper's).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Millisecond times: INTEGER on SQLite (64 bits), BIGINT elsewhere (PostgreSQL's INTEGER is 32 bits).
MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "machine_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_ms", MS, nullable=False),
        sa.Column("last_used_ms", MS),
        sqlite_autoincrement=True,
    )
    op.create_index("ux_machine_tokens_name", "machine_tokens", ["name"], unique=True)
    op.create_index("ux_machine_tokens_hash", "machine_tokens", ["token_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_machine_tokens_hash", table_name="machine_tokens")
    op.drop_index("ux_machine_tokens_name", table_name="machine_tokens")
    op.drop_table("machine_tokens")
