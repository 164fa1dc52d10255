"""Reconciliation: what each check of the cloud found, per UTC day, its state, and a view.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

VIEW = """
    CREATE VIEW v_reconciliation AS
    SELECT day, datetime(checked_ms / 1000, 'unixepoch', 'localtime') AS checked,
           points_local, points_cloud, points_missing,
           round(100.0 * completeness, 3) AS completeness_pct,
           hours_differing, hours_repaired, hours_still_differing, repaired
    FROM reconcile_days ORDER BY day DESC
"""


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.create_table(
        "reconcile_days",
        sa.Column("day", sa.Text, primary_key=True),
        sa.Column("checked_ms", sa.Integer, nullable=False),
        sa.Column("points_local", sa.Integer, nullable=False),
        sa.Column("points_cloud", sa.Integer, nullable=False),
        sa.Column("points_missing", sa.Integer, nullable=False),
        sa.Column("completeness", sa.Float, nullable=False),
        sa.Column("hours_differing", sa.Integer, nullable=False),
        sa.Column("hours_repaired", sa.Integer, nullable=False),
        sa.Column("hours_still_differing", sa.Integer, nullable=False),
        sa.Column("repaired", sa.Text, nullable=False),
    )
    op.create_table(
        "reconcile_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_pass_ms", sa.Integer),
        sa.Column("last_pass_ok", sa.Boolean(create_constraint=False)),
        sa.Column("unsupported", sa.Text),
        sa.Column("updated_ms", sa.Integer, nullable=False),
    )
    op.execute(VIEW)


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.execute("DROP VIEW IF EXISTS v_reconciliation")
    op.drop_table("reconcile_state")
    op.drop_table("reconcile_days")
