"""What to do when a write fails: retry, split, bisect, or stop.

- Connection errors, timeouts, 5xx and 429: retried by tenacity with
  exponential backoff and jitter; a Retry-After on 429 or 503 is honoured
  instead (capped at `max_retry_after_s`). After `max_attempts` the error goes
  up to the loop, which backs off and tries the batch again later.
- 413: the batch is split in two halves, each sent on its own (recursively).
- 400/422 (a parse error, a field type conflict): the batch is bisected down
  to the single bad lines, which come back as dead letters with the server's
  message; every other line is written.
- 401/403 and anything else: raised at once; the loop stops sending.

Halves go out in order, left then right, so the lines a server acknowledged
always form a prefix of the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)

from .influx_writer import WriteError

log = logging.getLogger(__name__)


@dataclass
class DeadLetter:
    """A line the server refused on its own, and why."""

    index: int  # position in the batch
    line: str
    status: int
    message: str


@dataclass
class Delivery:
    """The outcome of one batch: acknowledged lines and bytes, and the dead letters."""

    lines: int = 0
    bytes: int = 0
    requests: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


class _RetryAfterOr:
    """Tenacity wait: the server's Retry-After when it gave one, else `fallback`."""

    def __init__(self, fallback, cap_s: float):
        self.fallback = fallback
        self.cap_s = cap_s

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, WriteError) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.cap_s)
        return self.fallback(state)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, WriteError) and exc.retryable


class Policy:
    """Delivers batches of lines through a writer (`encode(lines) -> bytes`, `send(bytes) -> int`)."""

    def __init__(self, writer, *, max_attempts: int = 5, base_backoff_s: float = 0.5,
                 max_backoff_s: float = 60.0, max_retry_after_s: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep, stop_event: threading.Event | None = None):
        self.writer = writer
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._stop_event = stop_event or threading.Event()
        self._wait = _RetryAfterOr(wait_exponential_jitter(multiplier=base_backoff_s, max=max_backoff_s,
                                                           jitter=base_backoff_s), max_retry_after_s)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception()
        log.warning("write failed (%s); attempt %d of %d, next in %.1fs", exc, state.attempt_number,
                    self.max_attempts, state.upcoming_sleep)

    def send(self, lines: list[str], delivery: Delivery | None = None, body: bytes | None = None) -> int:
        """One request for `lines` (`body`: already encoded), retried while retrying can help; the bytes sent."""
        body = self.writer.encode(lines) if body is None else body
        delivery = delivery if delivery is not None else Delivery()
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts) | stop_when_event_set(self._stop_event),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                delivery.requests += 1
                sent = self.writer.send(body)
        return sent

    def deliver(self, lines: list[str], body: bytes | None = None) -> Delivery:
        """Every line written or dead-lettered, or a WriteError (the batch is then resent whole later).

        `body`: the whole batch already encoded by the writer (halves are encoded when needed).
        """
        delivery = Delivery()
        self._deliver(lines, 0, delivery, body)
        return delivery

    def _deliver(self, lines: list[str], offset: int, delivery: Delivery, body: bytes | None = None) -> None:
        if not lines:
            return
        try:
            delivery.bytes += self.send(lines, delivery, body)
            delivery.lines += len(lines)
            return
        except WriteError as exc:
            if not (exc.too_large or exc.bad_data):
                raise
            if len(lines) == 1:
                delivery.dead.append(DeadLetter(offset, lines[0], exc.status, exc.message))
                log.debug("dead letter (HTTP %s): %s", exc.status, exc.message)
                return
            log.info("HTTP %s for %d lines: %s the batch", exc.status, len(lines),
                     "splitting" if exc.too_large else "bisecting")
        half = len(lines) // 2
        self._deliver(lines[:half], offset, delivery)
        self._deliver(lines[half:], offset + half, delivery)
