"""The trapezoid between two live samples: energy, charge and discharge, split at day boundaries.

A point is (ts_ms, pv_power, load_power, battery_current). The energy
(pv_power, load_power) and the charge/discharge (battery_current by sign,
split at the zero crossing) of an interval are its trapezoid; an interval
spanning days is split at their boundaries by time (the value interpolated
at the boundary). An interval longer than the longest gap adds nothing: no
energy is invented across an outage.
"""

from __future__ import annotations

from .periods import Periods

# W·ms → kWh and A·ms → Ah, with the trapezoid's halving folded in.
_KWH_HALF = 2 * 3_600_000 * 1000.0
_AH_HALF = 2 * 3_600_000.0


def _at(a: tuple, b: tuple, x: int, i: int) -> float:
    if x == a[0]:
        return a[i]
    if x == b[0]:
        return b[i]
    return a[i] + (b[i] - a[i]) * (x - a[0]) / (b[0] - a[0])


def piece(a: tuple, b: tuple, x: int, y: int) -> tuple[float, float, float, float]:
    """(generated kWh, consumed kWh, charge Ah, discharge Ah) of the a→b trapezoid over [x, y]."""
    w = y - x
    gen = w * (_at(a, b, x, 1) + _at(a, b, y, 1)) / _KWH_HALF
    cons = w * (_at(a, b, x, 2) + _at(a, b, y, 2)) / _KWH_HALF
    c0, c1 = _at(a, b, x, 3), _at(a, b, y, 3)
    if c0 >= 0 and c1 >= 0:
        return gen, cons, w * (c0 + c1) / _AH_HALF, 0.0
    if c0 <= 0 and c1 <= 0:
        return gen, cons, 0.0, -w * (c0 + c1) / _AH_HALF
    # Opposite signs: two triangles meeting where the current crosses zero.
    w0 = w * abs(c0) / (abs(c0) + abs(c1))
    first, second = w0 * abs(c0) / _AH_HALF, (w - w0) * abs(c1) / _AH_HALF
    return (gen, cons, first, second) if c0 > 0 else (gen, cons, second, first)


def piece_whole(a: tuple, b: tuple) -> tuple[float, float, float, float]:
    """`piece(a, b, a[0], b[0])` without the interpolation: the same floats, faster."""
    w = b[0] - a[0]
    c0, c1 = a[3], b[3]
    if c0 >= 0 and c1 >= 0:
        chg, dis = w * (c0 + c1) / _AH_HALF, 0.0
    elif c0 <= 0 and c1 <= 0:
        chg, dis = 0.0, -w * (c0 + c1) / _AH_HALF
    else:
        return piece(a, b, a[0], b[0])
    return w * (a[1] + b[1]) / _KWH_HALF, w * (a[2] + b[2]) / _KWH_HALF, chg, dis


def add_interval(periods: Periods, acc: dict, a: tuple, b: tuple, sign: float, max_gap_ms: int) -> None:
    """Add `sign` times the a→b trapezoid to `acc`, split by local day: day key -> [start, end,
    generated, consumed, charge, discharge, covered_ms]. Nothing when longer than `max_gap_ms`."""
    if not 0 < b[0] - a[0] <= max_gap_ms:
        return
    x = a[0]
    while x < b[0]:
        key, start, end = periods.day(x)
        y = b[0] if b[0] <= end else end
        gen, cons, chg, dis = piece(a, b, x, y)
        row = acc.get(key)
        if row is None:
            row = acc[key] = [start, end, 0.0, 0.0, 0.0, 0.0, 0]
        row[2] += sign * gen
        row[3] += sign * cons
        row[4] += sign * chg
        row[5] += sign * dis
        row[6] += int(sign) * (y - x)
        x = y
