"""The SQLite schema as SQLAlchemy Core tables.

Alembic owns the database (migrations/); these definitions are what the code
reads and writes, and a test checks that the migrated database matches them.
Sample tables get their value columns from the register map: one column per
register, named like it. `AUTOINCREMENT` keeps row ids from ever being reused,
even after every row was pruned, because replication watermarks are row ids.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, Float, Table, Text

from .registers import CLOCK, EPEVER_TRACER, LIVE, SETTINGS, STATS, Register, registers_of

metadata = MetaData()

# group -> table name; each group of registers read together gets its own rows.
SAMPLE_TABLES = {
    LIVE: "live_samples",
    STATS: "device_statistics",
    SETTINGS: "device_settings",
    CLOCK: "device_clock",
}


def _value_column(reg: Register) -> Column:
    if reg.kind == "clock":
        type_ = Text()
    elif reg.kind == "bool":
        type_ = Boolean(create_constraint=False)
    elif reg.divisor != 1:
        type_ = Float()
    else:
        type_ = Integer()
    return Column(reg.name, type_, nullable=reg.optional, comment=(reg.doc or reg.name) + (f" ({reg.unit})" if reg.unit else ""))


def _sample_table(group: str) -> Table:
    name = SAMPLE_TABLES[group]
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("ts_ms", Integer, nullable=False, comment="poll time, UTC milliseconds"),
        Column("ntp_synced", Boolean(create_constraint=False), nullable=False,
               comment="system clock NTP-synchronised at poll time"),
        Column("device", Text, nullable=False),
        *(_value_column(r) for r in registers_of(group, EPEVER_TRACER)),
        Index(f"ix_{name}_device_ts", "device", "ts_ms"),
        Index(f"ix_{name}_ts", "ts_ms"),
        sqlite_autoincrement=True,
    )


live_samples = _sample_table(LIVE)
device_statistics = _sample_table(STATS)
device_settings = _sample_table(SETTINGS)
device_clock = _sample_table(CLOCK)

sample_tables: dict[str, Table] = {
    LIVE: live_samples,
    STATS: device_statistics,
    SETTINGS: device_settings,
    CLOCK: device_clock,
}

collector_errors = Table(
    "collector_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts_ms", Integer, nullable=False),
    Column("device", Text, nullable=False),
    Column("kind", Text, nullable=False, comment="timeout, crc, exception, port, no_response, out_of_range, ..."),
    Column("block", Text, nullable=False, comment="the read that failed, e.g. input:0x3100+18"),
    Column("detail", Text, nullable=False),
    Index("ix_collector_errors_ts", "ts_ms"),
    sqlite_autoincrement=True,
)

counters = Table(
    "counters",
    metadata,
    Column("name", Text, primary_key=True, comment="e.g. modbus_errors.timeout"),
    Column("value", Integer, nullable=False),
    Column("updated_ms", Integer, nullable=False),
)
