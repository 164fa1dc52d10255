"""Replication: watermarks per stream, dead letters, the replicator's state, their views.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen at this revision: (table, key column, time column or None).
STREAMS = (
    ("live_samples", "id", "ts_ms"),
    ("device_statistics", "id", "ts_ms"),
    ("device_settings", "id", "ts_ms"),
    ("device_clock", "id", "ts_ms"),
    ("rollup_daily", "version", None),
    ("rollup_monthly", "version", None),
)

NOW_S = "CAST(strftime('%s','now') AS INTEGER)"


def _watermark(stream):
    return f"(SELECT coalesce(max(position), 0) FROM replication_watermarks WHERE stream = '{stream}')"


def _backlog(table, key, time):
    oldest = f"min({time})" if time else "NULL"
    return f"""
        SELECT '{table}' AS stream, {_watermark(table)} AS watermark, count(*) AS unsent_rows,
               datetime({oldest} / 1000, 'unixepoch', 'localtime') AS oldest_unsent,
               {NOW_S} - {oldest} / 1000 AS oldest_unsent_age_s
        FROM {table} WHERE {key} > {_watermark(table)}"""


def _counter(name):
    return f"(SELECT coalesce(max(value), 0) FROM counters WHERE name = '{name}')"


def _local(column):
    return f"datetime({column} / 1000, 'unixepoch', 'localtime')"


VIEWS = {
    # What has not reached the cloud yet, per stream (statistics: rows changed since they were sent).
    "v_replication_backlog": " UNION ALL ".join(_backlog(*s) for s in STREAMS),
    # Points the server refused, newest first, with its message.
    "v_dead_letters": f"""
        SELECT {_local('ts_ms')} AS local_time, stream, row_key, status, message, line, id
        FROM replication_dead_letters ORDER BY id DESC
    """,
    # The replicator at a glance: one row.
    "v_replication": f"""
        SELECT CASE WHEN s.blocked IS NOT NULL THEN 'STOPPED: ' || s.blocked
                    WHEN s.last_error_ms > coalesce(s.last_success_ms, 0) THEN 'failing'
                    WHEN s.last_success_ms IS NOT NULL THEN 'ok' ELSE 'never ran' END AS state,
               {_local('s.last_success_ms')} AS last_success, {_local('s.last_error_ms')} AS last_error_time,
               s.last_status, s.last_error,
               {_counter('replicator.points_sent')} AS points_sent, {_counter('replicator.bytes_sent')} AS bytes_sent,
               {_counter('replicator.dead_letters')} AS dead_letters, {_counter('store.dropped_unsent')} AS dropped_rows
        FROM (SELECT 1) one LEFT JOIN replication_state s ON s.id = 1
    """,
}


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.create_table(
        "replication_watermarks",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.Integer, nullable=False),
    )
    op.create_table(
        "replication_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts_ms", sa.Integer, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("row_key", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_replication_dead_letters_ts", "replication_dead_letters", ["ts_ms"])
    op.create_table(
        "replication_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_attempt_ms", sa.Integer),
        sa.Column("last_success_ms", sa.Integer),
        sa.Column("last_error_ms", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("blocked", sa.Text),
        sa.Column("blocked_credentials", sa.Text),
        sa.Column("blocked_ms", sa.Integer),
        sa.Column("updated_ms", sa.Integer, nullable=False),
    )
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("replication_state")
    op.drop_index("ix_replication_dead_letters_ts", table_name="replication_dead_letters")
    op.drop_table("replication_dead_letters")
    op.drop_table("replication_watermarks")
