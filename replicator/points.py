"""Rows of the edge store as InfluxDB points: the measurements and fields of spec/influx.md.

`MEASUREMENTS` says, per stream (the table a row comes from), which points a
row yields and how each field is computed from the row's columns. The types
are decided here once and pinned by a test (`FIELD_TYPES`): every number is a
float (`float(x)`, so 13 V goes out as a float and never as the integer `13i`
that would start a field type conflict), flags are booleans, status and enum
values are their names as strings, the device clock is a string.

Two ways to the same bytes:
- `Renderer.points(stream, row)`: influxdb-client `Point` objects (what its
  batching writer takes, and the reference);
- `Renderer.lines(stream, row)`: the line protocol, through influxdb-client's
  own serialisation functions (`_append_tags`, `_append_fields`,
  `_append_time`, what `Point.to_line_protocol()` calls) minus the per-point
  overhead: the measurement-and-tags prefix is serialised once per device, the
  timestamp once per row, and the fields of the measurements that depend only
  on a status word or a flag once per distinct value. A property test keeps it
  byte-identical to `Point.to_line_protocol()`.

Tags on every point: `site` and `device`. Timestamp: the row's `ts_ms` (UTC
milliseconds, precision ms); a rollup's is its period's start (UTC ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any, Callable, Mapping

from influxdb_client import Point, WritePrecision
from influxdb_client.client.write.point import (
    _ESCAPE_MEASUREMENT,
    _append_fields,
    _append_tags,
    _append_time,
    _escape_key,
)

from edge_store import schema, status

PRECISION = WritePrecision.MS
FLOAT, BOOLEAN, STRING = "float", "boolean", "string"

LIVE_STREAM = "live_samples"
STATS_STREAM = "device_statistics"
SETTINGS_STREAM = "device_settings"
CLOCK_STREAM = "device_clock"
DAILY_STREAM = "rollup_daily"
MONTHLY_STREAM = "rollup_monthly"

# The column holding a row's time (UTC ms): a sample's poll time, a rollup's period start.
TIME_COLUMN = {DAILY_STREAM: "start_ms", MONTHLY_STREAM: "start_ms"}


def _f(value: Any) -> float | None:
    # + 0.0 turns -0.0 into 0.0: one zero, one text for it.
    return None if value is None else float(value) + 0.0


@dataclass(frozen=True)
class Measurement:
    """One point a row yields: its name, the columns it reads, how they become fields.

    `memo`: the fields depend only on the inputs, which take few distinct
    values (a status word, a flag), so their serialisation is cached.
    """

    name: str
    inputs: tuple[str, ...]
    fields: Callable[..., dict[str, Any]]
    types: dict[str, str]
    memo: bool = False

    @cached_property
    def args(self) -> Callable[[Mapping[str, Any]], tuple]:
        """The inputs of a row as a tuple (one C call)."""
        if len(self.inputs) == 1:
            name = self.inputs[0]
            return lambda row: (row[name],)
        return itemgetter(*self.inputs)

    @cached_property
    def order(self) -> tuple[str, ...]:
        """The field names in the order the client serialises them (sorted)."""
        return tuple(sorted(self.types))


def _flatten(decoded: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in decoded.items() if k != "errors"}
    out.update(decoded.get("errors", {}))
    return out


def _battery(voltage, current, power, soc, temperature, word) -> dict[str, Any]:
    return {"voltage": _f(voltage), "current": _f(current), "power": _f(power),
            "state_of_charge": _f(soc), "temperature": _f(temperature), **status.battery_status(word)}


def _vip(voltage, current, power) -> dict[str, Any]:
    return {"voltage": _f(voltage), "current": _f(current), "power": _f(power)}


def _settings_fields(*values) -> dict[str, Any]:
    out = {}
    for name, value in zip(SETTINGS_COLUMNS, values):
        out[name] = status.enum_name(name, int(value)) if name in status.ENUMS else _f(value)
    return out


_BATTERY_FLAGS = {"wrong_identifaction_for_rated_voltage": BOOLEAN, "battery_inner_resistence_abnormal": BOOLEAN,
                  "temperature_warning_status": STRING, "battery_status": STRING}
_CHARGING = {"input_voltage_status": STRING, "charging_status": STRING, "running": BOOLEAN, "fault": BOOLEAN,
             **{name: BOOLEAN for name in status.CHARGING_ERRORS.values()}}
_DISCHARGING = {"input_voltage_status": STRING, "output_power_load": STRING, "running": BOOLEAN, "fault": BOOLEAN,
                **{name: BOOLEAN for name in status.DISCHARGING_ERRORS.values()}}
_VIP = {"voltage": FLOAT, "current": FLOAT, "power": FLOAT}
_ENERGY = ("consumed_today", "consumed_this_month", "consumed_this_year", "total_consumed",
           "generated_today", "generated_this_month", "generated_this_year", "total_generated")

SETTINGS_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in schema.device_settings.columns if c.name not in ("id", "ts_ms", "ntp_synced", "device"))

# A rollup row as the API's statistics object: every number a float, the period as a string.
ROLLUP_NUMBERS = (
    "battery_voltage_min", "battery_voltage_max", "pv_voltage_min", "pv_voltage_max", "soc_min", "soc_max",
    "battery_temperature_min", "battery_temperature_max", "energy_generated_kwh", "energy_consumed_kwh",
    "battery_charge_ah", "battery_discharge_ah", "samples", "device_generated_kwh", "device_consumed_kwh",
)


def _rollup(period_field: str) -> Measurement:
    def fields(period, covered_ms, *numbers):
        out = {period_field: str(period), "covered_s": covered_ms / 1000.0}
        out.update((k, _f(v)) for k, v in zip(ROLLUP_NUMBERS, numbers))
        return out

    key = "day" if period_field == "date" else "month"
    return Measurement(f"rollup_{'daily' if key == 'day' else 'monthly'}", (key, "covered_ms", *ROLLUP_NUMBERS),
                       fields, {period_field: STRING, "covered_s": FLOAT, **{k: FLOAT for k in ROLLUP_NUMBERS}})


MEASUREMENTS: dict[str, tuple[Measurement, ...]] = {
    LIVE_STREAM: (
        Measurement("batteryStatus",
                    ("battery_voltage", "battery_current", "battery_power", "state_of_charge",
                     "battery_temperature", "battery_status"),
                    _battery,
                    {"voltage": FLOAT, "current": FLOAT, "power": FLOAT, "state_of_charge": FLOAT,
                     "temperature": FLOAT, **_BATTERY_FLAGS}),
        Measurement("solarData", ("pv_voltage", "pv_current", "pv_power"), _vip, _VIP),
        Measurement("loadData", ("load_voltage", "load_current", "load_power"), _vip, _VIP),
        Measurement("controllerData", ("controller_temperature", "device_over_temperature"),
                    lambda t, hot: {"temperature": _f(t), "device_over_temperature": bool(hot)},
                    {"temperature": FLOAT, "device_over_temperature": BOOLEAN}),
        Measurement("chargingEquipmentStatus", ("charging_equipment_status",),
                    lambda word: _flatten(status.charging_status(word)), _CHARGING, memo=True),
        Measurement("dischargingEquipmentStatus", ("discharging_equipment_status",),
                    lambda word: _flatten(status.discharging_status(word)), _DISCHARGING, memo=True),
        Measurement("dailyStatistics", ("night",),
                    lambda night: {"day_time": not night, "night_time": bool(night)},
                    {"day_time": BOOLEAN, "night_time": BOOLEAN}, memo=True),
    ),
    STATS_STREAM: (
        Measurement("energyStatistics", _ENERGY, lambda *v: {k: _f(x) for k, x in zip(_ENERGY, v)},
                    {k: FLOAT for k in _ENERGY}),
        Measurement("dailyStatistics", ("maximum_battery_voltage_today", "minimum_battery_voltage_today"),
                    lambda hi, lo: {"maximum_battery_voltage_today": _f(hi), "minimum_battery_voltage_today": _f(lo)},
                    {"maximum_battery_voltage_today": FLOAT, "minimum_battery_voltage_today": FLOAT}),
        Measurement("solarData", ("maximum_pv_voltage_today", "minimum_pv_voltage_today"),
                    lambda hi, lo: {"maximum_voltage_today": _f(hi), "minimum_voltage_today": _f(lo)},
                    {"maximum_voltage_today": FLOAT, "minimum_voltage_today": FLOAT}),
    ),
    SETTINGS_STREAM: (
        Measurement("batteryParameters", SETTINGS_COLUMNS, _settings_fields,
                    {name: STRING if name in status.ENUMS else FLOAT for name in SETTINGS_COLUMNS}, memo=True),
    ),
    CLOCK_STREAM: (
        Measurement("controllerData", ("device_time",), lambda t: {"current_device_time": str(t)},
                    {"current_device_time": STRING}),
    ),
    DAILY_STREAM: (_rollup("date"),),
    MONTHLY_STREAM: (_rollup("month"),),
}


def field_types() -> dict[str, dict[str, str]]:
    """measurement -> field -> type, over every stream (a measurement fed by two streams merges)."""
    out: dict[str, dict[str, str]] = {}
    for measurements in MEASUREMENTS.values():
        for m in measurements:
            merged = out.setdefault(m.name, {})
            for name, kind in m.types.items():
                if merged.setdefault(name, kind) != kind:  # pragma: no cover - guarded by a test
                    raise ValueError(f"{m.name}.{name} would have two types")
    return out


def lines_per_row(stream: str) -> int:
    """How many points one row of a stream yields (at most)."""
    return len(MEASUREMENTS[stream])


class Renderer:
    """Rows to points or to line protocol, tagged with the site and the row's device."""

    MEMO_LIMIT = 4096
    PIECES_LIMIT = 65536

    def __init__(self, site: str, measurements: Mapping[str, tuple[Measurement, ...]] = MEASUREMENTS):
        self.site = site
        self.measurements = dict(measurements)
        self._prefix: dict[tuple[str, str], str] = {}
        self._memo: dict[tuple, str] = {}
        self._pieces: dict[tuple, str] = {}

    # -- the reference: influxdb-client Point objects --------------------------------

    def points(self, stream: str, row: Mapping[str, Any]) -> list[Point]:
        out = []
        for m in self.measurements[stream]:
            point = Point(m.name).tag("site", self.site).tag("device", row["device"])
            for name, value in m.fields(*(row[c] for c in m.inputs)).items():
                point.field(name, value)
            point.time(row[TIME_COLUMN.get(stream, "ts_ms")], PRECISION)
            out.append(point)
        return out

    # -- line protocol, through the client's serialisation functions -----------------

    def _prefix_of(self, measurement: str, device: str) -> str:
        key = (measurement, device)
        prefix = self._prefix.get(key)
        if prefix is None:
            prefix = _escape_key(measurement, _ESCAPE_MEASUREMENT) + _append_tags({"site": self.site, "device": device})
            self._prefix[key] = prefix
        return prefix

    def lines(self, stream: str, row: Mapping[str, Any]) -> list[str]:
        """The row's points as line protocol, each line equal to `Point.to_line_protocol()`."""
        device = row["device"]
        time_part = _append_time(row[TIME_COLUMN.get(stream, "ts_ms")], PRECISION)
        out = []
        memo, pieces, prefixes = self._memo, self._pieces, self._prefix
        for m in self.measurements[stream]:
            args = m.args(row)
            if m.memo:
                key = (m.name, args)
                fields = memo.get(key)
                if fields is None:
                    if len(memo) >= self.MEMO_LIMIT:
                        memo.clear()
                    fields = memo[key] = _append_fields(m.fields(*args), {})
            else:
                # What `_append_fields(fields)` returns, field by field: each field's
                # text is the client's, cached per (name, type, value); joined in the
                # sorted order it uses, leaving out the fields it leaves out.
                values = m.fields(*args)
                parts = []
                for name in m.order:
                    value = values[name]
                    key = (name, value.__class__, value)
                    piece = pieces.get(key)
                    if piece is None:
                        if len(pieces) >= self.PIECES_LIMIT:
                            pieces.clear()
                        piece = pieces[key] = _append_fields({name: value}, {})
                    if piece:
                        parts.append(piece)
                fields = ",".join(parts)
            if fields:
                prefix = prefixes.get((m.name, device)) or self._prefix_of(m.name, device)
                out.append(prefix + fields + time_part)
        return out
