"""The rollups' SQL text, with named parameters (`:name`), for the writer, the rebuild and the API.

Every statement runs on a raw driver connection inside a transaction of
edge_store/db.py, its parameters passed as a dict; only the hot path's
FAST_UPDATE is bound by position, through `by_position`, its text still named.
"""

from __future__ import annotations

import re

from ..schema import MINUTE_METRICS

_NAME = re.compile(r":([A-Za-z_]\w*)")


def by_position(text: str, order: tuple[str, ...]) -> str:
    """`text` with each `:name` turned into `?N`, N its place in `order` (from 1), for a statement
    bound with a tuple in that order: binding 13 parameters from a dict costs the collector's
    hot path about 2 µs per sample (of some 13 µs the rollups cost), and the text keeps its names. Every name must be in `order` and every one of `order` in the text."""
    names = set(_NAME.findall(text))
    if names != set(order) or len(order) != len(names):
        raise ValueError(f"parameters {sorted(names)} are not {order}")
    return _NAME.sub(lambda m: f"?{order.index(m.group(1)) + 1}", text)


def _least(col: str) -> str:
    # SQLite's two-argument min() is NULL if either side is: the other side wins then.
    return f"{col} = min(coalesce({col}, excluded.{col}), coalesce(excluded.{col}, {col}))"


def _greatest(col: str) -> str:
    return f"{col} = max(coalesce({col}, excluded.{col}), coalesce(excluded.{col}, {col}))"


def _newer(col: str) -> str:
    # The device's own figures: the latest device_statistics row of the day wins.
    newer = "excluded.device_stats_ts_ms >= coalesce(device_stats_ts_ms, excluded.device_stats_ts_ms)"
    return f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {col} END"


# -- the writer's day rows ------------------------------------------------------------

# Add deltas to a day row. The period: :device, :day, :timezone, :start_ms, :end_ms, :month_start_ms,
# :month_end_ms. The sample's :battery_voltage, :pv_voltage, :state_of_charge, :battery_temperature (or
# NULLs), its time :ts_ms (or NULL) and :samples (1 or 0). Energy :generated_kwh and :consumed_kwh,
# :charge_ah and :discharge_ah, :charge_kwh and :discharge_kwh, :covered_ms. The device's figures of the day (:device_generated_kwh,
# :device_consumed_kwh), of the month (:device_month_generated_kwh, :device_month_consumed_kwh) and
# their time :device_stats_ts_ms (or NULLs). The new :version. Returns the row's rowid.
DAILY_UPSERT = (
    "INSERT INTO rollup_daily (device, day, timezone, start_ms, end_ms, "
    "battery_voltage_min, battery_voltage_max, pv_voltage_min, pv_voltage_max, soc_min, soc_max, "
    "battery_temperature_min, battery_temperature_max, energy_generated_kwh, energy_consumed_kwh, "
    "battery_charge_ah, battery_discharge_ah, samples, first_ts_ms, last_ts_ms, covered_ms, "
    "device_generated_kwh, device_consumed_kwh, device_stats_ts_ms, version, month_start_ms, month_end_ms, "
    "device_month_generated_kwh, device_month_consumed_kwh, battery_charge_kwh, battery_discharge_kwh) "
    "VALUES (:device, :day, :timezone, :start_ms, :end_ms, :battery_voltage, :battery_voltage, "
    ":pv_voltage, :pv_voltage, :state_of_charge, :state_of_charge, :battery_temperature, :battery_temperature, "
    ":generated_kwh, :consumed_kwh, :charge_ah, :discharge_ah, :samples, :ts_ms, :ts_ms, :covered_ms, "
    ":device_generated_kwh, :device_consumed_kwh, :device_stats_ts_ms, :version, :month_start_ms, "
    ":month_end_ms, :device_month_generated_kwh, :device_month_consumed_kwh, :charge_kwh, :discharge_kwh) "
    "ON CONFLICT (device, day) DO UPDATE SET "
    + ", ".join([
        _least("battery_voltage_min"), _greatest("battery_voltage_max"),
        _least("pv_voltage_min"), _greatest("pv_voltage_max"),
        _least("soc_min"), _greatest("soc_max"),
        _least("battery_temperature_min"), _greatest("battery_temperature_max"),
        "energy_generated_kwh = energy_generated_kwh + excluded.energy_generated_kwh",
        "energy_consumed_kwh = energy_consumed_kwh + excluded.energy_consumed_kwh",
        "battery_charge_ah = battery_charge_ah + excluded.battery_charge_ah",
        "battery_discharge_ah = battery_discharge_ah + excluded.battery_discharge_ah",
        "battery_charge_kwh = battery_charge_kwh + excluded.battery_charge_kwh",
        "battery_discharge_kwh = battery_discharge_kwh + excluded.battery_discharge_kwh",
        "samples = samples + excluded.samples",
        _least("first_ts_ms"), _greatest("last_ts_ms"),
        "covered_ms = covered_ms + excluded.covered_ms",
        # device_stats_ts_ms last: the CASEs before it compare against its old value.
        _newer("device_generated_kwh"), _newer("device_consumed_kwh"),
        _newer("device_month_generated_kwh"), _newer("device_month_consumed_kwh"),
        _newer("device_stats_ts_ms"),
        "version = excluded.version",
    ])
    + " RETURNING rowid"
)

# The hot path: the next in-order sample of the open minute of the open day, one row, one page.
# :rowid, :seen_version the version the writer last gave the row (another writer changed it: no
# row matches and the writer re-reads), :version the new one, energy :generated_kwh and
# :consumed_kwh, :charge_ah and :discharge_ah, :charge_kwh and :discharge_kwh, :covered_ms, the sample's time :ts_ms and its
# :battery_voltage, :pv_voltage, :state_of_charge, :battery_temperature. The row has samples,
# so its min/max are not NULL.
FAST_UPDATE = (
    "UPDATE rollup_daily SET "
    "battery_voltage_min = min(battery_voltage_min, :battery_voltage), "
    "battery_voltage_max = max(battery_voltage_max, :battery_voltage), "
    "pv_voltage_min = min(pv_voltage_min, :pv_voltage), pv_voltage_max = max(pv_voltage_max, :pv_voltage), "
    "soc_min = min(soc_min, :state_of_charge), soc_max = max(soc_max, :state_of_charge), "
    "battery_temperature_min = min(battery_temperature_min, :battery_temperature), "
    "battery_temperature_max = max(battery_temperature_max, :battery_temperature), "
    "energy_generated_kwh = energy_generated_kwh + :generated_kwh, "
    "energy_consumed_kwh = energy_consumed_kwh + :consumed_kwh, "
    "battery_charge_ah = battery_charge_ah + :charge_ah, battery_discharge_ah = battery_discharge_ah + :discharge_ah, "
    "battery_charge_kwh = battery_charge_kwh + :charge_kwh, "
    "battery_discharge_kwh = battery_discharge_kwh + :discharge_kwh, "
    "samples = samples + 1, last_ts_ms = :ts_ms, covered_ms = covered_ms + :covered_ms, version = :version "
    "WHERE rowid = :rowid AND version = :seen_version"
)
# The writer binds FAST_UPDATE by position (`by_position`), in this order.
FAST_UPDATE_ORDER = ("rowid", "seen_version", "version", "generated_kwh", "consumed_kwh", "charge_ah", "discharge_ah",
                     "charge_kwh", "discharge_kwh", "covered_ms", "ts_ms", "battery_voltage", "pv_voltage", "state_of_charge", "battery_temperature")
FAST_UPDATE_BY_POSITION = by_position(FAST_UPDATE, FAST_UPDATE_ORDER)

# What the writer checks of a row it cached (:rowid), and the open row of a :device.
OPEN_ROW_STATE = "SELECT version, open_minute_ms FROM rollup_daily WHERE rowid = :rowid"
OPEN_ROW_OF_DEVICE = ("SELECT rowid, open_minute_ms FROM rollup_daily "
                      "WHERE device = :device AND open_minute_ms IS NOT NULL")
SET_OPEN_MINUTE = "UPDATE rollup_daily SET open_minute_ms = :minute_ms WHERE rowid = :rowid"

# A late sample's neighbours of :device around :ts_ms, as integration points (integration.point). Samples are ordered by (ts_ms, id) and the new
# row (:id) has the largest id: everything at the same time came before it.
PREVIOUS_SAMPLE = (
    "SELECT ts_ms, pv_power, load_power, battery_current, battery_voltage * battery_current FROM live_samples "
    "WHERE device = :device AND ts_ms <= :ts_ms AND id <> :id ORDER BY ts_ms DESC, id DESC LIMIT 1"
)
NEXT_SAMPLE = (
    "SELECT ts_ms, pv_power, load_power, battery_current, battery_voltage * battery_current FROM live_samples "
    "WHERE device = :device AND ts_ms > :ts_ms ORDER BY ts_ms, id LIMIT 1"
)

# -- minute buckets ---------------------------------------------------------------------

# rollup_minute's value columns, and the aggregates that compute them from live_samples rows.
MINUTE_COLUMNS = ", ".join(f"{m}_sum, {m}_min, {m}_max" for m in MINUTE_METRICS)
MINUTE_AGGREGATES = ", ".join(f"sum({m}), min({m}), max({m})" for m in MINUTE_METRICS)

_MINUTE_MERGE = (
    " ON CONFLICT (device, minute_ms) DO UPDATE SET samples = samples + excluded.samples, "
    + ", ".join(f"{m}_sum = {m}_sum + excluded.{m}_sum, {m}_min = min({m}_min, excluded.{m}_min), "
                f"{m}_max = max({m}_max, excluded.{m}_max)" for m in MINUTE_METRICS)
)

# One late sample into its closed minute: :device, :minute_ms and the sample's MINUTE_METRICS by name.
MINUTE_UPSERT = (
    f"INSERT INTO rollup_minute (device, minute_ms, samples, {MINUTE_COLUMNS}) VALUES (:device, :minute_ms, 1, "
    + ", ".join(f":{m}, :{m}, :{m}" for m in MINUTE_METRICS)
    + ")" + _MINUTE_MERGE
)

# Close a :device's open minute :minute_ms: its bucket from its raw samples, as the rebuild computes
# it (MINUTES_FROM_SAMPLES). Only the open minute has samples at or after it and before the newest
# sample's minute, so one minute, no GROUP BY (no sorter).
CLOSE_MINUTE = (
    f"INSERT INTO rollup_minute (device, minute_ms, samples, {MINUTE_COLUMNS}) "
    f"SELECT * FROM (SELECT :device, :minute_ms, count(*) AS n, {MINUTE_AGGREGATES}"
    " FROM live_samples WHERE device = :device AND ts_ms >= :minute_ms AND ts_ms < :minute_ms + 60000)"
    " WHERE n > 0" + _MINUTE_MERGE
)

# A minute is closed or open, never both: a :device's buckets from :minute_ms on go when it opens.
DELETE_MINUTES_FROM = "DELETE FROM rollup_minute WHERE device = :device AND minute_ms >= :minute_ms"


def bucket_means_sql(column: str) -> str:
    """SQL for the means of one MINUTE_METRICS column per :every_ms bucket (a multiple of a minute)
    of :device over the minutes in [:start_ms, :end_ms): the closed minutes' buckets and the open
    minute's raw samples, as the minute_buckets view, but reading one column (the view's union
    carries all 37 of them through, three times slower over a day)."""
    if column not in MINUTE_METRICS:  # a column name is ours, never a request's text
        raise ValueError(f"no minute buckets for {column}")
    return (
        "SELECT m - m % :every_ms AS bucket, sum(s) / sum(n) FROM ("
        f"SELECT minute_ms AS m, samples AS n, {column}_sum AS s FROM rollup_minute "
        "WHERE device = :device AND minute_ms >= :start_ms AND minute_ms < :end_ms "
        f"UNION ALL SELECT l.ts_ms - l.ts_ms % 60000, 1, l.{column} FROM rollup_daily d "
        "JOIN live_samples l ON l.device = d.device AND l.ts_ms >= d.open_minute_ms "
        "WHERE d.device = :device AND d.open_minute_ms IS NOT NULL "
        "AND l.ts_ms - l.ts_ms % 60000 >= :start_ms AND l.ts_ms - l.ts_ms % 60000 < :end_ms"
        ") GROUP BY bucket ORDER BY bucket"
    )


# -- rollup_meta and versions -------------------------------------------------------------

READ_META = "SELECT value FROM rollup_meta WHERE key = :key"
WRITE_META = ("INSERT INTO rollup_meta (key, value) VALUES (:key, :value) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
# A meta value that only grows (compared as integers).
RAISE_META = ("INSERT INTO rollup_meta (key, value) VALUES (:key, :value) ON CONFLICT (key) "
              "DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))")
# The largest version without reading the table (migration 0006): triggers keep rollup_versions at
# least the version of every row that is not open; the open rows (one per device) are a lookup in
# their partial index.
MAX_VERSION = ("SELECT max(coalesce((SELECT closed_max FROM rollup_versions WHERE id = 1), 0), "
               "coalesce((SELECT max(version) FROM rollup_daily INDEXED BY ix_rollup_daily_open "
               "WHERE open_minute_ms IS NOT NULL), 0))")
OPEN_ROWIDS = "SELECT rowid FROM rollup_daily WHERE open_minute_ms IS NOT NULL"
SET_VERSION = "UPDATE rollup_daily SET version = :version WHERE rowid = :rowid"

# -- the rebuild ---------------------------------------------------------------------------

# The columns of a day row the rebuild computes, in the order `compute_day` returns them after
# the period's own three.
PERIOD_COLUMNS = (
    "timezone", "start_ms", "end_ms",
    "battery_voltage_min", "battery_voltage_max", "pv_voltage_min", "pv_voltage_max", "soc_min", "soc_max",
    "battery_temperature_min", "battery_temperature_max", "energy_generated_kwh", "energy_consumed_kwh",
    "battery_charge_ah", "battery_discharge_ah", "battery_charge_kwh", "battery_discharge_kwh",
    "samples", "first_ts_ms", "last_ts_ms", "covered_ms",
    "device_generated_kwh", "device_consumed_kwh", "device_stats_ts_ms",
    "device_month_generated_kwh", "device_month_consumed_kwh", "month_start_ms", "month_end_ms",
)

# Replace a :device's :day row whole, every PERIOD_COLUMNS by name, with a new :version, and close
# its open minute.
DAILY_REPLACE = (
    f"INSERT INTO rollup_daily (device, day, {', '.join(PERIOD_COLUMNS)}, version) "
    f"VALUES (:device, :day, {', '.join(':' + c for c in PERIOD_COLUMNS)}, :version) "
    "ON CONFLICT (device, day) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*PERIOD_COLUMNS, "version"))
    + ", open_minute_ms = NULL"
)

# The live samples an integration over a :device's [:start_ms, :end_ms] needs, in (ts_ms, id) order:
# the integration point (integration.point), then the values of the min/max figures.
DAY_SAMPLES = (
    "SELECT ts_ms, pv_power, load_power, battery_current, battery_voltage * battery_current, "
    "battery_voltage, pv_voltage, state_of_charge, "
    "battery_temperature FROM live_samples WHERE device = :device AND ts_ms >= :start_ms AND ts_ms <= :end_ms "
    "ORDER BY ts_ms, id"
)

# The period's device figures, in PERIOD_COLUMNS order: today's two, their time, the month's two.
LAST_STATS = (
    "SELECT generated_today, consumed_today, ts_ms, generated_this_month, consumed_this_month "
    "FROM device_statistics WHERE device = :device AND ts_ms >= :start_ms AND ts_ms < :end_ms "
    "ORDER BY ts_ms DESC, id DESC LIMIT 1"
)

# A :device's buckets of the minutes in [:start_ms, :end_ms): gone, then computed from raw samples.
DELETE_MINUTES_BETWEEN = ("DELETE FROM rollup_minute WHERE device = :device "
                          "AND minute_ms >= :start_ms AND minute_ms < :end_ms")
MINUTES_FROM_SAMPLES = (
    f"INSERT INTO rollup_minute (device, minute_ms, samples, {MINUTE_COLUMNS}) "
    f"SELECT device, ts_ms - ts_ms % 60000, count(*), {MINUTE_AGGREGATES} "
    "FROM live_samples WHERE device = :device AND ts_ms >= :start_ms AND ts_ms < :end_ms GROUP BY 2"
)

# What a rebuild plans from: every device, and per :device the times and days it has.
DEVICES = ("SELECT device FROM live_samples UNION SELECT device FROM device_statistics "
           "UNION SELECT device FROM rollup_daily ORDER BY 1")
# min() and max() apart: each alone is one index lookup, together a scan of the device's rows.
FIRST_TS = {table: f"SELECT min(ts_ms) FROM {table} WHERE device = :device"
            for table in ("live_samples", "device_statistics")}
LAST_TS = {table: f"SELECT max(ts_ms) FROM {table} WHERE device = :device"
           for table in ("live_samples", "device_statistics")}
DAYS_OF_DEVICE = "SELECT day FROM rollup_daily WHERE device = :device"
ANY_ROW = {table: f"SELECT 1 FROM {table} LIMIT 1" for table in ("live_samples", "device_statistics", "rollup_daily")}
