"""One owner per bus: the devices on one port, polled one after the other by one thread.

A `DevicePoller` reads one device's groups when they are due and keeps its
circuit breaker: after `OPEN_AFTER` live polls in a row that found it silent
(timeouts, or its port gone) it is left alone and probed again after
`PROBE_FIRST_S` seconds, then twice as long each time up to `probe_max_s`.
A probe is one live read without retries, so it costs at most one timeout,
and a probe that answers is a sample: the device is read again at once, slow
groups included. Its bus-mates are read meanwhile: one dead device never
stalls the others.

A `BusLoop` is the thread of one port: each pass gives every device its due
read, in config order, and hands the pass's readings to the collector, which
alone writes the store (edge_store/collector.py). The silence between two
requests is the link's (edge_store/link.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .errors import DecodeError, KammthaarError, ModbusError
from .modbus_reader import GroupRead, Reader
from .ntp import SyncFlag
from .registers import CLOCK, LIVE, SETTINGS, STATS
from .store import now_ms

log = logging.getLogger("edge_store.collector")

SLOW_GROUPS = (STATS, SETTINGS, CLOCK)
OPEN_AFTER = 3        # silent live polls in a row that open the breaker
PROBE_FIRST_S = 5.0   # the first probe of a silent device, at most this long after it went silent


@dataclass
class Reading:
    """One read of one group of one device: what it gave (values None: nothing to store) and its errors."""

    device: str
    group: str
    ts_ms: int
    ntp_synced: bool
    result: GroupRead
    silent_polls: int | None = None  # a live poll's: the breaker's count of silent polls in a row after it


class DevicePoller:
    """One device: its reader, when its groups are due, and its circuit breaker."""

    def __init__(self, name: str, reader: Reader | None, *, interval_s: float, slow_interval_s: float,
                 probe_max_s: float = 60.0, ntp: SyncFlag | None = None, clock_ms: Callable[[], int] = now_ms,
                 monotonic: Callable[[], float] = time.monotonic):
        self.name = name
        self.reader = reader
        self.interval_s = interval_s
        self.slow_interval_s = slow_interval_s
        self.probe_max_s = probe_max_s
        # The model's slow groups (the Rover has no clock group).
        self.slow_groups = tuple(g for g in SLOW_GROUPS if reader is None or g in reader.groups)
        self.ntp = ntp or SyncFlag()
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self.failures_in_a_row = 0  # live polls in a row that found the device silent
        self.probe_s = 0.0          # the current wait between two probes; 0: the breaker is closed
        start = monotonic()
        self.next_live = start
        self.next_slow = start
        self._slow_pending: list[str] = []

    @property
    def backed_off(self) -> bool:
        """Whether the breaker is open: the device is only probed."""
        return self.probe_s > 0

    def next_due(self) -> float:
        """When this device next wants the bus (monotonic seconds)."""
        if self.failures_in_a_row:  # a device that just failed gets its live group again first
            return self.next_live
        if self._slow_pending:
            return self._monotonic()
        return min(self.next_live, self.next_slow)

    def poll_due(self) -> Reading | None:
        """The one read that is due now (live first, then one slow group), or None."""
        now = self._monotonic()
        if now >= self.next_live:
            return self.poll_live()
        if self.failures_in_a_row:
            return None
        if not self._slow_pending and now >= self.next_slow:
            self._slow_pending = list(self.slow_groups)
        if self._slow_pending:
            reading = self.read(self._slow_pending.pop(0))
            if not self._slow_pending:  # the next round of slow groups counts from the end of this one
                self.next_slow = self._monotonic() + self.slow_interval_s
            return reading
        return None

    def poll_live(self) -> Reading:
        """Read the live group (a probe when the breaker is open) and move the breaker and the schedule."""
        probing = self.backed_off
        reading = self.read(LIVE, probe=probing)
        silent = reading.result.values is None and unreachable(reading.result)
        now = self._monotonic()
        if not silent:
            if self.backed_off:
                log.info("%s answers again: read again from now on", self.name)
                self._slow_pending, self.next_slow = [], now  # its slow groups too, at once
            self.failures_in_a_row, self.probe_s = 0, 0.0
            reading.silent_polls = 0
            self.next_live += self.interval_s
            if self.next_live < now:  # fell behind (slow answers): skip the missed slots rather than burst
                self.next_live = now + self.interval_s
            return reading
        self.failures_in_a_row += 1
        if self.backed_off:
            self.probe_s = min(self.probe_s * 2, self.probe_max_s)
        elif self.failures_in_a_row >= OPEN_AFTER:
            self.probe_s = min(PROBE_FIRST_S, self.probe_max_s)
            self._slow_pending = []
            log.warning("%s is silent (%d polls in a row): probed every %g s, up to every %g s, meanwhile",
                        self.name, self.failures_in_a_row, self.probe_s, self.probe_max_s)
        self.next_live = now + (self.probe_s or self.interval_s)
        reading.silent_polls = self.failures_in_a_row
        return reading

    def read(self, group: str, *, probe: bool = False) -> Reading:
        """One read of one group, now; errors are logged (the first of a streak) and returned."""
        ts_ms = self._clock_ms()
        synced = self.ntp.flag()
        reader = self.reader
        saved = reader.retries
        if probe:
            reader.retries = 0  # at most one timeout per probe
        try:
            reader.connect()
            result = reader.read_group(group)
        except ModbusError as exc:  # the port cannot be opened
            result = GroupRead(group, None, [exc])
        finally:
            reader.retries = saved
        for exc in result.errors:
            level = logging.WARNING if self.failures_in_a_row == 0 and not probe else logging.DEBUG
            log.log(level, "%s: %s error: %s", self.name, error_kind(exc), exc)
        return Reading(self.name, group, ts_ms, synced, result)


def unreachable(result: GroupRead) -> bool:
    """Silence (timeouts) or a lost port: the device is not there. An exception or an impossible value is an
    answer, from a device that is there."""
    return all(isinstance(e, ModbusError) and e.kind in ("timeout", "port") for e in result.errors)


def error_kind(exc: KammthaarError) -> str:
    """The counter an error lands in."""
    if isinstance(exc, ModbusError):
        return exc.kind
    if isinstance(exc, DecodeError):
        return "out_of_range"
    return "other"


class BusLoop(threading.Thread):
    """The thread owning one port: passes over its devices until `stop` is set; each pass's readings go to
    `deliver`. The port is closed when it ends."""

    def __init__(self, port: str, pollers: list[DevicePoller], deliver: Callable[[list[Reading]], None],
                 stop: threading.Event, monotonic: Callable[[], float] = time.monotonic):
        super().__init__(name=f"bus {port}", daemon=True)
        self.port = port
        self.pollers = pollers
        self.deliver = deliver
        self.stop_event = stop
        self._monotonic = monotonic
        self.crashed = False

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                readings = []
                for poller in self.pollers:
                    if self.stop_event.is_set():
                        break
                    reading = poller.poll_due()
                    if reading is not None:
                        readings.append(reading)
                if readings:
                    self.deliver(readings)
                    continue
                wait = min(p.next_due() for p in self.pollers) - self._monotonic()
                if wait > 0:
                    self.stop_event.wait(wait)
        except Exception:  # noqa: BLE001 - a bug must not end this bus silently while others go on
            log.exception("the loop of %s failed", self.port)
            self.crashed = True
        finally:
            for poller in self.pollers:
                poller.reader.close()
