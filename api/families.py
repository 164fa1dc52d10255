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

    @property
    def primary(self) -> Part:
        return self.parts[0]


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


def _object_schema(catalogue: Catalogue, api_object: str, primary: str) -> dict:
    """Every key required; a field of another group than the primary one is null when that group has no row."""
    def schema(node: dict) -> dict:
        return obj({k: schema(v) if isinstance(v, dict) else _field_schema(v, catalogue.group(v) != primary)
                    for k, v in node.items()})

    return schema(catalogue.nest(catalogue.object_fields(api_object), lambda f: f))


def family(name: str, api_object: str, catalogue: Catalogue = EPEVER_TRACER) -> Family:
    """The family answering the API object `api_object` of `catalogue` (`name` is what messages call it)."""
    fields = catalogue.object_fields(api_object)
    groups: dict[str, list[Field]] = {}
    for f in fields:
        groups.setdefault(catalogue.group(f), []).append(f)
    parts = []
    for group, fs in groups.items():
        measurements = {f.measurement for f in fs}
        if len(measurements) != 1:
            raise ValueError(f"{api_object}: the {group} group's fields are in several measurements: {measurements}")
        parts.append(Part(group, fs[0].measurement, tuple(f.influx for f in fs if f.measurement)))
    from_column = {f: (catalogue.group(f), f.column, f.from_column()) for f in fields}
    from_influx = {f: (catalogue.group(f), f.influx, f.from_influx()) for f in fields}

    def from_rows(rows: Mapping[str, Mapping[str, Any] | None]) -> dict:
        def value(f: Field) -> Any:
            group, column, convert = from_column[f]
            return convert(get(rows[group], column))
        return catalogue.nest(fields, value)

    def from_records(records: Mapping[str, Mapping[str, Any] | None]) -> dict:
        def value(f: Field) -> Any:
            group, influx, convert = from_influx[f]
            return convert(get(records[group], influx)) if f.measurement else None
        return catalogue.nest(fields, value)

    return Family(name, tuple(parts), from_rows, from_records, _object_schema(catalogue, api_object, parts[0].group))


def metric(api_object: str, key: str, catalogue: Catalogue = EPEVER_TRACER) -> Metric:
    """The 24 h series of a field (one the catalogue keeps in one-minute buckets)."""
    f = catalogue.field(api_object, key)
    if f.series is None:
        raise ValueError(f"{api_object}.{key} has no series")
    return Metric(f.series, f.column, f.measurement, f.influx)
