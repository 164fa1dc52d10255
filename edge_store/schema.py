"""The SQLite schema as SQLAlchemy Core tables.

Alembic owns the database (migrations/); these definitions are what the code
reads and writes, and a test checks that the migrated database matches them.
Sample tables get their value columns from the device models' catalogues
(edge_store/catalogue/): one column per register or derived value of any
model, named like it, NULL where a model that has the group lacks it; the
one-minute buckets keep the live columns the catalogue marks. `AUTOINCREMENT` keeps row ids from ever being reused,
even after every row was pruned, because replication watermarks are row ids.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, Table, Text, text

from . import catalogue
from .catalogue import EPEVER_TRACER
from .registers import CLOCK, LIVE, SETTINGS, STATS, TEXT_KINDS

metadata = MetaData()

# group -> table name; each group of registers read together gets its own rows.
SAMPLE_TABLES = {
    LIVE: "live_samples",
    STATS: "device_statistics",
    SETTINGS: "device_settings",
    CLOCK: "device_clock",
}


def _value_column(group: str, name: str, lines: list) -> Column:
    """One column from the register (or derived) line of each model having it."""
    kinds = {"text" if r.kind in TEXT_KINDS else "bool" if r.kind == "bool" else "number" for r in lines}
    if len(kinds) != 1:
        raise ValueError(f"column {name} would hold {sorted(kinds)}: two models disagree")
    if kinds == {"text"}:
        type_ = Text()
    elif kinds == {"bool"}:
        type_ = Boolean(create_constraint=False)
    elif any(r.divisor != 1 for r in lines):
        type_ = Float()
    else:
        type_ = Integer()
    having_group = sum(1 for cat in catalogue.MODELS.values() if group in cat.groups())
    nullable = any(r.optional for r in lines) or len(lines) < having_group
    first = lines[0]
    return Column(name, type_, nullable=nullable, comment=(first.doc or name) + (f" ({first.unit})" if first.unit else ""))


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
        *(_value_column(group, name, lines) for name, lines in catalogue.columns(group)),
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

# Errors per device and kind (migration 0009): `counters` keeps the totals, this the same per device.
device_errors = Table(
    "device_errors",
    metadata,
    Column("device", Text, primary_key=True),
    Column("kind", Text, primary_key=True, comment="timeout, crc, exception, port, out_of_range, ..."),
    Column("value", Integer, nullable=False),
    Column("updated_ms", Integer, nullable=False),
)


# -- rollups (edge_store/rollups/ keeps them; migrations 0002 and 0005) ----------

# The live values the one-minute buckets summarise (migrations 0002 and 0005 froze this list).
MINUTE_METRICS = EPEVER_TRACER.minute_columns()

# Statistics of a local period, in the order the API's statistics object names them.
_MINMAX = ("battery_voltage", "pv_voltage", "soc", "battery_temperature")


rollup_daily = Table(
    "rollup_daily",
    metadata,
    Column("device", Text, primary_key=True),
    Column("day", Text, primary_key=True, comment="local date YYYY-MM-DD"),
    Column("timezone", Text, nullable=False, comment="IANA zone that defined the period"),
    Column("start_ms", Integer, nullable=False, comment="period start, UTC milliseconds"),
    Column("end_ms", Integer, nullable=False, comment="period end (exclusive), UTC milliseconds"),
    *(Column(f"{m}_{e}", Float, comment=f"{e} of the samples' {m}") for m in _MINMAX for e in ("min", "max")),
    Column("energy_generated_kwh", Float, nullable=False, comment="pv_power integrated over time"),
    Column("energy_consumed_kwh", Float, nullable=False, comment="load_power integrated over time"),
    Column("battery_charge_ah", Float, nullable=False, comment="positive battery_current integrated"),
    Column("battery_discharge_ah", Float, nullable=False, comment="negative battery_current integrated, as a positive number"),
    Column("samples", Integer, nullable=False, comment="live samples in the period"),
    Column("first_ts_ms", Integer, comment="first live sample, UTC milliseconds"),
    Column("last_ts_ms", Integer, comment="last live sample, UTC milliseconds"),
    Column("covered_ms", Integer, nullable=False, comment="time between samples that was integrated"),
    Column("device_generated_kwh", Float, comment="generated_today of the day's last device_statistics row"),
    Column("device_consumed_kwh", Float, comment="consumed_today of the day's last device_statistics row"),
    Column("device_stats_ts_ms", Integer, comment="time of the device_statistics row the device values come from"),
    Column("version", Integer, nullable=False, comment="change stamp for replication, see the table doc"),
    Column("month_start_ms", Integer, comment="start of the day's local month, UTC milliseconds"),
    Column("month_end_ms", Integer, comment="end (exclusive) of the day's local month, UTC milliseconds"),
    Column("device_month_generated_kwh", Float, comment="generated_this_month of the same device_statistics row"),
    Column("device_month_consumed_kwh", Float, comment="consumed_this_month of the same device_statistics row"),
    Column("open_minute_ms", Integer, comment="on the newest row of a device: the UTC minute its raw samples "
                                              "still answer for (not yet in rollup_minute); NULL on the others"),
    Column("battery_charge_kwh", Float, nullable=False, server_default="0",
           comment="positive battery power (battery_voltage × battery_current) integrated (migration 0015)"),
    Column("battery_discharge_kwh", Float, nullable=False, server_default="0",
           comment="negative battery power integrated, as a positive number (migration 0015)"),
    Index("ix_rollup_daily_open", "device", sqlite_where=text("open_minute_ms IS NOT NULL")),
    # The month's days and the device's own monthly figures, one lookup per month (migration 0006).
    Index("ix_rollup_daily_month", "device", text("substr(day, 1, 7)"), "device_stats_ts_ms"),
    comment=(
        "Statistics of one device per local day (the site's zone); kept forever, never pruned."
        " The `rollup_monthly` view sums them per local month."
        " Every change to a row sets `version` above the largest version in the table,"
        " and rows are never deleted, so `WHERE version > watermark` finds exactly the rows changed since a watermark."
        " The row of a device's newest sample names its open minute (open_minute_ms)."
    ),
)

rollup_minute = Table(
    "rollup_minute",
    metadata,
    Column("device", Text, primary_key=True),
    Column("minute_ms", Integer, primary_key=True, comment="start of the UTC minute, UTC milliseconds"),
    Column("samples", Integer, nullable=False, comment="live samples in the minute; mean = sum / samples"),
    *(Column(f"{m}_{e}", Float, nullable=False) for m in MINUTE_METRICS for e in ("sum", "min", "max")),
    Index("ix_rollup_minute_minute", "minute_ms"),  # the prune deletes by time, every device at once
    comment="Closed one-minute buckets of the live values (the `minute_buckets` view adds the open minute);"
            " pruned with the raw samples, never before them.",
)

rollup_meta = Table(
    "rollup_meta",
    metadata,
    Column("key", Text, primary_key=True, comment="timezone, samples_pruned_before_ms"),
    Column("value", Text, nullable=False),
    comment="What the rollups were built with: the zone of their periods, how far raw samples were pruned.",
)


rollup_versions = Table(
    "rollup_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="always 1: a single row"),
    Column("closed_max", Integer, nullable=False,
           comment="at least the version of every rollup_daily row that is not open (kept by triggers)"),
    comment="With the open rows' versions (a partial-index lookup), the largest version of rollup_daily"
            " without reading the table (migration 0006).",
)


# -- replication (replicator/, migration 0003) ------------------------------------

replication_watermarks = Table(
    "replication_watermarks",
    metadata,
    Column("stream", Text, primary_key=True,
           comment="the table the stream replicates: live_samples, device_statistics, ..., rollup_daily"),
    Column("position", Integer, nullable=False,
           comment="highest row id (rollups: version) the server acknowledged with 2xx"),
    Column("updated_ms", Integer, nullable=False),
    comment="Per stream, how far the cloud has everything. Only the replicator writes it, after a 2xx.",
)

sample_id_gaps = Table(
    "sample_id_gaps",
    metadata,
    Column("stream", Text, primary_key=True, comment="the sample table"),
    Column("first_id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer, nullable=False),
    comment="Row ids deleted out of id order above the oldest row left (migration 0006): ids are otherwise"
            " dense, so rows above an id are a difference of ids minus these.",
)

replication_dead_letters = Table(
    "replication_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts_ms", Integer, nullable=False, comment="when the server refused it, UTC milliseconds"),
    Column("stream", Text, nullable=False),
    Column("row_key", Integer, nullable=False, comment="id (rollups: version) of the row the point came from"),
    Column("status", Integer, nullable=False, comment="HTTP status"),
    Column("message", Text, nullable=False, comment="what the server said"),
    Column("line", Text, nullable=False, comment="the point, in line protocol"),
    Index("ix_replication_dead_letters_ts", "ts_ms"),
    sqlite_autoincrement=True,
    comment="Points the server refused on their own (400/422 after bisection); the newest 10000 are kept.",
)

replication_state = Table(
    "replication_state",
    metadata,
    Column("id", Integer, primary_key=True, comment="always 1: a single row"),
    Column("last_attempt_ms", Integer),
    Column("last_success_ms", Integer),
    Column("last_error_ms", Integer),
    Column("last_error", Text),
    Column("last_status", Integer, comment="HTTP status of the last error, NULL when no answer came"),
    Column("blocked", Text, comment="set while sending is stopped because the server refused the credentials"),
    Column("blocked_credentials", Text, comment="fingerprint of the refused credentials"),
    Column("blocked_ms", Integer),
    Column("updated_ms", Integer, nullable=False),
    comment="What the replicator last did, for `kammthaar status`, /health and /metrics.",
)


# -- reconciliation (replicator/reconcile.py, migration 0012) ---------------------

reconcile_days = Table(
    "reconcile_days",
    metadata,
    Column("day", Text, primary_key=True, comment="UTC day YYYY-MM-DD"),
    Column("checked_ms", Integer, nullable=False, comment="when it was last checked, UTC milliseconds"),
    Column("points_local", Integer, nullable=False, comment="points the Pi sent for the day (what it holds)"),
    Column("points_cloud", Integer, nullable=False, comment="of those, the points the cloud held when checked"),
    Column("points_missing", Integer, nullable=False, comment="points_local - points_cloud"),
    Column("completeness", Float, nullable=False, comment="points_cloud / points_local (1 when nothing to hold)"),
    Column("hours_differing", Integer, nullable=False,
           comment="(measurement, device, UTC hour) ranges whose count or checksum differed"),
    Column("hours_repaired", Integer, nullable=False, comment="of those, the ones equal after re-sending"),
    Column("hours_still_differing", Integer, nullable=False, comment="the ones still different after re-sending"),
    Column("repaired", Text, nullable=False,
           comment="the ranges re-sent, one per line: measurement device HH:00-HH:00 (or a statistics row)"),
    comment="What the last reconciliation of each UTC day found (what the cloud held) and repaired.",
)

reconcile_state = Table(
    "reconcile_state",
    metadata,
    Column("id", Integer, primary_key=True, comment="always 1: a single row"),
    Column("last_pass_ms", Integer, comment="end of the last complete pass, UTC milliseconds"),
    Column("last_pass_ok", Boolean(create_constraint=False), comment="whether the cloud matched after it"),
    Column("unsupported", Text, comment="why the cloud cannot answer InfluxQL (reconciliation off), else NULL"),
    Column("updated_ms", Integer, nullable=False),
    comment="The reconciliation's own state, for `kammthaar status`, /health and the daemon's schedule.",
)


# -- the API's own state (api/, migration 0004) ------------------------------------

# The API's own state may live in PostgreSQL (a cloud deployment), where INTEGER is 32 bits:
# millisecond times are BIGINT there, and stay SQLite's INTEGER (64 bits) in the store.
MS = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False, comment="scrypt$N$r$p$salt$hash (base64): salted and slow"),
    Column("token_version", Integer, nullable=False,
           comment="carried by every token; a password change increments it, ending the earlier tokens"),
    Column("account_id", Text, nullable=False,
           comment="random, per account, carried by every token: a user removed and added again is a new account"),
    Column("created_ms", MS, nullable=False),
    Column("password_changed_ms", MS, nullable=False),
    Column("role", Text, nullable=False, server_default="installer",
           comment="installer (every site) or viewer (the sites of user_sites); migration 0014"),
    Index("ux_users_username", "username", unique=True),
    sqlite_autoincrement=True,
    comment="Who may log in to the API (`kammthaar user add|passwd|list|remove`).",
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", Text, primary_key=True, comment="the token's id (JWT jti)"),
    Column("username", Text, nullable=False),
    Column("expires_ms", MS, nullable=False, comment="when the token would have expired: the row may go then"),
    Column("revoked_ms", MS, nullable=False),
    Index("ix_revoked_tokens_expires", "expires_ms"),
    comment="Refresh tokens ended by a logout before they expired.",
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", Text, primary_key=True, comment="user:NAME, client:ADDRESS or pair:NAME@ADDRESS"),
    Column("failures", Integer, nullable=False, comment="failed (or ongoing) logins since window_start_ms"),
    Column("window_start_ms", MS, nullable=False),
    Column("blocked_until_ms", MS, comment="not written since issue 18: api/throttle.py decides from failures "
                                           "and window_start_ms"),
    comment="Attempted logins per user, per client and per pair, counted before the password is checked "
            "(api/throttle.py); a successful login takes its attempt back and clears its pair.",
)

user_sites = Table(
    "user_sites",
    metadata,
    Column("username", Text, primary_key=True),
    Column("site", Text, primary_key=True, comment="a `site` tag the viewer may see"),
    comment="The sites each viewer may see (`kammthaar user add|grant|revoke --sites`); installers see all.",
)

machine_tokens = Table(
    "machine_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, comment="what the token is for (a scraper, a host): unique"),
    Column("scope", Text, nullable=False, comment="what it opens: metrics (/metrics and /health)"),
    Column("token_hash", Text, nullable=False,
           comment="SHA-256 of the token (hex); the token itself is printed once and never stored"),
    Column("created_ms", MS, nullable=False),
    Column("last_used_ms", MS, comment="the last request it opened (written at most once a minute)"),
    Index("ux_machine_tokens_name", "name", unique=True),
    Index("ux_machine_tokens_hash", "token_hash", unique=True),
    sqlite_autoincrement=True,
    comment="Long-lived, scoped, revocable API tokens for machines (`kammthaar token create|list|revoke`).",
)

# -- alerts (issue 13; migration 0011) ------------------------------------------------------------

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts_ms", Integer, nullable=False, comment="the sample's time, UTC milliseconds"),
    Column("rule", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("severity", Text, nullable=False, comment="info, warning, critical"),
    Column("state", Text, nullable=False, comment="firing, resolved"),
    Column("value", Float),
    Column("threshold", Float),
    Column("message", Text, nullable=False),
    Index("ix_alert_events_ts", "ts_ms"),
    sqlite_autoincrement=True,
    comment="Every transition of an alert rule, written in the transaction of the sample that caused it.",
)

alert_state = Table(
    "alert_state",
    metadata,
    Column("rule", Text, primary_key=True),
    Column("device", Text, primary_key=True),
    Column("event_id", Integer, nullable=False, comment="the firing event"),
    Column("since_ms", Integer, nullable=False),
    comment="The alerts firing now, one row per rule and device: a restart re-establishes them.",
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("created_ms", Integer, nullable=False),
    Column("tries", Integer, nullable=False, server_default=text("0"),
           comment="sends started; above 0 with no sent_ms: a crash may have sent it already"),
    Column("sent_ms", Integer),
    Index("ix_notifications_unsent", "sent_ms", "id"),
    sqlite_autoincrement=True,
    comment="The outbox `kammthaar notify` drains, one row per alert event.",
)
