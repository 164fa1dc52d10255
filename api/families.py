"""What a source needs to know to answer for one family of the contract, read from the catalogue.

A `Family` (battery, solar, ...) is one API object of the device's
measurement catalogue (edge_store/catalogue/), built from the newest row of
one or more register groups: `parts`, the primary one first (the group of
the object's first field: its time is the object's time, its freshness
decides `realtime`). Each part names where it lives in the store (the
group's table) and in InfluxDB (measurement and fields, as the replicator
writes them). `from_rows` builds the object from store rows, `from_records`
from InfluxDB records; both decode and round each field as the catalogue
says, so both give the same JSON for the same sample. A `Metric` is one
series: its one-minute bucket column in the store, its measurement and
field in InfluxDB.

A family is built for one device model: its keys are the object's keys over
every model (edge_store/catalogue/: one vocabulary), and a key the model lacks
is null (its schema says nullable). A part of a group the model has no field
of in the object is read for its time only, from a field the model writes with
every row of that group.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from edge_store import catalogue as cat
from edge_store.catalogue import EPEVER_TRACER, Catalogue, Field


@dataclass(frozen=True)
class Part:
    """One group's contribution to an object: the store's group, InfluxDB's measurement and fields."""

    group: str
    measurement: str | None  # None: not replicated (the cloud answers null for what it gives)
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    name: str
    parts: tuple[Part, ...]
    from_rows: Callable[[Mapping[str, Mapping[str, Any] | None]], dict]
    from_records: Callable[[Mapping[str, Mapping[str, Any] | None]], dict]
    schema: dict = field(default_factory=dict)  # the object's OpenAPI schema
    api_object: str = ""
    model: str = ""

    @property
    def primary(self) -> Part:
        return self.parts[0]

    def for_model(self, model: str) -> "Family":
        """The same object for a device of another model (itself for its own)."""
        if model == self.model or not self.api_object:
            return self
        return _for_model(self.name, self.api_object, model)


@dataclass(frozen=True)
class Metric:
    """One series: `column` of minute_buckets and live_samples, `field` of `measurement` in InfluxDB."""

    name: str
    column: str
    measurement: str
    field: str


@dataclass(frozen=True)
class Snapshot:
    """The newest object of a family and the time of its primary row (UTC ms)."""

    ts_ms: int
    value: dict


def r2(value: Any) -> float | None:
    """A number at the device's resolution (2 decimals); None stays None."""
    return None if value is None else round(float(value) + 0.0, 2)


def r3(value: Any) -> float | None:
    """kWh and Ah to 3 decimals (1 Wh, 1 mAh)."""
    return None if value is None else round(float(value) + 0.0, 3)


@functools.lru_cache(maxsize=1024)
def _day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


def iso(ts_ms: int) -> str:
    """UTC milliseconds as ISO 8601 with milliseconds and a Z: 2026-06-21T10:05:00.000Z.
    The date is cached per day (a fleet list formats thousands of times a request)."""
    day, ms = divmod(int(ts_ms), 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{_day(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"


def get(mapping: Mapping[str, Any] | None, key: str) -> Any:
    """`mapping[key]`, or None when the part has no row."""
    return None if mapping is None else mapping.get(key)


# -- shared OpenAPI pieces -----------------------------------------------------------

NULLABLE_NUMBER = {"type": "number", "nullable": True}
STRING = {"type": "string"}


def obj(properties: dict, nullable: bool = False) -> dict:
    """A closed object schema: every property required, nothing else."""
    out = {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}
    if nullable:
        out["nullable"] = True
    return out


# -- families and metrics from the catalogue -------------------------------------------------

_OPENAPI_TYPE = {cat.FLOAT: "number", cat.INTEGER: "integer", cat.BOOLEAN: "boolean", cat.STRING: "string"}


def _field_schema(f: Field, nullable: bool) -> dict:
    out: dict = {"type": _OPENAPI_TYPE[f.type]}
    if nullable:
        out["nullable"] = True
    if f.description:
        out["description"] = f.description
    return out


def _group(f: Field) -> str:
    """The register group a field's column is read with (one group per column over the models)."""
    return next(c.group(f) for c in cat.MODELS.values() if c.has_column(f.column))


def _object_schema(api_object: str, primary: str) -> dict:
    """Every key required; null when the key's group has no row (not the primary one) or a model lacks it."""
    everywhere = {f for f in cat.object_fields(api_object)
                  if all(f in c.fields for c in cat.MODELS.values())}

    def schema(node: dict) -> dict:
        return obj({k: schema(v) if isinstance(v, dict)
                    else _field_schema(v, _group(v) != primary or v not in everywhere) for k, v in node.items()})

    return schema(Catalogue.nest(cat.object_fields(api_object), lambda f: f))


def _part(catalogue: Catalogue, api_object: str, group: str, fs: list[Field]) -> Part:
    if not fs:  # the model has nothing of this object in the group: its time from a field it always writes
        stamp = catalogue.stamp(group)
        return Part(group, None) if stamp is None else Part(group, stamp.measurement, (stamp.influx,))
    measurements = {f.measurement for f in fs}
    if len(measurements) != 1:
        raise ValueError(f"{api_object}: the {group} group's fields are in several measurements: {measurements}")
    return Part(group, fs[0].measurement, tuple(f.influx for f in fs if f.measurement))


def family(name: str, api_object: str, catalogue: Catalogue = EPEVER_TRACER) -> Family:
    """The family answering the API object `api_object` for a device of `catalogue`'s model
    (`name` is what messages call it)."""
    fields = cat.object_fields(api_object)
    has = set(catalogue.fields)
    groups: dict[str, list[Field]] = {}
    for f in fields:
        groups.setdefault(_group(f), [])
        if f in has:
            groups[_group(f)].append(f)
    parts = tuple(_part(catalogue, api_object, group, fs) for group, fs in groups.items())
    from_column = {f: (_group(f), f.column, f.from_column()) for f in fields if f in has}
    from_influx = {f: (_group(f), f.influx, f.from_influx()) for f in fields if f in has and f.measurement}

    def from_rows(rows: Mapping[str, Mapping[str, Any] | None]) -> dict:
        def value(f: Field) -> Any:
            read = from_column.get(f)
            return None if read is None else read[2](get(rows[read[0]], read[1]))
        return Catalogue.nest(fields, value)

    def from_records(records: Mapping[str, Mapping[str, Any] | None]) -> dict:
        def value(f: Field) -> Any:
            read = from_influx.get(f)
            return None if read is None else read[2](get(records[read[0]], read[1]))
        return Catalogue.nest(fields, value)

    return Family(name, parts, from_rows, from_records, _object_schema(api_object, parts[0].group), api_object,
                  catalogue.model)


@functools.lru_cache(maxsize=None)
def _for_model(name: str, api_object: str, model: str) -> Family:
    return family(name, api_object, cat.MODELS[model])


def metric(api_object: str, key: str) -> Metric:
    """The 24 h series of a field (one the catalogue keeps in one-minute buckets; the same for every model)."""
    f = next((f for f in cat.object_fields(api_object) if f.key == key), None)
    if f is None:
        raise KeyError(f"no model has a field {api_object}.{key}")
    if f.series is None:
        raise ValueError(f"{api_object}.{key} has no series")
    return Metric(f.series, f.column, f.measurement, f.influx)
