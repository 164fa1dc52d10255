"""The collector: polls every configured device and stores every sample.

Each bus (the devices on one port) is owned by one thread (edge_store/bus.py:
one device after the other, a silent one backed off by its circuit breaker),
ports in parallel; this loop alone writes the store: each pass of a bus is
handed over here, held with its errors and committed in one transaction
(`Store.write_round`): at once, or up to `commit_window_s` after it was read,
as one commit for several passes writes each page once (the SD card's wear
per sample; the first pass after start is committed at once). The store's
alert rules (edge_store/alerts) see every sample and every live poll's count
of silent polls of its device in that same transaction.
Between writes it prunes old rows, keeps the file under `max_size_mb` and the
filesystem above `min_free_mb` free, and stops cleanly on SIGTERM/SIGINT: the
reads in hand finish and are stored with what is held, the ports are closed,
the exit code is 0; a crash loses what is held, at most the window.
A store that cannot write is logged sparingly (edge_store/write_failures.py).
`poll_once(group, device)` does one read and its write in the caller's
thread, for tests and `collect --once`.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from typing import Callable

from .bus import SLOW_GROUPS, BusLoop, DevicePoller, Reading, error_kind
from .errors import StoreError
from .health_figures import free_bytes
from .ntp import SyncFlag
from .modbus_reader import Reader
from .registers import LIVE
from .store import Store, now_ms
from .write_failures import WriteFailures

log = logging.getLogger(__name__)

__all__ = ["Collector", "DevicePoller", "SLOW_GROUPS", "error_kind"]

PRUNE_EVERY_S = 3600.0
SPACE_EVERY_S = 10.0  # max_size_mb and min_free_mb are checked this often (a few pragmas and a statvfs)
SPACE_LOG_EVERY_S = 600.0
# The longest a prune works before the loop stores again (issue 17): a prune far behind
# (a retention lowered, months to delete) goes on after the next readings, step by step.
PRUNE_STEP_S = 0.5
WAKE_S = 0.25  # the writer looks at the stop flag at least this often
FIGURES_EVERY_S = 60.0  # the alerts' figures of the Pi (free space, replication backlog) this often
# Samples kept in memory across commits that failed for now (a busy or full store): about ten minutes
# of four devices at a 5 s interval, a few MB; past it the oldest go, as a prune would take them.
MAX_HELD_ROWS = 5_000


class Collector:
    """Owns the buses (through their threads) and the store's writes."""

    def __init__(self, store: Store, reader: Reader | None = None, *, device: str = "epever",
                 interval_s: float = 5.0, slow_interval_s: float = 60.0, retention_days: int | None = None,
                 max_size_mb: int | None = None, min_free_mb: int = 0, replicating: bool = False,
                 ntp: SyncFlag | None = None, clock_ms: Callable[[], int] = now_ms,
                 monotonic: Callable[[], float] = time.monotonic, write_state: bool = False,
                 devices: list[DevicePoller] | None = None, commit_window_s: float = 0.0):
        self.store = store
        # Without `devices`: the one device `reader` reads (the tests' and the library's short form).
        self.devices = devices or [DevicePoller(device, reader, interval_s=interval_s, slow_interval_s=slow_interval_s,
                                                ntp=ntp, clock_ms=clock_ms, monotonic=monotonic)]
        self.retention_days = retention_days
        self.max_size_mb = max_size_mb
        self.min_free_mb = min_free_mb
        self.replicating = replicating  # a [cloud] url is set: unsent samples are kept longer
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self.stop_event = threading.Event()
        self.stored = 0
        self.failed = False  # a bus loop died of a bug
        self._inbox: queue.Queue[list[Reading]] = queue.Queue()
        self.commit_window_s = commit_window_s
        # Read and not yet committed: (group, row) samples, (kind, block, detail, device, ts_ms) errors.
        self._held: list[tuple[str, dict]] = []
        self._held_errors: list[tuple] = []
        self._held_figures: list[tuple] = []  # (field, device, ts_ms, value): each live poll's silent polls
        self._held_since: float | None = None  # monotonic time the oldest thing held was handed over
        self._committed = False
        # With write_state (the long-running collector), readers learn of failed writes from `<store>-writes`.
        self.write_failures = WriteFailures(store.path if write_state else None, monotonic=monotonic,
                                            clock_ms=clock_ms)
        self._space_pruned = 0
        self._space_logged: float | None = None

    def device(self, name: str | None = None) -> DevicePoller:
        """A device's poller by name (default: the first)."""
        if name is None:
            return self.devices[0]
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    # -- one pass --------------------------------------------------------------

    def poll_once(self, group: str, device: str | None = None) -> int | None:
        """Read one group of one device (default: the first) and store it; the new row id, or None."""
        reading = self.device(device).read(group)
        return self.store_readings([reading])[0]

    def poll_all_once(self) -> dict[tuple[str, str], int | None]:
        """One poll of every group of every device, live and slow, stored in one transaction (what
        `collect --once` does)."""
        keys = [(d.name, group) for d in self.devices for group in (LIVE, *d.slow_groups)]
        return dict(zip(keys, self.store_readings([self.device(name).read(group) for name, group in keys])))

    def store_readings(self, readings: list[Reading]) -> list[int | None]:
        """Store what the readings gave and record their errors, with anything held, in one transaction;
        the row id of each reading (None: nothing stored)."""
        first = len(self._held)
        self.hold(readings)
        ids = iter(self.commit()[first:])
        return [next(ids, None) if r.result.values is not None else None for r in readings]

    def hold(self, readings: list[Reading]) -> None:
        """Keep the readings' samples and errors for the next `commit()`."""
        if self._held_since is None:
            self._held_since = self._monotonic()
        for r in readings:
            for exc in r.result.errors:
                block = getattr(exc, "block", "") or getattr(exc, "register", "")
                self._held_errors.append((error_kind(exc), block, str(exc), r.device, r.ts_ms))
            if r.silent_polls is not None:  # the device's breaker counted it: its alert rule sees every poll
                self._held_figures.append(("collector.silent_polls", r.device, r.ts_ms, r.silent_polls))
            if r.result.values is not None:
                self._held.append((r.group, {"ts_ms": r.ts_ms, "ntp_synced": r.ntp_synced, "device": r.device,
                                             **r.result.values}))
                log.debug("held %s ts_ms=%d device=%s", r.group, r.ts_ms, r.device)

    def commit_due(self, slack_s: float = 0.0) -> bool:
        """Whether to commit what is held now: without a window, or before the first commit, always; with
        one, once the oldest thing held is `commit_window_s` (plus `slack_s`) old."""
        if self._held_since is None:
            return False
        return (self.commit_window_s <= 0 or not self._committed
                or self._monotonic() - self._held_since >= self.commit_window_s + slack_s)

    def commit(self) -> list[int]:
        """Store what is held in one transaction (`Store.write_round`); the new row ids, in order.

        A store that cannot write for now (busy, the disk full: a retryable StoreError) keeps what was
        held for the next commit, up to MAX_HELD_ROWS (the oldest go first past it); one that refuses
        the rows themselves loses them. Either says so sparingly ("could not store 7 samples: database
        or disk is full") and goes on."""
        held, errors, figures = self._held, self._held_errors, self._held_figures
        since = self._held_since
        self._held, self._held_errors, self._held_figures, self._held_since = [], [], [], None
        if not held and not errors and not figures:
            return []
        try:
            ids = self.store.write_round(held, errors, figures)
        except StoreError as exc:
            self.write_failures.failed(exc)
            if exc.retryable:  # tried again with the next commit (what came meanwhile after it)
                self._held = (held + self._held)[-MAX_HELD_ROWS:]
                self._held_errors = (errors + self._held_errors)[-MAX_HELD_ROWS:]
                self._held_figures = (figures + self._held_figures)[-MAX_HELD_ROWS:]
                self._held_since = since
            return []
        self._wrote()
        self._committed = True
        self.stored += len(ids)
        for (group, row), row_id in zip(held, ids):
            log.debug("stored %s id=%d ts_ms=%d device=%s", group, row_id, row["ts_ms"], row["device"])
        return ids

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

    # -- alerts on figures that are no sample (edge_store/alerts) ------------------

    def observe(self, field: str, value: float, device: str | None = None) -> None:
        """Feed a measured figure to the store's alert rules in its own transaction (the Pi's own figures,
        under the first device); a failed write is a write failure."""
        if self.store.alerts is None:
            return
        try:
            self.store.alerts.observe(self.store.db, field, device or self.devices[0].name, float(value),
                                      self._clock_ms())
        except StoreError as exc:
            self.write_failures.failed(exc)

    def observe_figures(self) -> None:
        """Free space of the store's filesystem and, when replicating, the oldest unsent sample's age."""
        if self.store.alerts is None:
            return
        try:
            self.observe("store.free_mb", free_bytes(self.store.path) / 1e6)
        except OSError as exc:
            log.warning("could not measure free space: %s", exc.strerror)
        if self.replicating:
            from .outbox import Outbox

            try:
                oldest = Outbox(self.store.db).oldest_unsent_ms()
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

    def run(self) -> None:
        """Poll every bus and store until stopped. Never dies of a Modbus or store error."""
        from .devices import group_by

        buses = [BusLoop(port, pollers, self._inbox.put, self.stop_event, self._monotonic)
                 for port, pollers in group_by(self.devices, lambda d: str(d.reader.port)).items()]
        for bus in buses:
            log.info("collecting from %s: %s", bus.port, ", ".join(
                f"{d.name} (unit {d.reader.unit}) every {d.interval_s:g}s, slow groups every {d.slow_interval_s:g}s"
                for d in bus.pollers))
            bus.start()
        mono = self._monotonic
        next_prune = mono()
        next_space = next_prune + SPACE_EVERY_S  # the first prune checks the space too
        next_figures = next_prune
        try:
            while not self.stop_event.is_set():
                try:
                    due = min(next_prune, next_space, next_figures)
                    readings = self._inbox.get(timeout=max(0.0, min(WAKE_S, due - mono())))
                except queue.Empty:
                    # No pass came: a bus gone quiet (its devices backed off) still has its samples committed.
                    if self.commit_due(slack_s=WAKE_S):
                        self.commit()
                else:
                    self.hold(readings)
                    if self.commit_due():
                        self.commit()
                if any(bus.crashed for bus in buses):
                    self.failed = True
                    self.stop_event.set()
                now = mono()
                if now >= next_prune and not self.stop_event.is_set():
                    try:
                        self.prune_once()
                    except StoreError as exc:
                        log.error("prune failed: %s", exc)
                    # Not done: the next step after the readings that are due.
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
        finally:
            self.stop_event.set()
            for bus in buses:
                bus.join()
            while not self._inbox.empty():  # the reads in hand are stored, with what is held
                self.hold(self._inbox.get_nowait())
            self.commit()
            for d in self.devices:
                d.reader.close()
            self.write_failures.close()
            log.info("collector stopped; %d samples stored this run", self.stored)
