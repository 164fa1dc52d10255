"""The trapezoid between two live samples: energy, charge and discharge, split at day boundaries.

A point is (ts_ms, pv_power, load_power, battery_current, battery_power), the
battery power being battery_voltage × battery_current (signed: + charging). The
energy (pv_power, load_power), the charge/discharge in Ah (battery_current by
sign) and in kWh (battery_power by sign), each split at its zero crossing, of
an interval are its trapezoids; an interval spanning days is split at their
boundaries by time (the values interpolated at the boundary). An interval
longer than the longest gap adds nothing: no energy is invented across an outage.
"""

from __future__ import annotations

from .periods import Periods

# W·ms → kWh and A·ms → Ah, with the trapezoid's halving folded in.
_KWH_HALF = 2 * 3_600_000 * 1000.0
_AH_HALF = 2 * 3_600_000.0


def point(ts_ms: int, values) -> tuple:
    """The integration point of a live sample (a mapping of its values)."""
    current = values["battery_current"]
    return (ts_ms, values["pv_power"], values["load_power"], current, values["battery_voltage"] * current)


def _at(a: tuple, b: tuple, x: int, i: int) -> float:
    if x == a[0]:
        return a[i]
    if x == b[0]:
        return b[i]
    return a[i] + (b[i] - a[i]) * (x - a[0]) / (b[0] - a[0])


def _by_sign(w: float, c0: float, c1: float, half: float) -> tuple[float, float]:
    """(positive, negative as a positive number) parts of the trapezoid c0→c1 over a width w."""
    if c0 >= 0 and c1 >= 0:
        return w * (c0 + c1) / half, 0.0
    if c0 <= 0 and c1 <= 0:
        return 0.0, -w * (c0 + c1) / half
    # Opposite signs: two triangles meeting where the value crosses zero.
    w0 = w * abs(c0) / (abs(c0) + abs(c1))
    first, second = w0 * abs(c0) / half, (w - w0) * abs(c1) / half
    return (first, second) if c0 > 0 else (second, first)


def piece(a: tuple, b: tuple, x: int, y: int) -> tuple[float, float, float, float, float, float]:
    """(generated kWh, consumed kWh, charge Ah, discharge Ah, charge kWh, discharge kWh) of the
    a→b trapezoid over [x, y]."""
    w = y - x
    gen = w * (_at(a, b, x, 1) + _at(a, b, y, 1)) / _KWH_HALF
    cons = w * (_at(a, b, x, 2) + _at(a, b, y, 2)) / _KWH_HALF
    chg, dis = _by_sign(w, _at(a, b, x, 3), _at(a, b, y, 3), _AH_HALF)
    chg_kwh, dis_kwh = _by_sign(w, _at(a, b, x, 4), _at(a, b, y, 4), _KWH_HALF)
    return gen, cons, chg, dis, chg_kwh, dis_kwh


def piece_whole(a: tuple, b: tuple) -> tuple[float, float, float, float, float, float]:
    """`piece(a, b, a[0], b[0])` without the interpolation: the same floats, faster."""
    w = b[0] - a[0]
    chg, dis = _by_sign(w, a[3], b[3], _AH_HALF)
    chg_kwh, dis_kwh = _by_sign(w, a[4], b[4], _KWH_HALF)
    return w * (a[1] + b[1]) / _KWH_HALF, w * (a[2] + b[2]) / _KWH_HALF, chg, dis, chg_kwh, dis_kwh


def add_interval(periods: Periods, acc: dict, a: tuple, b: tuple, sign: float, max_gap_ms: int) -> None:
    """Add `sign` times the a→b trapezoid to `acc`, split by local day: day key -> [start, end,
    generated, consumed, charge, discharge, charge kWh, discharge kWh, covered_ms]. Nothing when
    longer than `max_gap_ms`."""
    if not 0 < b[0] - a[0] <= max_gap_ms:
        return
    x = a[0]
    while x < b[0]:
        key, start, end = periods.day(x)
        y = b[0] if b[0] <= end else end
        parts = piece(a, b, x, y)
        row = acc.get(key)
        if row is None:
            row = acc[key] = [start, end, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0]
        for i, v in enumerate(parts, 2):
            row[i] += sign * v
        row[8] += int(sign) * (y - x)
        x = y
