"""Rollups: daily and monthly statistics per local period, one-minute buckets, their views.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the column lists at this revision: later changes get their own revision.
MINMAX = ("battery_voltage", "pv_voltage", "soc", "battery_temperature")
MINUTE_METRICS = (
    "battery_voltage", "battery_current", "battery_power", "state_of_charge", "battery_temperature",
    "pv_voltage", "pv_current", "pv_power", "load_voltage", "load_current", "load_power",
    "controller_temperature",
)


def _period_columns(key):
    return [
        sa.Column("device", sa.Text, nullable=False),
        sa.Column(key, sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("start_ms", sa.Integer, nullable=False),
        sa.Column("end_ms", sa.Integer, nullable=False),
        *(sa.Column(f"{m}_{e}", sa.Float) for m in MINMAX for e in ("min", "max")),
        sa.Column("energy_generated_kwh", sa.Float, nullable=False),
        sa.Column("energy_consumed_kwh", sa.Float, nullable=False),
        sa.Column("battery_charge_ah", sa.Float, nullable=False),
        sa.Column("battery_discharge_ah", sa.Float, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("first_ts_ms", sa.Integer),
        sa.Column("last_ts_ms", sa.Integer),
        sa.Column("covered_ms", sa.Integer, nullable=False),
        sa.Column("device_generated_kwh", sa.Float),
        sa.Column("device_consumed_kwh", sa.Float),
        sa.Column("device_stats_ts_ms", sa.Integer),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("device", key),
    ]


def _period_view(table, key):
    # Local dates are stored in the rows (views cannot do IANA zones); times shown in UTC.
    return f"""
        SELECT device, {key}, timezone,
               round(battery_voltage_min, 2) AS battery_voltage_min, round(battery_voltage_max, 2) AS battery_voltage_max,
               round(pv_voltage_min, 2) AS pv_voltage_min, round(pv_voltage_max, 2) AS pv_voltage_max,
               round(soc_min, 2) AS soc_min, round(soc_max, 2) AS soc_max,
               round(battery_temperature_min, 2) AS battery_temperature_min,
               round(battery_temperature_max, 2) AS battery_temperature_max,
               round(energy_generated_kwh, 3) AS energy_generated_kwh,
               round(energy_consumed_kwh, 3) AS energy_consumed_kwh,
               round(battery_charge_ah, 3) AS battery_charge_ah,
               round(battery_discharge_ah, 3) AS battery_discharge_ah,
               round(device_generated_kwh, 3) AS device_generated_kwh,
               round(device_consumed_kwh, 3) AS device_consumed_kwh,
               samples, round(covered_ms / 1000.0, 1) AS covered_s,
               round(100.0 * covered_ms / (end_ms - start_ms), 1) AS covered_pct,
               datetime(first_ts_ms / 1000, 'unixepoch') || 'Z' AS first_utc,
               datetime(last_ts_ms / 1000, 'unixepoch') || 'Z' AS last_utc,
               version
        FROM {table} ORDER BY {key} DESC, device
    """


VIEWS = {
    # One line per device and local day, newest first: `SELECT * FROM v_daily LIMIT 7`.
    "v_daily": _period_view("rollup_daily", "day"),
    # One line per device and local month, newest first.
    "v_monthly": _period_view("rollup_monthly", "month"),
}


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.create_table("rollup_daily", *_period_columns("day"))
    op.create_index("ix_rollup_daily_version", "rollup_daily", ["version"])
    op.create_table("rollup_monthly", *_period_columns("month"))
    op.create_index("ix_rollup_monthly_version", "rollup_monthly", ["version"])
    op.create_table(
        "rollup_minute",
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("minute_ms", sa.Integer, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        *(sa.Column(f"{m}_{e}", sa.Float, nullable=False) for m in MINUTE_METRICS for e in ("sum", "min", "max")),
        sa.PrimaryKeyConstraint("device", "minute_ms"),
    )
    op.create_table(
        "rollup_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("rollup_meta")
    op.drop_table("rollup_minute")
    op.drop_index("ix_rollup_monthly_version", table_name="rollup_monthly")
    op.drop_table("rollup_monthly")
    op.drop_index("ix_rollup_daily_version", table_name="rollup_daily")
    op.drop_table("rollup_daily")
