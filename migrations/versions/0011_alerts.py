"""Local alerts (issue 13): the state of every rule, its events, and the notification outbox.

Revision ID: 0011
Revises: 0015 (the lead's chain: 0011 was reserved for issue 13 and lands after 0015)
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0011"
down_revision = "0015"
branch_labels = None
depends_on = None

# Events with ISO 8601 UTC times, for `sqlite3 kammthaar.db 'SELECT * FROM v_alerts'`.
V_ALERTS = """
CREATE VIEW v_alerts AS
SELECT e.id, strftime('%Y-%m-%dT%H:%M:%fZ', e.ts_ms / 1000.0, 'unixepoch') AS at_utc, e.rule, e.device,
       e.severity, e.state, e.value, e.threshold, e.message,
       CASE WHEN s.event_id = e.id THEN 1 ELSE 0 END AS active
FROM alert_events e LEFT JOIN alert_state s ON s.rule = e.rule AND s.device = e.device
ORDER BY e.ts_ms DESC, e.id DESC
"""


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts_ms", sa.Integer, nullable=False, comment="the sample's time, UTC milliseconds"),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False, comment="info, warning, critical"),
        sa.Column("state", sa.Text, nullable=False, comment="firing, resolved"),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_events_ts", "alert_events", ["ts_ms"])
    # One row per rule and device that is firing: what a restart re-establishes (no second notification).
    op.create_table(
        "alert_state",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Integer, nullable=False, comment="the firing event"),
        sa.Column("since_ms", sa.Integer, nullable=False),
    )
    # The outbox `kammthaar notify` drains: one row per event; sent_ms once a channel took it.
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.Integer, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0",
                  comment="sends started; above 0 with no sent_ms: a crash may have sent it already"),
        sa.Column("sent_ms", sa.Integer),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_unsent", "notifications", ["sent_ms", "id"])
    op.execute(V_ALERTS)


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.execute("DROP VIEW v_alerts")
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("alert_state")
    op.drop_index("ix_alert_events_ts", table_name="alert_events")
    op.drop_table("alert_events")
