"""`?device=all`: the site's statistics, summed over its devices (a van with two controllers wants its total).

Energy, charge, sample counts and the devices' own kWh add up; a minimum is the
least of the devices', a maximum the greatest; `covered_s` is the least covered
device's (the time the total is complete for): 0 for a period some device has
no row for (silent all day, added later), whose total is then partial. A
figure no device has stays missing (null, or 0 for the counts).
"""

from __future__ import annotations

from typing import Any, Iterable

from edge_store.catalogue.rollup_figures import FIGURES

from .families import r3

_LEAST = {f.name for f in FIGURES if f.name.endswith("_min")} | {"covered_s"}
_GREATEST = {f.name for f in FIGURES if f.name.endswith("_max")}


def _combine(name: str, values: list) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return values[0] if values else None
    if name in _LEAST:
        return min(present)
    if name in _GREATEST:
        return max(present)
    total = sum(present)
    return total if isinstance(total, int) else r3(total)


def sum_periods(per_device: Iterable[list[dict]], key: str) -> list[dict]:
    """Statistics objects of several devices (each a list, oldest first) as one list per period `key`."""
    by_period: dict[str, list[dict]] = {}
    per_device = list(per_device)
    for rows in per_device:
        for row in rows:
            by_period.setdefault(row[key], []).append(row)
    out = []
    for period in sorted(by_period):
        rows = by_period[period]
        total = {key: period}
        for f in FIGURES:
            total[f.name] = _combine(f.name, [r[f.name] for r in rows])
        if len(rows) < len(per_device) and "covered_s" in total:
            total["covered_s"] = 0.0  # a device without this period: the total covers no full time
        out.append(total)
    return out


def sum_days(per_device: Iterable[dict[str, dict]]) -> dict[str, dict]:
    """The 7-days objects of several devices ({day: {consumed_today, generated_today}}) summed per day; null
    where no device has a value."""
    out: dict[str, dict] = {}
    for days in per_device:
        for day, values in days.items():
            slot = out.setdefault(day, {k: None for k in values})
            for k, v in values.items():
                if v is not None:
                    slot[k] = r3((slot[k] or 0.0) + v)
    return out
