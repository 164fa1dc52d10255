"""InfluxDB line protocol text: escaping and serialisation, byte for byte what influxdb-client writes.

influxdb-client serialises a `Point` with private helpers we must not import;
these few functions produce the same text (the rules of its
`Point.to_line_protocol()`: sorted tags and fields, `None` and non-finite
floats left out, a whole float without its `.0`, integers with `i`, strings
quoted). A property test (tests/test_replicator_points.py) keeps them equal
to `Point.to_line_protocol()` on every kind of value we write.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def measurement_text(name: str) -> str:
    return str(name).translate(_ESCAPE_MEASUREMENT)


def key_text(key: str) -> str:
    """A tag or field key, escaped."""
    return str(key).translate(_ESCAPE_KEY)


def tags_text(tags: Mapping[str, Any]) -> str:
    """`,k=v,...` sorted by key, then the space before the fields; empty keys or values are left out."""
    parts = []
    for key, value in sorted(tags.items()):
        if value is None:
            continue
        k, v = key_text(key), key_text(value)
        if v.endswith("\\"):
            v += " "  # a trailing backslash would escape the separator
        if k and v:
            parts.append(f"{k}={v}")
    return ("," if parts else "") + ",".join(parts) + " "


def field_text(key: str, value: Any) -> str:
    """`key=value` of one field, or "" for a value line protocol cannot hold (None, NaN, infinities)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        text = str(value)
        return f"{key_text(key)}={text[:-2] if text.endswith('.0') else text}"
    if isinstance(value, bool):
        return f"{key_text(key)}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{key_text(key)}={value}i"
    if isinstance(value, str):
        return f'{key_text(key)}="{value.translate(_ESCAPE_STRING)}"'
    raise ValueError(f'Type: "{type(value)}" of field: "{key}" is not supported.')


def fields_text(fields: Mapping[str, Any]) -> str:
    """The field set, sorted by key; empty when no field has a value."""
    return ",".join(t for t in (field_text(k, v) for k, v in sorted(fields.items())) if t)


def time_text(ts: int | None) -> str:
    """` <timestamp>` (an integer in the write's precision), or "" without one."""
    return "" if ts is None else f" {int(ts)}"

