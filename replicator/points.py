"""Rows of the edge store as InfluxDB points: the measurements and fields of docs/influx-schema.md.

`MEASUREMENTS` says, per stream (the table a row comes from), which points a
row yields and how each field is computed from the row's columns. For the
sample streams it is read from the device's measurement catalogue
(edge_store/catalogue/): every field of the stream's register group that has
a measurement, decoded from its column as the catalogue says, with the
catalogue's type. The types are pinned by a test (`field_types()`): every
number is a float (`float(x)`, so 13 V goes out as a float and never as the
integer `13i` that would start a field type conflict), flags are booleans,
status and enum values are their names as strings, the device clock is a string.

Two ways to the same bytes:
- `Renderer.points(stream, row)`: influxdb-client `Point` objects (what its
  batching writer takes, and the reference);
- `Renderer.lines(stream, row)`: the line protocol, through our own
  serialisation (replicator/line_protocol.py, the same text as
  `Point.to_line_protocol()`) minus the per-point overhead: the
  measurement-and-tags prefix is serialised once per device, the timestamp
  once per row, the fields of the measurements that depend only on a status
  word, a flag or the settings once per distinct value, and every other
  field once per distinct stored value. A property test keeps it
  byte-identical to `Point.to_line_protocol()`.

Tags on every point: `site` and `device`. Timestamp: the row's `ts_ms` (UTC
milliseconds, precision ms); a rollup's is its period's start (UTC ms).

Per device model (`MODEL_MEASUREMENTS`): a row yields its model's fields, so
a field the model lacks is absent from InfluxDB, never a zero. The renderer
learns each device's model from `models` (device name -> model name); a
device it was not told about is the default model's (an EPEVER Tracer).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any, Callable, Mapping

from influxdb_client import Point, WritePrecision

from edge_store.catalogue import BOOLEAN, DEFAULT_MODEL, FLOAT, INTEGER, MODELS, STRING, Catalogue  # noqa: F401 (the types)
from edge_store.catalogue.fields import as_float
from edge_store.catalogue.rollup_figures import DAY, FIGURES, MONTH, PERIOD_FIELD
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS

from .line_protocol import field_text, fields_text, measurement_text, tags_text, time_text

PRECISION = WritePrecision.MS

LIVE_STREAM = "live_samples"
STATS_STREAM = "device_statistics"
SETTINGS_STREAM = "device_settings"
CLOCK_STREAM = "device_clock"
DAILY_STREAM = "rollup_daily"
MONTHLY_STREAM = "rollup_monthly"
SAMPLE_STREAMS = {LIVE_STREAM: LIVE, STATS_STREAM: STATS, SETTINGS_STREAM: SETTINGS, CLOCK_STREAM: CLOCK}

ALERTS_STREAM = "alert_events"  # issue 13: measurement `alerts`, tagged with its rule, severity and state
ALERT_TAGS = ("rule", "severity", "state")

# The column holding a row's time (UTC ms): a sample's poll time, a rollup's period start.
TIME_COLUMN = {DAILY_STREAM: "start_ms", MONTHLY_STREAM: "start_ms"}




@dataclass(frozen=True)
class Measurement:
    """One point a row yields: its name, the columns it reads, how they become fields.

    `specs`: per field, its name, the index of its column in `inputs` and the
    function turning the column's value into the field's. `memo`: the fields
    depend only on inputs that take few distinct values (a status word, a
    flag, the settings), so their serialisation is cached whole.
    """

    name: str
    inputs: tuple[str, ...]
    specs: tuple[tuple[str, int, Callable[[Any], Any]], ...]
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
    def ordered(self) -> tuple[tuple[str, int, Callable[[Any], Any]], ...]:
        """The specs in the order the fields are serialised (sorted by name)."""
        return tuple(sorted(self.specs, key=lambda spec: spec[0]))

    def fields(self, *args) -> dict[str, Any]:
        """The fields of a row, from its inputs (`args(row)`)."""
        return {name: convert(args[i]) for name, i, convert in self.specs}


def from_catalogue(catalogue: Catalogue, group: str) -> tuple[Measurement, ...]:
    """The points a row of a register group yields: one per measurement of its replicated fields.

    Settings change rarely, codes and flags take few values: their fields are memoised.
    """
    out = []
    for name, fields in catalogue.replicated(group).items():
        inputs = tuple(dict.fromkeys(f.column for f in fields))
        specs = tuple((f.influx, inputs.index(f.column), f.decode()) for f in fields)
        out.append(Measurement(name, inputs, specs, {f.influx: f.influx_type for f in fields},
                               memo=group == SETTINGS or all(f.coded for f in fields)))
    return tuple(out)


def _rollup(period: str) -> Measurement:
    """A rollup row as the API's statistics object: every figure a float, the period as a string."""
    def scaled(divisor: int) -> Callable[[Any], float | None]:
        return as_float if divisor == 1 else lambda v: None if v is None else v / divisor

    field = PERIOD_FIELD[period]
    inputs = (period, *(f.column for f in FIGURES))
    specs = ((field, 0, str), *((f.name, i, scaled(f.divisor)) for i, f in enumerate(FIGURES, 1)))
    return Measurement(f"rollup_{'daily' if period == DAY else 'monthly'}", inputs, specs,
                       {field: STRING, **{f.name: FLOAT for f in FIGURES}})


_ROLLUPS = {DAILY_STREAM: (_rollup(DAY),), MONTHLY_STREAM: (_rollup(MONTH),)}
# Tags besides site and device: ALERT_TAGS (Renderer.alert_point). Time: the event's (its sample's).
_ALERTS = {ALERTS_STREAM: (Measurement("alerts", ("value", "threshold", "id", "message"),
                                       (("value", 0, as_float), ("threshold", 1, as_float), ("event_id", 2, int),
                                        ("message", 3, str)),
                                       {"value": FLOAT, "threshold": FLOAT, "event_id": INTEGER, "message": STRING}),)}

# model -> stream -> the points a row yields (a stream of a group the model lacks yields none).
MODEL_MEASUREMENTS: dict[str, dict[str, tuple[Measurement, ...]]] = {
    name: {**{stream: from_catalogue(cat, group) for stream, group in SAMPLE_STREAMS.items()}, **_ROLLUPS,
           **_ALERTS}
    for name, cat in MODELS.items()
}
MEASUREMENTS = MODEL_MEASUREMENTS[DEFAULT_MODEL]


def field_types() -> dict[str, dict[str, str]]:
    """measurement -> field -> type, over every stream and model (a measurement fed by two merges)."""
    out: dict[str, dict[str, str]] = {}
    for tables in MODEL_MEASUREMENTS.values():
        for measurements in tables.values():
            for m in measurements:
                merged = out.setdefault(m.name, {})
                for name, kind in m.types.items():
                    if merged.setdefault(name, kind) != kind:  # pragma: no cover - guarded by a test
                        raise ValueError(f"{m.name}.{name} would have two types")
    return out


def lines_per_row(stream: str) -> int:
    """How many points one row of a stream yields (at most, over the models)."""
    return max(len(tables[stream]) for tables in MODEL_MEASUREMENTS.values())


class Renderer:
    """Rows to points or to line protocol, tagged with the site and the row's device.

    `models`: device name -> model name (`cfg.devices`); other devices are the default model's,
    whose tables `measurements` may replace.
    """

    MEMO_LIMIT = 4096
    PIECES_LIMIT = 65536

    def __init__(self, site: str, measurements: Mapping[str, tuple[Measurement, ...]] = MEASUREMENTS, *,
                 models: Mapping[str, str] | None = None):
        self.site = site
        self.measurements = dict(measurements)
        self._devices = {device: MODEL_MEASUREMENTS[model] for device, model in (models or {}).items()
                         if model != DEFAULT_MODEL}
        self._prefix: dict[tuple[str, str], str] = {}
        self._memo: dict[tuple, str] = {}
        self._pieces: dict[tuple, str] = {}

    # -- the reference: influxdb-client Point objects --------------------------------

    def alert_point(self, row: Mapping[str, Any]) -> Point:
        """An alert event: tags site, device, rule, severity, state; fields value, threshold, event_id, message."""
        point = Point("alerts").tag("site", self.site).tag("device", row["device"])
        for tag in ALERT_TAGS:
            point.tag(tag, row[tag])
        [m] = self.measurements[ALERTS_STREAM]
        for name, value in m.fields(*(row[c] for c in m.inputs)).items():
            point.field(name, value)
        return point.time(row["ts_ms"], PRECISION)

    def points(self, stream: str, row: Mapping[str, Any]) -> list[Point]:
        if stream == ALERTS_STREAM:
            return [self.alert_point(row)]
        out = []
        for m in self._devices.get(row["device"], self.measurements)[stream]:
            point = Point(m.name).tag("site", self.site).tag("device", row["device"])
            for name, value in m.fields(*(row[c] for c in m.inputs)).items():
                point.field(name, value)
            point.time(row[TIME_COLUMN.get(stream, "ts_ms")], PRECISION)
            out.append(point)
        return out

    # -- line protocol, through replicator/line_protocol.py --------------------------

    def _prefix_of(self, measurement: str, device: str) -> str:
        key = (measurement, device)
        prefix = self._prefix.get(key)
        if prefix is None:
            prefix = measurement_text(measurement) + tags_text({"site": self.site, "device": device})
            self._prefix[key] = prefix
        return prefix

    def lines(self, stream: str, row: Mapping[str, Any]) -> list[str]:
        """The row's points as line protocol, each line equal to `Point.to_line_protocol()`."""
        if stream == ALERTS_STREAM:  # rare rows: the reference serialisation
            return [self.alert_point(row).to_line_protocol()]
        device = row["device"]
        time_part = time_text(row[TIME_COLUMN.get(stream, "ts_ms")])
        out = []
        memo, pieces, prefixes = self._memo, self._pieces, self._prefix
        for m in self._devices.get(device, self.measurements)[stream]:
            args = m.args(row)
            if m.memo:
                key = (m.name, m.inputs, args)  # two models' points of one name read other columns
                fields = memo.get(key)
                if fields is None:
                    if len(memo) >= self.MEMO_LIMIT:
                        memo.clear()
                    fields = memo[key] = fields_text(m.fields(*args))
            else:
                # What `fields_text(m.fields(*args))` returns, field by field: each
                # field's text cached per (name, conversion, type, stored value), so a
                # value seen before costs no conversion; joined in sorted order,
                # leaving out the fields line protocol cannot hold.
                parts = []
                for name, i, convert in m.ordered:
                    value = args[i]
                    key = (name, convert, value.__class__, value)
                    piece = pieces.get(key)
                    if piece is None:
                        if len(pieces) >= self.PIECES_LIMIT:
                            pieces.clear()
                        piece = pieces[key] = field_text(name, convert(value))
                    if piece:
                        parts.append(piece)
                fields = ",".join(parts)
            if fields:
                prefix = prefixes.get((m.name, device)) or self._prefix_of(m.name, device)
                out.append(prefix + fields + time_part)
        return out
