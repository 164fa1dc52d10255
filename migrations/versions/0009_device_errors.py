"""Per-device error counters and the v_devices view: several devices on one or more buses (issue 12).

`counters` keeps the site's totals (`modbus_errors.<kind>`); `device_errors`
counts the same errors per device, never pruned (collector_errors is). The
view lists every device with its newest live sample (from the daily
statistics, one row per device and day: no scan of the samples) and its
errors, for the sqlite3 shell.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"  # "0007" on its branch; chained after r12a's 0008 at the merge
branch_labels = None
depends_on = None

V_DEVICES = """
    SELECT d.device,
           datetime(d.newest_ms / 1000, 'unixepoch', 'localtime') AS newest_local_time,
           CAST((strftime('%s','now') * 1000 - d.newest_ms) / 1000 AS INTEGER) AS age_s,
           coalesce((SELECT sum(e.value) FROM device_errors e WHERE e.device = d.device), 0) AS errors,
           (SELECT group_concat(e.kind || '=' || e.value, ' ') FROM device_errors e
             WHERE e.device = d.device) AS errors_by_kind
    FROM (SELECT device, max(newest_ms) AS newest_ms
          FROM (SELECT device, max(last_ts_ms) AS newest_ms FROM rollup_daily GROUP BY device
                UNION ALL SELECT device, NULL FROM device_errors)
          GROUP BY device) d
    ORDER BY d.device
"""


def upgrade() -> None:
    op.create_table(
        "device_errors",
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.Integer, nullable=False),
    )
    op.execute(f"CREATE VIEW v_devices AS {V_DEVICES}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_devices")
    op.drop_table("device_errors")
