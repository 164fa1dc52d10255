"""What a source needs to know to answer for one family of the contract.

A `Family` (battery, solar, ...) is built from the newest row of one or more
register groups: `parts`, the primary one first (its time is the object's
time, its freshness decides `realtime`). Each part names where it lives in
the store (the group's table) and in InfluxDB (measurement and fields, as the
replicator writes them: replicator/points.py). `from_rows` builds the object
from store rows, `from_records` from InfluxDB records; both give the same
JSON for the same sample. A `Metric` is one series: its one-minute bucket
column in the store, its measurement and field in InfluxDB.

Numbers are rounded to the device's resolution (2 decimals) here, once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS

GROUPS = (LIVE, STATS, SETTINGS, CLOCK)


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


def iso(ts_ms: int) -> str:
    """UTC milliseconds as ISO 8601 with milliseconds and a Z: 2026-06-21T10:05:00.000Z."""
    seconds, ms = divmod(int(ts_ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def get(mapping: Mapping[str, Any] | None, key: str) -> Any:
    """`mapping[key]`, or None when the part has no row."""
    return None if mapping is None else mapping.get(key)


# -- shared OpenAPI pieces -----------------------------------------------------------

NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": "number", "nullable": True}
BOOLEAN = {"type": "boolean"}
STRING = {"type": "string"}


def obj(properties: dict, nullable: bool = False) -> dict:
    """A closed object schema: every property required, nothing else."""
    out = {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}
    if nullable:
        out["nullable"] = True
    return out
