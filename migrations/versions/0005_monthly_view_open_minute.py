"""Rollups with one hot row: monthly rows become a view over days, the open minute lives in its day row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Why: a sample used to update three rows and two version indexes (day, month,
minute), five extra pages per commit. Now the collector's in-order sample
updates one row, its day row:
- `rollup_monthly` is a view that aggregates the days of each month. The
  device's own monthly figures move into day rows (`device_month_*`), with the
  month's bounds (`month_start_ms`, `month_end_ms`).
- `rollup_minute` keeps closed minutes, written when the next minute starts.
  The open minute of each device (`open_minute_ms` of its newest day row) is
  read from its raw samples, at most 60 at 1 Hz. A minute is closed or open,
  never both; `minute_buckets` is the union of both.
- The version index goes: versions come from the writer, and the replicator
  reads a table of a few thousand rows.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies at this revision.
MINUTE_METRICS = (
    "battery_voltage", "battery_current", "battery_power", "state_of_charge", "battery_temperature",
    "pv_voltage", "pv_current", "pv_power", "load_voltage", "load_current", "load_power",
    "controller_temperature",
)
MINMAX = ("battery_voltage", "pv_voltage", "soc", "battery_temperature")
MINUTE_VALUES = [f"{m}_{e}" for m in MINUTE_METRICS for e in ("sum", "min", "max")]
NEW_COLUMNS = (
    [("month_start_ms", sa.Integer), ("month_end_ms", sa.Integer),
     ("device_month_generated_kwh", sa.Float), ("device_month_consumed_kwh", sa.Float),
     ("open_minute_ms", sa.Integer)]
)

_MONTH = "substr(d.day, 1, 7)"


def _device_month(col):
    # The device's monthly figure from the month's last device_statistics row.
    return (f"(SELECT {col} FROM rollup_daily s WHERE s.device = d.device AND substr(s.day, 1, 7) = {_MONTH} "
            "AND s.device_stats_ts_ms IS NOT NULL ORDER BY s.device_stats_ts_ms DESC LIMIT 1)")


MONTHLY_VIEW = f"""
    SELECT d.device AS device, {_MONTH} AS month, max(d.timezone) AS timezone,
           max(d.month_start_ms) AS start_ms, max(d.month_end_ms) AS end_ms,
           {", ".join(f"{agg}(d.{m}_{e}) AS {m}_{e}" for m in MINMAX for agg, e in (("min", "min"), ("max", "max")))},
           total(d.energy_generated_kwh) AS energy_generated_kwh, total(d.energy_consumed_kwh) AS energy_consumed_kwh,
           total(d.battery_charge_ah) AS battery_charge_ah, total(d.battery_discharge_ah) AS battery_discharge_ah,
           sum(d.samples) AS samples, min(d.first_ts_ms) AS first_ts_ms, max(d.last_ts_ms) AS last_ts_ms,
           sum(d.covered_ms) AS covered_ms,
           {_device_month("device_month_generated_kwh")} AS device_generated_kwh,
           {_device_month("device_month_consumed_kwh")} AS device_consumed_kwh,
           max(d.device_stats_ts_ms) AS device_stats_ts_ms,
           max(d.version) AS version
    FROM rollup_daily d GROUP BY d.device, {_MONTH}
"""

# The open minutes from their raw samples. A minute is closed or open, never both, so the
# union needs no GROUP BY and a query's device and time range reach rollup_minute's index.
OPEN_MINUTES = f"""
    SELECT s.device AS device, s.ts_ms - s.ts_ms % 60000 AS minute_ms, count(*) AS samples,
           {", ".join(f"sum(s.{m}) AS {m}_sum, min(s.{m}) AS {m}_min, max(s.{m}) AS {m}_max" for m in MINUTE_METRICS)}
    FROM rollup_daily d JOIN live_samples s ON s.device = d.device AND s.ts_ms >= d.open_minute_ms
    WHERE d.open_minute_ms IS NOT NULL
    GROUP BY s.device, s.ts_ms - s.ts_ms % 60000
"""
MINUTE_BUCKETS_VIEW = f"""
    SELECT device, minute_ms, samples, {", ".join(MINUTE_VALUES)} FROM rollup_minute
    UNION ALL
    {OPEN_MINUTES}
"""


def _v_monthly():
    # The operators' view, unchanged from 0002 (it now reads the rollup_monthly view).
    return f"""
        SELECT device, month, timezone,
               {", ".join(f"round({m}_{e}, 2) AS {m}_{e}" for m in MINMAX for e in ("min", "max"))},
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
        FROM rollup_monthly ORDER BY month DESC, device
    """


def _month_bounds(zone: str, day: str) -> tuple[int, int]:
    tz = ZoneInfo(zone)
    y, m = int(day[:4]), int(day[5:7])

    def midnight(d: date) -> int:
        # As edge_store.rollups.Periods.start_of: the later midnight when it repeats or is skipped.
        t0 = datetime(d.year, d.month, d.day, tzinfo=tz, fold=0).timestamp()
        t1 = datetime(d.year, d.month, d.day, tzinfo=tz, fold=1).timestamp()
        return round(max(t0, t1) * 1000)

    return midnight(date(y, m, 1)), midnight(date(y + m // 12, m % 12 + 1, 1))


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    bind = op.get_bind()
    for name, type_ in NEW_COLUMNS:
        op.add_column("rollup_daily", sa.Column(name, type_))
    for rowid, zone, day in bind.exec_driver_sql("SELECT rowid, timezone, day FROM rollup_daily").fetchall():
        start, end = _month_bounds(zone, day)
        bind.exec_driver_sql("UPDATE rollup_daily SET month_start_ms = ?, month_end_ms = ? WHERE rowid = ?",
                             (start, end, rowid))
    # The device's monthly figures go to the day that holds the month's last device_statistics row.
    bind.exec_driver_sql(
        "UPDATE rollup_daily SET device_month_generated_kwh = m.device_generated_kwh, "
        "device_month_consumed_kwh = m.device_consumed_kwh FROM rollup_monthly m "
        "WHERE m.device = rollup_daily.device AND m.month = substr(rollup_daily.day, 1, 7) "
        "AND m.device_stats_ts_ms IS NOT NULL AND rollup_daily.device_stats_ts_ms = "
        "(SELECT max(s.device_stats_ts_ms) FROM rollup_daily s WHERE s.device = m.device "
        "AND substr(s.day, 1, 7) = m.month)")
    op.execute("DROP VIEW v_monthly")
    op.drop_index("ix_rollup_monthly_version", table_name="rollup_monthly")
    op.drop_table("rollup_monthly")
    op.execute(f"CREATE VIEW rollup_monthly AS {MONTHLY_VIEW}")
    # A month's version is now its newest day's: another numbering than the table's. Send
    # every month once more (InfluxDB overwrites) rather than skip one under the old watermark.
    bind.exec_driver_sql("UPDATE replication_watermarks SET position = 0 WHERE stream = 'rollup_monthly'")
    op.execute(f"CREATE VIEW v_monthly AS {_v_monthly()}")
    op.drop_index("ix_rollup_daily_version", table_name="rollup_daily")
    op.create_index("ix_rollup_daily_open", "rollup_daily", ["device"],
                    sqlite_where=sa.text("open_minute_ms IS NOT NULL"))
    op.execute(f"CREATE VIEW minute_buckets AS {MINUTE_BUCKETS_VIEW}")


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    bind = op.get_bind()
    op.execute("DROP VIEW minute_buckets")
    # The open minutes join the closed ones.
    bind.exec_driver_sql(
        f"INSERT INTO rollup_minute (device, minute_ms, samples, {', '.join(MINUTE_VALUES)}) "
        f"SELECT * FROM ({OPEN_MINUTES}) WHERE true ON CONFLICT (device, minute_ms) DO UPDATE SET "
        "samples = samples + excluded.samples, "
        + ", ".join(f"{m}_sum = {m}_sum + excluded.{m}_sum, {m}_min = min({m}_min, excluded.{m}_min), "
                    f"{m}_max = max({m}_max, excluded.{m}_max)" for m in MINUTE_METRICS))
    op.drop_index("ix_rollup_daily_open", table_name="rollup_daily")
    op.create_index("ix_rollup_daily_version", "rollup_daily", ["version"])
    columns = [
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("month", sa.Text, nullable=False),
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
        sa.PrimaryKeyConstraint("device", "month"),
    ]
    # Copied aside first: a rename would trip over v_replication_backlog, which reads rollup_monthly.
    names = ", ".join(c.name for c in columns if isinstance(c, sa.Column))
    bind.exec_driver_sql(f"CREATE TABLE rollup_monthly_0005 AS SELECT {names} FROM rollup_monthly")
    op.execute("DROP VIEW v_monthly")
    op.execute("DROP VIEW rollup_monthly")
    op.create_table("rollup_monthly", *columns)
    bind.exec_driver_sql(f"INSERT INTO rollup_monthly ({names}) SELECT {names} FROM rollup_monthly_0005")
    op.drop_table("rollup_monthly_0005")
    op.create_index("ix_rollup_monthly_version", "rollup_monthly", ["version"])
    op.execute(f"CREATE VIEW v_monthly AS {_v_monthly()}")
    for name, _ in NEW_COLUMNS:
        op.execute(f"ALTER TABLE rollup_daily DROP COLUMN {name}")
