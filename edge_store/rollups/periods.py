"""Local days and months of the site's zone as UTC millisecond spans, and the minute.

Days are local days of the site's zone, as UTC spans [start_ms, end_ms): 23 h
and 25 h on DST days. Rows carry their local date as text for display.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000


class Periods:
    """Local days and months of one zone as UTC millisecond spans (cached)."""

    def __init__(self, timezone: str):
        self.tz = ZoneInfo(timezone)
        self.current = ("", 0, 0)  # the last day asked for: (key, start_ms, end_ms)
        self._days: dict[date, int] = {}
        self._months: dict[str, tuple[int, int]] = {}

    def start_of(self, d: date) -> int:
        """UTC ms of local midnight opening day `d`.

        Midnight can fall in a DST gap or repeat (zones that switch at 00:00):
        the later candidate keeps every day one contiguous span.
        """
        ms = self._days.get(d)
        if ms is None:
            t0 = datetime(d.year, d.month, d.day, tzinfo=self.tz, fold=0).timestamp()
            t1 = datetime(d.year, d.month, d.day, tzinfo=self.tz, fold=1).timestamp()
            ms = self._days[d] = round(max(t0, t1) * 1000)
            if len(self._days) > 4096:  # a rebuild of years: keep the cache small
                self._days.clear()
        return ms

    def day(self, ts_ms: int) -> tuple[str, int, int]:
        """(YYYY-MM-DD, start_ms, end_ms) of the local day holding `ts_ms`."""
        key, start, end = self.current
        if start <= ts_ms < end:
            return self.current
        d = datetime.fromtimestamp(ts_ms / 1000, self.tz).date()
        start = self.start_of(d)
        if ts_ms < start:  # inside an hour repeated before a 00:00 switch
            d -= timedelta(days=1)
            start = self.start_of(d)
        end = self.start_of(d + timedelta(days=1))
        self.current = (d.isoformat(), start, end)
        return self.current

    def day_bounds(self, d: date) -> tuple[int, int]:
        """(start_ms, end_ms) of local day `d`."""
        return self.start_of(d), self.start_of(d + timedelta(days=1))

    def month(self, key: str) -> tuple[int, int]:
        """(start_ms, end_ms) of local month `key` (YYYY-MM)."""
        bounds = self._months.get(key)
        if bounds is None:
            y, m = int(key[:4]), int(key[5:7])
            nxt = date(y + m // 12, m % 12 + 1, 1)
            bounds = self._months[key] = (self.start_of(date(y, m, 1)), self.start_of(nxt))
        return bounds
