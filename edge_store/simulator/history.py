"""The simulator's model of the past days, stored as the collector would have stored it (`kammthaar demo
--history DAYS`): charts and statistics have something to show at the first start.

Every group is sampled from one `SolarDay` on a clock this module drives (live
values every `interval_s`, the slow groups every `slow_interval_s`), each value
encoded into its registers and decoded back as the collector's reader decodes
them (the device's resolution, and a value the device could not report is no
row, as on the bus), then stored through the Store and its rollups
(`insert_samples`, an hour of samples per transaction): the same rows, minute
buckets and daily statistics as if the collector had run those days. History
starts after the newest stored live sample, so a second demo start adds
nothing twice.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from ..errors import DecodeError
from ..registers import CLOCK, LIVE, SETTINGS, STATS, Register, decode_register, encode, registers_of
from ..store import Store, now_ms
from .model import SolarDay

DAY_MS = 86_400_000
BATCH_MS = 3_600_000  # samples per transaction: an hour's
GROUPS = (LIVE, STATS, SETTINGS, CLOCK)


# Integer kinds: the words a value fits in, as the codec's raw integer.
_SPAN = {"u16": (0, 0xFFFF), "bits": (0, 0xFFFF), "enum": (0, 0xFFFF), "s16": (-0x8000, 0x7FFF),
         "u32": (0, 0xFFFFFFFF), "u32hw": (0, 0xFFFFFFFF), "s32": (-0x80000000, 0x7FFFFFFF),
         "s32hw": (-0x80000000, 0x7FFFFFFF)}


def as_read(reg: Register) -> Callable[[object], object]:
    """value -> what the collector's reader decodes from the words the simulator encodes it into
    (`decode_register(reg, encode(reg, value))`, raising DecodeError alike), without the words for
    the integer kinds: the round trip is most of the cost of a history."""
    def generic(value):
        return decode_register(reg, encode(reg, value))

    span = _SPAN.get(reg.kind)
    if span is None:
        return generic
    lo, hi = span
    divisor = reg.divisor
    low = -math.inf if reg.low is None else reg.low
    high = math.inf if reg.high is None else reg.high

    last = [None, None]  # the last value and its answer: many values repeat from one sample to the next

    def fast(value):
        if value == last[0] and type(value) is type(last[0]):
            return last[1]
        raw = int(round(value * divisor))
        if not lo <= raw <= hi:
            return generic(value)  # wraps or raises as the codec does
        out = round(raw / divisor, 2) if divisor != 1 else raw
        if not low <= out <= high:
            return generic(value)  # DecodeError, as on the bus
        last[:] = value, out
        return out

    return fast


def fill(store: Store, days: float, *, interval_s: float, slow_interval_s: float, device: str,
         tz: ZoneInfo = ZoneInfo("UTC"), seed: int = 1, clock_ms: Callable[[], int] = now_ms) -> dict[str, int]:
    """Store the model's past `days` (up to now) of every group; rows stored per group."""
    end = clock_ms()
    step_ms = max(1, int(interval_s * 1000))
    slow_ms = max(step_ms, int(slow_interval_s * 1000))
    start = end - int(days * DAY_MS)
    newest = store.latest(LIVE, device)
    if newest is not None:
        start = max(start, newest["ts_ms"] + step_ms)
    counts = dict.fromkeys(GROUPS, 0)
    if start >= end:
        return counts
    now_s = [start / 1000]
    model = SolarDay(seed=seed, start=datetime.fromtimestamp(start / 1000, timezone.utc), speed=1.0, tz=tz,
                     clock=lambda: now_s[0])
    readers = {g: tuple((r.name, as_read(r)) for r in registers_of(g)) for g in GROUPS}
    batch: dict[str, list[dict]] = {g: [] for g in GROUPS}
    batch_end = start + BATCH_MS
    next_slow = start
    ts = start
    while ts < end:
        now_s[0] = ts / 1000
        snapshot = model.snapshot()
        groups = GROUPS if ts >= next_slow else (LIVE,)
        if ts >= next_slow:
            next_slow += slow_ms
        for g in groups:
            try:
                values = {name: read(snapshot[name]) for name, read in readers[g]}
            except DecodeError:
                continue  # what the collector would have refused
            batch[g].append({"ts_ms": ts, "ntp_synced": True, "device": device, **values})
        ts += step_ms
        if ts >= batch_end or ts >= end:
            _store(store, batch, counts)
            batch_end += BATCH_MS
    return counts


def _store(store: Store, batch: dict[str, list[dict]], counts: dict[str, int]) -> None:
    with store.db.writing("could not store the demo's history"):  # one transaction for every group
        for g, rows in batch.items():
            counts[g] += store.insert_samples(g, rows)
            rows.clear()
