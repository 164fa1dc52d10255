"""Measurement catalogues, one per device model: what each field is everywhere (fields.py says how).

`MODELS` maps a model's name (the `model` of a `[[devices]]` entry) to its
catalogue. The models share one vocabulary: a value two models have is one
stored column, one InfluxDB field and one API key (the same `Field` line); a
value a model lacks is a NULL column in its rows, null in the API objects and
absent from InfluxDB. `columns(group)` is the union the sample tables hold,
`absent(model, group)` what a model's rows leave NULL, `object_fields(obj)`
the keys of an API object over every model. Adding a model is adding a module
like epever_tracer.py or renogy_rover.py and a line in `MODELS`.
"""

from __future__ import annotations

from .epever_tracer import EPEVER_TRACER
from .fields import BOOLEAN, FLOAT, INTEGER, STRING, Catalogue, Derived, Field
from .renogy_rover import RENOGY_ROVER

# The first model is the default one (a config without [[devices]]: one EPEVER Tracer).
MODELS: dict[str, Catalogue] = {c.model: c for c in (EPEVER_TRACER, RENOGY_ROVER)}
DEFAULT_MODEL = EPEVER_TRACER.model


def columns(group: str) -> tuple:
    """The value columns of a group's sample table: every model's, the first model's first.

    Each is (name, [the register or Derived line of each model having it]).
    """
    out: dict[str, list] = {}
    for cat in MODELS.values():
        for col in cat.columns(group):
            out.setdefault(col.name, []).append(col)
    return tuple(out.items())


def absent(cat: Catalogue, group: str) -> tuple[str, ...]:
    """The columns of a group's table the model has no value for (NULL in its rows)."""
    return tuple(name for name, _ in columns(group) if not cat.has_column(name))


def object_fields(api_object: str) -> tuple[Field, ...]:
    """The fields of an API object over every model, in the first model's key order, then the others'."""
    out: dict[str, Field] = {}
    for cat in MODELS.values():
        for f in cat.fields:
            if api_object in f.objects:
                out.setdefault(f.key, f)
    if not out:
        raise KeyError(f"no model has an API object {api_object!r}")
    return tuple(out.values())


def check_vocabulary(models: dict[str, Catalogue] = MODELS) -> None:
    """One meaning per column and per API key across models; ValueError says where two differ."""
    by_key: dict[tuple[str, str], tuple[str, Field]] = {}
    by_column: dict[str, tuple[str, object, str]] = {}
    for cat in models.values():
        for f in cat.fields:
            for obj in f.objects:
                name, seen = by_key.setdefault((obj, f.key), (cat.model, f))
                if seen != f:
                    raise ValueError(f"{obj}.{f.key}: {name} and {cat.model} define it differently")
        for group in cat.groups():
            for col in cat.columns(group):
                name, seen, unit = by_column.setdefault(col.name, (cat.model, col.group, col.unit))
                if (seen, unit) != (col.group, col.unit):
                    raise ValueError(f"column {col.name}: {name} has it in {seen} ({unit}), "
                                     f"{cat.model} in {col.group} ({col.unit})")


check_vocabulary()

__all__ = ["EPEVER_TRACER", "RENOGY_ROVER", "MODELS", "DEFAULT_MODEL", "BOOLEAN", "FLOAT", "INTEGER", "STRING",
           "Catalogue", "Derived", "Field", "absent", "check_vocabulary", "columns", "object_fields"]
