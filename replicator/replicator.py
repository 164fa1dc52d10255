"""The replicator: rows above each stream's watermark, as points, to InfluxDB.

`sync_once()` takes one batch per stream (rows above the watermark, rendered
to at most about `batch_size` lines), delivers it through the policy, and
moves the watermark only after the server said 2xx (dead letters and counters
in the same transaction). `run()` repeats it: at once while a stream had a
full batch, every `interval_s` when caught up, with growing pauses while the
server is away; SIGTERM/SIGINT stop it after the request in hand. `drain()`
repeats it until the backlog is empty (what `kammthaar replicate --once` does).

401/403 stop sending: the state row says so (`kammthaar status`, /health),
an error is logged every minute, and nothing is sent until the credentials
change (another fingerprint at start-up) or, in case the rights were fixed
on the server, once per `auth_recheck_s`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping

from edge_store.errors import KammthaarError, StoreError
from edge_store.outbox import STREAMS, Outbox, Stream
from edge_store.store import now_ms

from .points import Renderer, lines_per_row
from .policy import Delivery, Policy
from .influx_writer import WriteError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
AUTH_RECHECK_S = 3600.0
LOUD_EVERY_S = 60.0
YIELD_EVERY_ROWS = 32


def fingerprint(*secrets: str) -> str:
    """A short stable digest of the credentials (and URL): stored instead of them."""
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()[:16]


@dataclass
class Batch:
    lines: list[str]
    body: bytes | None  # the lines encoded by the writer (compressed for v1)
    keys: list[int]  # the row key each line came from
    position: int  # the last row key read: the watermark once delivered
    rows: int
    skipped: int
    full: bool


@dataclass
class Pass:
    """What one `sync_once()` did."""

    rows: int = 0
    points: int = 0
    bytes: int = 0
    dead: int = 0
    more: bool = False
    blocked: bool = False
    error: KammthaarError | None = None


class Replicator:
    """Moves rows from the outbox to a writer (V1Writer or V2Writer), batch by batch."""

    def __init__(self, outbox: Outbox, writer, *, site: str, batch_size: int = 5000, interval_s: float = 10.0,
                 max_backlog_age_days: int = 0, credentials: str = "", policy: Policy | None = None,
                 streams: tuple[Stream, ...] = STREAMS, auth_recheck_s: float = AUTH_RECHECK_S,
                 max_backoff_s: float = MAX_BACKOFF_S, clock_ms: Callable[[], int] = now_ms,
                 monotonic: Callable[[], float] = time.monotonic, stop_event: threading.Event | None = None,
                 models: Mapping[str, str] | None = None):
        self.outbox = outbox
        self.writer = writer
        self.renderer = Renderer(site, models=models)  # device name -> model name (points.Renderer)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_backlog_age_days = max_backlog_age_days
        self.credentials = credentials
        self.streams = streams
        self.auth_recheck_s = auth_recheck_s
        self.max_backoff_s = max_backoff_s
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self.stop_event = stop_event or threading.Event()
        self.policy = policy or Policy(writer, sleep=self.stop_event.wait, stop_event=self.stop_event)
        self._loud_at: float | None = None
        self.failures_in_a_row = 0
        # The next batch of a stream whose last batch was full, rendered by a helper
        # thread while the current one is on the wire: stream -> (position, future).
        # The renderer's caches may be filled by both threads at once: a key always
        # maps to the same text, so a race costs a recomputation, never a wrong line.
        self._prefetched: dict[str, tuple[int, Future]] = {}
        self._pool: ThreadPoolExecutor | None = None

    # -- one pass --------------------------------------------------------------------

    def _batch(self, stream: Stream, position: int) -> Batch | None:
        limit = max(1, self.batch_size // lines_per_row(stream.name))
        rows = self.outbox.rows_after(stream, position, limit)
        if not rows:
            return None
        cutoff = None
        if self.max_backlog_age_days and stream.samples:
            cutoff = self._clock_ms() - self.max_backlog_age_days * 86_400_000
        lines: list[str] = []
        keys: list[int] = []
        skipped = 0
        render, key, when = self.renderer.lines, stream.key, stream.time
        for n, row in enumerate(rows):
            if not n % YIELD_EVERY_ROWS:
                # Let the thread with the request in flight take the GIL at once when its
                # socket call returns, instead of after the 5 ms switch interval.
                time.sleep(0)
            if cutoff is not None and row[when] < cutoff:
                skipped += 1
                continue
            out = render(stream.name, row)
            lines.extend(out)
            keys.extend([row[key]] * len(out))
        body = self.writer.encode(lines) if lines else None
        return Batch(lines, body, keys, rows[-1][key], len(rows), skipped, len(rows) == limit)

    def _take_batch(self, stream: Stream, position: int) -> Batch | None:
        """The batch above `position`: the prefetched one when it starts there, else read now."""
        prefetched = self._prefetched.pop(stream.name, None)
        if prefetched is not None:
            start, future = prefetched
            batch = future.result()  # also when stale: never two renders at once
            if start == position:
                return batch
        return self._batch(stream, position)

    def _prefetch(self, stream: Stream, position: int) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replicator-render")
        self._prefetched[stream.name] = (position, self._pool.submit(self._batch, stream, position))

    def _blocked(self) -> bool:
        state = self.outbox.state()
        if not state["blocked"]:
            return False
        if state["blocked_credentials"] != self.credentials:
            log.info("the credentials changed since the server refused them: sending again")
            self.outbox.clear_block()
            return False
        if state["blocked_ms"] is not None and self._clock_ms() - state["blocked_ms"] >= self.auth_recheck_s * 1000:
            log.info("trying the refused credentials again (once per %gs)", self.auth_recheck_s)
            return False
        now = self._monotonic()
        if self._loud_at is None or now - self._loud_at >= LOUD_EVERY_S:
            self._loud_at = now
            log.error("REPLICATION STOPPED: %s", state["blocked"])
        return True

    def sync_once(self) -> Pass:
        """One batch per stream, each delivered and acknowledged before its watermark moves."""
        result = Pass()
        if self._blocked():
            result.blocked = True
            return result
        pending = self.outbox.pending()
        for stream in self.streams:
            if self.stop_event.is_set():
                break
            position, head = pending[stream.name]
            if head <= position and stream.name not in self._prefetched:
                continue
            batch = self._take_batch(stream, position)
            if batch is None:
                continue
            if batch.full:
                # Render the next batch while this one is on the wire (rendering holds
                # the GIL; compressing and waiting for the server do not).
                self._prefetch(stream, batch.position)
            try:
                delivery = self.policy.deliver(batch.lines, batch.body) if batch.lines else Delivery()
            except WriteError as exc:
                self._failed(exc)
                result.error = exc
                result.blocked = exc.auth
                break
            dead = [(batch.keys[d.index], d.status, d.message, d.line) for d in delivery.dead]
            self.outbox.commit(stream, batch.position, points=delivery.lines, bytes_sent=delivery.bytes,
                               dead=dead, skipped=batch.skipped, ts_ms=self._clock_ms())
            if dead:
                log.warning("%s: %d point(s) refused by the server, kept as dead letters (first: %s)",
                            stream.name, len(dead), dead[0][2])
            log.debug("%s: %d rows, %d points, %d bytes; watermark %d", stream.name, batch.rows,
                      delivery.lines, delivery.bytes, batch.position)
            result.rows += batch.rows
            result.points += delivery.lines
            result.bytes += delivery.bytes
            result.dead += len(dead)
            result.more = result.more or batch.full
        return result

    def _failed(self, exc: WriteError) -> None:
        if exc.auth:
            why = (f"the server refused the credentials (HTTP {exc.status}: {exc.message}); "
                   f"nothing is sent until [cloud] token or username/password change")
            self.outbox.record_failure(exc.status, str(exc), blocked=why, credentials=self.credentials,
                                       ts_ms=self._clock_ms())
            self._loud_at = self._monotonic()
            log.error("REPLICATION STOPPED: %s", why)
        else:
            self.outbox.record_failure(exc.status, str(exc), ts_ms=self._clock_ms())
            log.warning("replication failed, will retry: %s", exc)

    # -- loops -----------------------------------------------------------------------

    def drain(self, progress: Callable[[int], None] | None = None) -> Pass:
        """`sync_once()` until nothing is left; the totals. Stops at the first error or a block."""
        total = Pass()
        while not self.stop_event.is_set():
            result = self.sync_once()
            total.rows += result.rows
            total.points += result.points
            total.bytes += result.bytes
            total.dead += result.dead
            if progress is not None and result.rows:
                progress(result.rows)
            if result.error is not None or result.blocked:
                total.error, total.blocked = result.error, result.blocked
                break
            if not result.more:
                break
        return total

    def stop(self, *_args) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop after the request in hand (main thread only)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _backoff_s(self) -> float:
        base = min(self.max_backoff_s, self.interval_s * 2 ** min(self.failures_in_a_row, 16))
        return base * random.uniform(0.5, 1.0)

    def run(self) -> None:
        """Replicate until stopped. Never dies of a server or store error."""
        log.info("replicating to %s (%s) every %gs, batches of %d lines",
                 getattr(self.writer, "url", "?"), getattr(self.writer, "target", "?"), self.interval_s,
                 self.batch_size)
        while not self.stop_event.is_set():
            try:
                result = self.sync_once()
            except StoreError as exc:
                log.error("replication paused: %s", exc)
                result = Pass(error=exc)
            if result.error is not None and not result.blocked:
                self.failures_in_a_row += 1
                wait = self._backoff_s()
            else:
                if self.failures_in_a_row and result.error is None and not result.blocked:
                    log.info("the server answers again")
                self.failures_in_a_row = 0
                wait = 0.0 if result.more else self.interval_s
            if wait:
                self.stop_event.wait(wait)
        log.info("replicator stopped")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.writer.close()
        self.outbox.close()
