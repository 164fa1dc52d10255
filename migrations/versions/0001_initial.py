"""Initial edge store: sample tables per register group, errors, counters, field views.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

F, I, B, T = sa.Float, sa.Integer, sa.Boolean, sa.Text

# Frozen copy of the register columns as they were at this revision: later
# register-map changes get their own revision, never an edit here.
GROUPS = {
    "live_samples": [
        ("device_over_temperature", B, False), ("night", B, False),
        ("pv_voltage", F, False), ("pv_current", F, False), ("pv_power", F, False),
        ("battery_power", F, False), ("load_voltage", F, False), ("load_current", F, False),
        ("load_power", F, False), ("battery_temperature", F, False),
        ("controller_temperature", F, False), ("state_of_charge", I, False),
        ("remote_battery_temperature", F, True), ("battery_real_rated_voltage", F, False),
        ("battery_status", I, False), ("charging_equipment_status", I, False),
        ("discharging_equipment_status", I, False), ("battery_voltage", F, False),
        ("battery_current", F, False),
    ],
    "device_statistics": [
        (name, F, False) for name in (
            "maximum_pv_voltage_today", "minimum_pv_voltage_today",
            "maximum_battery_voltage_today", "minimum_battery_voltage_today",
            "consumed_today", "consumed_this_month", "consumed_this_year", "total_consumed",
            "generated_today", "generated_this_month", "generated_this_year", "total_generated",
        )
    ],
    "device_settings": [
        ("battery_type", I, False), ("battery_capacity", I, False),
        ("temp_compensation_coefficient", F, False), ("over_voltage_disconnect", F, False),
        ("charging_limit_voltage", F, False), ("over_voltage_reconnect", F, False),
        ("equalize_charging_voltage", F, False), ("boost_charging_voltage", F, False),
        ("float_charging_voltage", F, False), ("boost_reconnect_voltage", F, False),
        ("low_voltage_reconnect", F, False), ("under_voltage_recover", F, False),
        ("under_voltage_warning", F, False), ("low_voltage_disconnect", F, False),
        ("discharging_limit_voltage", F, False), ("battery_rated_voltage", I, False),
        ("default_load_mode", I, False), ("equalize_duration", I, False),
        ("boost_duration", I, False), ("battery_discharge", I, False),
        ("battery_charge", I, False), ("charging_mode", I, False),
        ("rated_charging_current", F, False), ("rated_load_current", F, False),
    ],
    "device_clock": [("device_time", T, False)],
}

LOCAL = "datetime(ts_ms / 1000, 'unixepoch', 'localtime')"
LOCAL_S = "datetime(s.ts_ms / 1000, 'unixepoch', 'localtime')"

VIEWS = {
    # The newest live sample of each device, in words an operator reads at dusk.
    "v_latest": f"""
        SELECT s.device, {LOCAL_S} AS local_time,
               CAST((strftime('%s','now') * 1000 - s.ts_ms) / 1000 AS INTEGER) AS age_s,
               s.battery_voltage, s.battery_current, s.state_of_charge, s.battery_temperature,
               s.pv_voltage, s.pv_current, s.pv_power, s.load_voltage, s.load_current, s.load_power,
               s.controller_temperature,
               CASE s.battery_status & 15 WHEN 0 THEN 'NORMAL' WHEN 1 THEN 'OVER_VOLTAGE'
                    WHEN 2 THEN 'UNDER_VOLTAGE' WHEN 3 THEN 'OVER_DISCHARGE' WHEN 4 THEN 'FAULT'
                    ELSE 'UNKNOWN' END AS battery_state,
               CASE (s.charging_equipment_status >> 2) & 3 WHEN 0 THEN 'NO_CHARGING'
                    WHEN 1 THEN 'FLOAT' WHEN 2 THEN 'BOOST' ELSE 'EQUALIZATION' END AS charging_stage,
               CASE WHEN s.night THEN 'night' ELSE 'day' END AS day_or_night,
               s.ntp_synced, s.id
        FROM live_samples s
        JOIN (SELECT device, MAX(ts_ms) AS ts_ms FROM live_samples GROUP BY device) n
          ON n.device = s.device AND n.ts_ms = s.ts_ms
    """,
    # Every live sample of the last hour, newest first.
    "v_last_hour": f"""
        SELECT device, {LOCAL} AS local_time, battery_voltage, battery_current, state_of_charge,
               pv_voltage, pv_power, load_power, battery_temperature, id
        FROM live_samples
        WHERE ts_ms >= (CAST(strftime('%s','now') AS INTEGER) - 3600) * 1000
        ORDER BY ts_ms DESC
    """,
    # Read errors, newest first.
    "v_errors": f"""
        SELECT {LOCAL} AS local_time, device, kind, block, detail, id
        FROM collector_errors ORDER BY ts_ms DESC, id DESC
    """,
}


def _sample_table(name, columns):
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts_ms", sa.Integer, nullable=False),
        sa.Column("ntp_synced", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        *(sa.Column(col, (type_(create_constraint=False) if type_ is B else type_()), nullable=null)
          for col, type_, null in columns),
        sqlite_autoincrement=True,
    )
    op.create_index(f"ix_{name}_device_ts", name, ["device", "ts_ms"])
    op.create_index(f"ix_{name}_ts", name, ["ts_ms"])


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    for name, columns in GROUPS.items():
        _sample_table(name, columns)
    op.create_table(
        "collector_errors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts_ms", sa.Integer, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("block", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_collector_errors_ts", "collector_errors", ["ts_ms"])
    op.create_table(
        "counters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.Integer, nullable=False),
    )
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("counters")
    op.drop_index("ix_collector_errors_ts", table_name="collector_errors")
    op.drop_table("collector_errors")
    for name in reversed(list(GROUPS)):
        op.drop_index(f"ix_{name}_ts", table_name=name)
        op.drop_index(f"ix_{name}_device_ts", table_name=name)
        op.drop_table(name)
