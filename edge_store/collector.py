"""The collector: polls the controller and stores every sample.

`poll_once(group)` does one read of one register group and stores what it
got, or records why it got nothing; `run()` schedules it (live values every
`interval_s`, slow groups every `slow_interval_s`), backs off while the port
or the device is gone, prunes old rows, keeps the file under `max_size_mb` and
the filesystem above `min_free_mb` free, and stops cleanly on SIGTERM/SIGINT:
the write in hand finishes, the port is closed, the exit code is 0. A store
that cannot write is logged sparingly (edge_store/write_failures.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Callable

from .errors import DecodeError, KammthaarError, ModbusError, StoreError
from .ntp import SyncFlag
from .modbus_reader import Reader
from .registers import CLOCK, LIVE, SETTINGS, STATS
from .store import Store, now_ms
from .write_failures import WriteFailures

log = logging.getLogger(__name__)

SLOW_GROUPS = (STATS, SETTINGS, CLOCK)
PRUNE_EVERY_S = 3600.0
SPACE_EVERY_S = 10.0  # max_size_mb and min_free_mb are checked this often (a few pragmas and a statvfs)
SPACE_LOG_EVERY_S = 600.0
# The longest a prune works before the loop polls again (issue 17): a prune far behind
# (a retention lowered, months to delete) goes on after the next poll, step by step.
PRUNE_STEP_S = 0.5
MAX_BACKOFF_S = 60.0
FIGURES_EVERY_S = 60.0  # the alerts' measured figures (free space, replication backlog) are this often


def error_kind(exc: KammthaarError) -> str:
    """The counter an error lands in."""
    if isinstance(exc, ModbusError):
        return exc.kind
    if isinstance(exc, DecodeError):
        return "out_of_range"
    return "other"


class Collector:
    """Owns the bus: reads groups with a Reader and writes samples to a Store."""

    def __init__(self, store: Store, reader: Reader, *, device: str, interval_s: float,
                 slow_interval_s: float, retention_days: int | None = None,
                 max_size_mb: int | None = None, min_free_mb: int = 0, replicating: bool = False,
                 ntp: SyncFlag | None = None, clock_ms: Callable[[], int] = now_ms,
                 monotonic: Callable[[], float] = time.monotonic, write_state: bool = False):
        self.store = store
        self.reader = reader
        self.device = device
        self.interval_s = interval_s
        self.slow_interval_s = slow_interval_s
        self.retention_days = retention_days
        self.max_size_mb = max_size_mb
        self.min_free_mb = min_free_mb
        self.replicating = replicating  # a [cloud] url is set: unsent samples are kept longer
        self.ntp = ntp or SyncFlag()
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self.stop_event = threading.Event()
        self.failures_in_a_row = 0      # live polls in a row that found the device unreachable
        self.last_unreachable = False
        self.stored = 0
        # With write_state (the long-running collector), readers learn of failed writes from `<store>-writes`.
        self.write_failures = WriteFailures(store.path if write_state else None, monotonic=monotonic,
                                            clock_ms=clock_ms)
        self._space_pruned = 0
        self._space_logged: float | None = None

    # -- one pass --------------------------------------------------------------

    def poll_once(self, group: str) -> int | None:
        """Read one group and store it; return the new row id, or None when the read failed."""
        ts_ms = self._clock_ms()
        synced = self.ntp.flag()
        try:
            self.reader.connect()
        except ModbusError as exc:
            self._record(exc, ts_ms)
            self.last_unreachable = True
            return None
        result = self.reader.read_group(group)
        for exc in result.errors:
            self._record(exc, ts_ms)
        # Silence (timeouts) or a lost port is an unreachable device; an
        # exception or an impossible value is an answer, from a device that is there.
        self.last_unreachable = result.values is None and all(
            isinstance(e, ModbusError) and e.kind in ("timeout", "port") for e in result.errors)
        if result.values is None:
            return None
        row_id = self.store.insert_sample(group, ts_ms, synced, self.device, result.values)
        self._wrote()
        self.stored += 1
        log.debug("stored %s id=%d ts_ms=%d", group, row_id, ts_ms)
        return row_id

    def poll_all_once(self) -> dict[str, int | None]:
        """One poll of every group, live and slow (what `collect --once` does)."""
        return {group: self.poll_once(group) for group in (LIVE, *SLOW_GROUPS)}

    def prune_once(self) -> int:
        """Delete rows older than the retention period, then keep the file under max_size_mb.

        When replicating, samples the cloud has not acknowledged outlive the
        retention period; past the size cap, replicated samples go first and
        unsent ones (oldest first, counted in `store.dropped_unsent`) only when
        they alone pass it. One call prunes for at most about PRUNE_STEP_S; when
        more is left (`prune_done` False) the loop calls again after the polls due.
        """
        deleted = 0
        self.prune_done = True
        if self.retention_days:
            cutoff = self._clock_ms() - self.retention_days * 86_400_000
            deleted, self.prune_done = self.store.prune_step(cutoff, keep_unsent=self.replicating,
                                                             budget_s=PRUNE_STEP_S)
            if deleted:
                log.info("pruned %d rows older than %d days%s", deleted, self.retention_days,
                         "" if self.prune_done else " (more after the next poll)")
        if self.prune_done:  # the size cap and the free-space floor once the retention prune is through
            deleted += self.enforce_space_once()
        return deleted

    def enforce_space_once(self) -> int:
        """Keep the file under max_size_mb and its filesystem above min_free_mb free; rows deleted.

        Below the floor, the file may hold no more pages in use than it has now minus what
        the filesystem lacks: the oldest samples (replicated ones first) go, their pages are
        reused, and the file stops growing (SQLite files do not shrink; other files filled
        the card). Lines at most every SPACE_LOG_EVERY_S, with the count.
        """
        caps = []
        if self.max_size_mb:
            caps.append((self.max_size_mb * 1_000_000, f"max_size_mb={self.max_size_mb}"))
        if self.min_free_mb:
            caps.append((self.store.space_cap(self.min_free_mb * 1_000_000),
                         f"the filesystem has less than min_free_mb={self.min_free_mb} free"))
        if not caps:
            return 0
        cap, why = min(caps)
        result = self.store.enforce_size(max(0, cap), keep_unsent=self.replicating)
        if not result["pruned"]:
            return 0
        self._space_pruned += result["pruned"]
        now = self._monotonic()
        if result["dropped_unsent"]:
            log.warning("%s: dropped the %d oldest samples the cloud never got", why, result["dropped_unsent"])
        elif self._space_logged is None or now - self._space_logged >= SPACE_LOG_EVERY_S:
            log.info("%s: pruned the %d oldest samples", why, self._space_pruned)
        else:
            return result["pruned"]
        self._space_logged = now
        self._space_pruned = 0
        return result["pruned"]

    def _wrote(self) -> None:
        """A write succeeded: the end of a failing episode is counted in the store (it writes again)."""
        ended = self.write_failures.succeeded()
        if ended:
            try:
                self.store.increment("store.write_failures", ended)
            except StoreError as exc:
                self.write_failures.failed(exc)

    def _record(self, exc: KammthaarError, ts_ms: int) -> None:
        kind = error_kind(exc)
        block = getattr(exc, "block", "") or getattr(exc, "register", "")
        # The first error of a streak is worth a line; the rest are counted in the store.
        level = logging.WARNING if self.failures_in_a_row == 0 else logging.DEBUG
        log.log(level, "%s error: %s", kind, exc)
        try:
            self.store.record_error(kind, block, str(exc), device=self.device, ts_ms=ts_ms)
        except StoreError as store_exc:
            self.write_failures.failed(store_exc)  # "could not record error: ..."
        else:
            self._wrote()

    # -- alerts on figures that are no sample (edge_store/alerts) ------------------

    def observe(self, field: str, value: float) -> None:
        """Feed a measured figure to the store's alert rules; a failed write is a write failure."""
        if self.store.alerts is None:
            return
        try:
            self.store.alerts.observe(self.store.db, field, self.device, float(value), self._clock_ms())
        except StoreError as exc:
            self.write_failures.failed(exc)

    def observe_figures(self) -> None:
        """Free space of the store's filesystem and, when replicating, the oldest unsent sample's age."""
        if self.store.alerts is None:
            return
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(self.store.path)))
            self.observe("store.free_mb", st.f_bavail * st.f_frsize / 1e6)
        except OSError as exc:
            log.warning("could not measure free space: %s", exc.strerror)
        if self.replicating:
            from .outbox import Outbox

            try:
                oldest = Outbox(self.store.db).summary()["oldest_unsent_ms"]
            except StoreError as exc:
                log.warning("%s", exc)
                return
            age_h = 0.0 if oldest is None else max(0, self._clock_ms() - oldest) / 3.6e6
            self.observe("replication.oldest_unsent_h", age_h)

    # -- the loop --------------------------------------------------------------

    def stop(self, *_args) -> None:
        """Ask the loop to stop after the write in hand."""
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop cleanly (only from the main thread)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _backoff_s(self) -> float:
        # A device or adapter that is gone is asked less and less often, never less than every minute.
        if self.failures_in_a_row < 3:
            return self.interval_s
        return min(self.interval_s * 2 ** (self.failures_in_a_row - 2), max(self.interval_s, MAX_BACKOFF_S))

    def run(self) -> None:
        """Poll until stopped. Never dies of a Modbus or store error."""
        mono = self._monotonic
        next_live = mono()
        next_slow = next_live
        next_prune = next_live
        next_space = next_live + SPACE_EVERY_S  # the first prune checks the space too
        next_figures = next_live
        log.info("collecting from %s every %gs (slow groups every %gs)", self.reader.port,
                 self.interval_s, self.slow_interval_s)
        try:
            while not self.stop_event.is_set():
                now = mono()
                if now >= next_live:
                    self._guarded(LIVE)
                    if not self.last_unreachable:
                        if self.failures_in_a_row >= 3:
                            log.info("the controller answers again")
                        self.failures_in_a_row = 0
                    else:
                        self.failures_in_a_row += 1
                    self.observe("collector.silent_polls", self.failures_in_a_row)
                    next_live += self._backoff_s()
                    if next_live < mono():
                        # Fell behind (slow answers): skip the missed slots rather than burst.
                        next_live = mono() + self._backoff_s()
                if now >= next_slow and not self.stop_event.is_set():
                    if self.failures_in_a_row == 0:
                        for group in SLOW_GROUPS:
                            if self.stop_event.is_set():
                                break
                            self._guarded(group)
                    next_slow = mono() + self.slow_interval_s
                if now >= next_prune and not self.stop_event.is_set():
                    try:
                        self.prune_once()
                    except StoreError as exc:
                        log.error("prune failed: %s", exc)
                    # Not done: the next step after the polls that are due.
                    next_prune = mono() + (PRUNE_EVERY_S if self.prune_done else 0.0)
                if now >= next_space and not self.stop_event.is_set():
                    try:
                        self.enforce_space_once()
                    except StoreError as exc:
                        self.write_failures.failed(exc)
                    next_space = mono() + SPACE_EVERY_S
                if now >= next_figures and not self.stop_event.is_set():
                    self.observe_figures()
                    next_figures = mono() + FIGURES_EVERY_S
                wait = min(next_live, next_slow, next_prune, next_space, next_figures) - mono()
                if wait > 0:
                    self.stop_event.wait(wait)
        finally:
            self.reader.close()
            self.write_failures.close()
            log.info("collector stopped; %d samples stored this run", self.stored)

    def _guarded(self, group: str) -> bool:
        try:
            return self.poll_once(group) is not None
        except StoreError as exc:
            # The database is busy or the disk is full: the sample is lost, the loop goes on. The
            # message says it already ("could not store live sample: database or disk is full").
            self.write_failures.failed(exc)
            self.last_unreachable = False
            return False
