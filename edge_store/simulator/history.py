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


def _as_read(regs: tuple[Register, ...], snapshot: dict) -> dict:
    """What the collector's reader would get for these registers; DecodeError as on the bus."""
    return {r.name: decode_register(r, encode(r, snapshot[r.name])) for r in regs}


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
    regs = {g: registers_of(g) for g in GROUPS}
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
                values = _as_read(regs[g], snapshot)
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
