"""Battery energy in and out: `battery_charge_kwh`, `battery_discharge_kwh` of each day and month.

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-04

Why (issue 16): Home Assistant's Energy dashboard takes battery energy in and
out in kWh; the rollups kept only the charge in Ah. The new figures integrate
the battery power (battery_voltage × battery_current) by sign between
consecutive live samples, as the Ah figures integrate the current.

Existing history: every day row first gets its Ah figures times the middle of
its battery voltage range (an estimate, so a day whose raw samples were pruned
keeps a plausible value and a lifetime total does not fall), then the rollups
are marked for a full rebuild (the `timezone` meta as a writer of another zone
leaves it): the collector's next start recomputes every day that still has its
raw samples exactly, with new versions, so the replicator sends those days and
their months again with the new fields (a pruned day's estimate stays on the edge
until its row changes).
"""
import importlib

import sqlalchemy as sa
from alembic import op

from migrations.scope import state_only

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_0006 = importlib.import_module("migrations.versions.0006_flat_costs")

# Frozen at this revision.
COLUMNS = ("battery_charge_kwh", "battery_discharge_kwh")
_AH = "total(d.battery_discharge_ah) AS battery_discharge_ah,"
MONTHLY_VIEW = _0006.MONTHLY_VIEW.replace(
    _AH, _AH + " total(d.battery_charge_kwh) AS battery_charge_kwh, "
               "total(d.battery_discharge_kwh) AS battery_discharge_kwh,")
assert MONTHLY_VIEW != _0006.MONTHLY_VIEW
_MID_VOLTS = "coalesce((battery_voltage_min + battery_voltage_max) / 2.0, 0)"
# As edge_store.rollups.meta: a zone that is no writer's makes the next collector start rebuild.
_MARK_REBUILD = ("UPDATE rollup_meta SET value = 'mixed: ' || value || ' rollups, before 0015 (battery energy)' "
                 "WHERE key = 'timezone' AND value NOT LIKE 'mixed:%'")


def upgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    bind = op.get_bind()
    # Plain ALTER TABLE: recreating the table would trip over the views and triggers that read it.
    with op.batch_alter_table("rollup_daily", recreate="never") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float, nullable=False, server_default="0"))
    bind.exec_driver_sql(f"UPDATE rollup_daily SET battery_charge_kwh = battery_charge_ah * {_MID_VOLTS} / 1000.0, "
                         f"battery_discharge_kwh = battery_discharge_ah * {_MID_VOLTS} / 1000.0")
    bind.exec_driver_sql(_MARK_REBUILD)
    _0006._views(MONTHLY_VIEW)


def downgrade() -> None:
    if state_only():  # a state database: no store tables (migrations/scope.py)
        return
    # The monthly view reads the columns: it goes back first (SQLite drops no column a view names).
    _0006._views(_0006.MONTHLY_VIEW)
    with op.batch_alter_table("rollup_daily", recreate="never") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
