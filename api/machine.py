"""The machine the collector runs on (this one, for the local source): CPU, memory, disk, temperature."""

from __future__ import annotations

import os
import threading
from pathlib import Path

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


class Machine:
    """Usage figures from /proc and /sys; CPU usage is measured between two calls (per process)."""

    def __init__(self, disk_path: str, thermal: Path = THERMAL):
        self.disk_path = disk_path
        self.thermal = thermal
        self._lock = threading.Lock()
        self._last: tuple[int, int] | None = None

    @staticmethod
    def _cpu_times() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    def cpu_usage(self) -> float:
        total, idle = self._cpu_times()
        with self._lock:
            last, self._last = self._last, (total, idle)
        if last is None or total <= last[0]:
            last = (0, 0)  # first call: the average since boot
        busy = (total - last[0]) - (idle - last[1])
        return round(100.0 * busy / max(1, total - last[0]), 1)

    @staticmethod
    def memory_usage() -> float:
        info = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0])
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        return round(100.0 * (total - available) / max(1, total), 1)

    def disk_usage(self) -> float:
        st = os.statvfs(os.path.dirname(os.path.abspath(self.disk_path)) or "/")
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        usable = used + st.f_bavail * st.f_frsize
        return round(100.0 * used / max(1, usable), 1)

    def temperature(self) -> float | None:
        """°C of the first thermal zone; None (JSON null) on a machine without one: a JSON client
        formats a number or skips a null, a string breaks it (Angular's number pipe throws)."""
        try:
            return round(int(self.thermal.read_text().strip()) / 1000, 1)
        except (OSError, ValueError):
            return None

    def infos(self) -> dict:
        return {"cpu_usage": self.cpu_usage(), "memory_usage": self.memory_usage(),
                "disk_usage": self.disk_usage(), "temperature": self.temperature()}
