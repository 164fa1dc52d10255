"""What the rollups are built with: the site's zone and the longest gap that is still integrated."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RollupSettings:
    """What the rollups need: the site's IANA zone and the longest gap that is still integrated."""

    timezone: str
    max_gap_s: float

    @property
    def max_gap_ms(self) -> int:
        return int(round(self.max_gap_s * 1000))
