"""Device models: the Renogy Rover's columns in the sample tables, the EPEVER-only ones nullable.

A row of a model that lacks a value holds NULL there (edge_store/catalogue/).
Making a column nullable rebuilds its table (batch mode): the views reading the
sample tables are dropped and recreated around it (SQLite checks every view when
the rebuilt table is renamed), AUTOINCREMENT is kept and each table's sequence is
put back, so row ids (the replication watermarks) are never reused.

The downgrade gives 0007's tables back: the Rover's columns go, and with them the
rows 0007 cannot hold (those with NULL where 0007 wants a value: other models'
rows); the ids they leave are recorded as gaps, as 0006 records them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

F, I, T = sa.Float, sa.Integer, sa.Text

# Frozen at this revision: the Rover's own columns, and the EPEVER columns the Rover lacks.
ADDED = {
    "live_samples": [("charging_current", F), ("load_state", I), ("charging_state", I), ("fault_bits", I)],
    "device_statistics": [
        ("maximum_charging_current_today", F), ("maximum_discharging_current_today", F),
        ("maximum_charging_power_today", I), ("maximum_discharging_power_today", I), ("charged_today_ah", I),
        ("discharged_today_ah", I), ("operating_days", I), ("over_discharges", I), ("full_charges", I),
        ("total_charged_ah", I), ("total_discharged_ah", I)],
    "device_settings": [
        ("max_system_voltage", I), ("product_type", I), ("device_model", T), ("software_version", I),
        ("hardware_version", I), ("serial_number", I), ("device_address", I), ("system_voltage_setting", I),
        ("recognized_voltage", I), ("renogy_battery_type", I), ("end_of_charge_soc", I),
        ("end_of_discharge_soc", I), ("over_discharge_delay_s", I), ("equalize_interval_days", I)],
}
NULLABLE = {
    "live_samples": [("night", sa.Boolean(create_constraint=False)), ("battery_real_rated_voltage", F()),
                     ("battery_status", I()), ("charging_equipment_status", I()),
                     ("discharging_equipment_status", I())],
    "device_statistics": [(name, F()) for name in (
        "maximum_pv_voltage_today", "minimum_pv_voltage_today", "consumed_this_month", "consumed_this_year",
        "generated_this_month", "generated_this_year")],
    "device_settings": [("battery_type", I()), ("over_voltage_reconnect", F()), ("under_voltage_recover", F()),
                        ("battery_rated_voltage", I()), ("default_load_mode", I()), ("battery_discharge", I()),
                        ("battery_charge", I()), ("charging_mode", I())],
}


def _rebuilding(change) -> None:
    """Run `change(table)` per sample table with the views set aside and the id sequences kept."""
    bind = op.get_bind()
    views = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid").fetchall()
    sequences = dict(bind.exec_driver_sql(
        f"SELECT name, seq FROM sqlite_sequence WHERE name IN ({', '.join('?' * len(NULLABLE))})",
        tuple(NULLABLE)).fetchall())
    for name, _ in views:
        op.execute(f'DROP VIEW "{name}"')
    for table in NULLABLE:
        change(table)
    for table, seq in sequences.items():
        bind.exec_driver_sql("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, table))
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS "
                             "(SELECT 1 FROM sqlite_sequence WHERE name = ?)", (table, seq, table))
    for _, sql in views:
        op.execute(sql)


def upgrade() -> None:
    def change(table):
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
            for name, type_ in NULLABLE[table]:
                batch.alter_column(name, existing_type=type_, nullable=True)
            for name, type_ in ADDED[table]:
                batch.add_column(sa.Column(name, type_(), nullable=True))

    _rebuilding(change)


def downgrade() -> None:
    bind = op.get_bind()
    for table, columns in NULLABLE.items():
        lacking = " OR ".join(f"{name} IS NULL" for name, _ in columns)
        bind.exec_driver_sql(f"DELETE FROM {table} WHERE {lacking}")
        # The ids deleted out of order are gaps (as migration 0006 computes them).
        bind.exec_driver_sql("DELETE FROM sample_id_gaps WHERE stream = ?", (table,))
        bind.exec_driver_sql(
            f"INSERT INTO sample_id_gaps (stream, first_id, last_id) SELECT '{table}', id + 1, next - 1 FROM "
            f"(SELECT id, lead(id) OVER (ORDER BY id) AS next FROM {table}) WHERE next > id + 1")

    def change(table):
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
            for name, _ in reversed(ADDED[table]):
                batch.drop_column(name)
            for name, type_ in NULLABLE[table]:
                batch.alter_column(name, existing_type=type_, nullable=False)

    _rebuilding(change)
