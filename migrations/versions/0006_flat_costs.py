"""The same cost on day 1 and in year 10: indexes for prune and the monthly view, O(1) change figures.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Why (issue 17):
- `ix_rollup_minute_minute`: the prune deletes minute buckets by time; the
  primary key starts with `device`, so it scanned every bucket.
- `ix_rollup_daily_month` on (device, substr(day, 1, 7), device_stats_ts_ms):
  the `rollup_monthly` view groups the days of a month through it, a query's
  month range reaches it, and the device's own monthly figures are one lookup
  per month instead of a scan of all the device's days per month (the view
  grew with the square of the install's age). The view's text changes only
  where it names the month of the inner row: the same rows come out.
- `rollup_versions`: one row, `closed_max` >= the version of every day row
  that is not open (triggers keep it; the hot path updates the open row, where
  they do nothing). The largest version is then max(closed_max, the open rows'
  versions, a partial-index lookup): the replicator's change detection costs
  the same in year 10 as on day 1, and the hot path writes no extra page.
- `sample_id_gaps`: row ids a prune deleted out of id order (a sample stored
  with an older time than the rows before it, a clock stepped back), above the
  oldest row left. Ids are otherwise dense, so a backlog is a difference of ids
  minus these gaps, never a count over the table. Filled here from the holes
  already in the tables.
"""
import importlib

from alembic import op

from migrations.scope import state_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_0005 = importlib.import_module("migrations.versions.0005_monthly_view_open_minute")

# Frozen at this revision.
SAMPLE_TABLES = ("live_samples", "device_statistics", "device_settings", "device_clock")
_MONTH = "substr(d.day, 1, 7)"


def _device_month(col):
    # The device's monthly figure from the month's last device_statistics row, through ix_rollup_daily_month.
    return (f"(SELECT s.{col} FROM rollup_daily s WHERE s.device = d.device AND substr(s.day, 1, 7) = {_MONTH} "
            "AND s.device_stats_ts_ms IS NOT NULL ORDER BY s.device_stats_ts_ms DESC LIMIT 1)")


MONTHLY_VIEW = (_0005.MONTHLY_VIEW
                .replace(_0005._device_month("device_month_generated_kwh"), _device_month("device_month_generated_kwh"))
                .replace(_0005._device_month("device_month_consumed_kwh"), _device_month("device_month_consumed_kwh")))
assert MONTHLY_VIEW != _0005.MONTHLY_VIEW

_RAISE_CLOSED = "UPDATE rollup_versions SET closed_max = max(closed_max, new.version) WHERE id = 1;"
TRIGGERS = {
    "rollup_daily_closed_insert": f"AFTER INSERT ON rollup_daily WHEN new.open_minute_ms IS NULL "
                                  f"BEGIN {_RAISE_CLOSED} END",
    "rollup_daily_closed_update": f"AFTER UPDATE ON rollup_daily WHEN new.open_minute_ms IS NULL "
                                  f"BEGIN {_RAISE_CLOSED} END",
}


def _views(monthly: str) -> None:
    op.execute("DROP VIEW v_monthly")
    op.execute("DROP VIEW rollup_monthly")
    op.execute(f"CREATE VIEW rollup_monthly AS {monthly}")
    op.execute(f"CREATE VIEW v_monthly AS {_0005._v_monthly()}")


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    bind = op.get_bind()
    op.execute("CREATE INDEX ix_rollup_minute_minute ON rollup_minute (minute_ms)")
    op.execute("CREATE INDEX ix_rollup_daily_month ON rollup_daily (device, substr(day, 1, 7), device_stats_ts_ms)")
    _views(MONTHLY_VIEW)

    op.execute("CREATE TABLE rollup_versions (id INTEGER NOT NULL, closed_max INTEGER NOT NULL, PRIMARY KEY (id))")
    bind.exec_driver_sql("INSERT INTO rollup_versions (id, closed_max) SELECT 1, coalesce(max(version), 0) "
                         "FROM rollup_daily WHERE open_minute_ms IS NULL")
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")

    op.execute("CREATE TABLE sample_id_gaps (stream TEXT NOT NULL, first_id INTEGER NOT NULL, "
               "last_id INTEGER NOT NULL, PRIMARY KEY (stream, first_id))")
    for table in SAMPLE_TABLES:
        bind.exec_driver_sql(
            f"INSERT INTO sample_id_gaps (stream, first_id, last_id) SELECT '{table}', id + 1, next - 1 FROM "
            f"(SELECT id, lead(id) OVER (ORDER BY id) AS next FROM {table}) WHERE next > id + 1")


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    op.execute("DROP TABLE sample_id_gaps")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE rollup_versions")
    _views(_0005.MONTHLY_VIEW)
    op.execute("DROP INDEX ix_rollup_daily_month")
    op.execute("DROP INDEX ix_rollup_minute_minute")
