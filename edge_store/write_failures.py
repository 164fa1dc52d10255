"""The store's failed writes as the collector meets them: logged sparingly, counted, told to readers.

A store that cannot write (a full card, a read-only remount) fails every poll:
20 ERROR lines a second at 0.05 s polls would fill the card further through
journald. So the first failure is logged, then one line a minute at most with
the count; the first write that succeeds again ends the episode with one line
(and the count is added to the `store.write_failures` counter by the
collector, in the store, now that it writes). Writes that fail and succeed in
turn stay within two lines a minute; no count is left untold (`succeeded`).

While the store cannot write, `kammthaar status` and the API's /health must
still learn about it, and the database is what cannot take a write. So the
state goes to a small side file next to it, `<store>-writes`: a fixed
`STATE_BYTES` of JSON padded with spaces, allocated when the collector starts
(when there is room) and then only overwritten in place, which takes no new
block on a full filesystem. It is rewritten when an episode starts or ends
and at most once a second in between: its count lags by at most that. When
it could not be allocated, the state lives in memory and in the log only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

from .store import now_ms

log = logging.getLogger("edge_store.collector")

STATE_SUFFIX = "-writes"
STATE_BYTES = 4096
LOG_EVERY_S = 60.0
STATE_EVERY_S = 1.0


def state_path(store_path: str) -> str:
    return str(store_path) + STATE_SUFFIX


def read_state(store_path: str) -> dict[str, Any] | None:
    """The collector's write state for the store at `store_path`, or None (no collector wrote one)."""
    try:
        with open(state_path(store_path), "rb") as fh:
            text = fh.read(STATE_BYTES).decode("utf-8").strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


class WriteFailures:
    """Counts failed writes, logs them sparingly and keeps `<store>-writes` up to date."""

    def __init__(self, store_path: str | None, *, monotonic: Callable[[], float] = time.monotonic,
                 clock_ms: Callable[[], int] = now_ms, log_every_s: float = LOG_EVERY_S):
        self._monotonic = monotonic
        self._clock_ms = clock_ms
        self.log_every_s = log_every_s
        self.total = 0            # failed writes since the collector started
        self.episode = 0          # failed writes since the last successful one
        self.unlogged = 0         # failed writes not told in a line yet
        self.since_ms: int | None = None
        self.last_error = ""
        self._logged_at: float | None = None
        self._episode_told = False  # a line told about this episode: its end gets one too
        self._saved_at: float | None = None
        self._fd = self._allocate(state_path(store_path)) if store_path else None
        self._save()

    @staticmethod
    def _allocate(path: str) -> int | None:
        fd = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if os.fstat(fd).st_size != STATE_BYTES:
                os.ftruncate(fd, 0)
                os.posix_fallocate(fd, 0, STATE_BYTES)  # the blocks, now, while there is room
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            log.warning("cannot keep the write state in %s (%s): it lives in the log only", path, exc.strerror)
            return None
        return fd

    def state(self) -> dict[str, Any]:
        return {"failing": self.episode > 0, "failed_writes": self.total, "episode_failures": self.episode,
                "since_ms": self.since_ms, "last_error": self.last_error or None, "updated_ms": self._clock_ms(),
                "pid": os.getpid()}

    def _save(self) -> None:
        self._saved_at = self._monotonic()
        if self._fd is None:
            return
        data = json.dumps(self.state()).encode("utf-8")[:STATE_BYTES - 1]
        try:  # the same bytes, the same place: no new block needed
            os.pwrite(self._fd, data.ljust(STATE_BYTES - 1) + b"\n", 0)
        except OSError:
            pass  # the log still tells

    def failed(self, exc: Exception) -> None:
        """One write failed with `exc` (its message says what was being written)."""
        now = self._monotonic()
        self.total += 1
        self.episode += 1
        self.unlogged += 1
        self.last_error = str(exc)
        if self.episode == 1:
            self.since_ms = self._clock_ms()
        if self._logged_at is None or now - self._logged_at >= self.log_every_s:
            if self.unlogged == 1 and self.episode == 1:
                log.error("%s (further failed writes: one line a minute)", exc)
            else:
                log.error("%d writes failed in the last %.0f s; the store cannot write since %s; the last: %s",
                          self.unlogged, now - self._logged_at if self._logged_at is not None else 0,
                          time.strftime("%H:%M:%S UTC", time.gmtime(self.since_ms / 1000)), exc)
            self._told(now)
            self._episode_told = True
            self._save()
        elif self.episode == 1 or now - (self._saved_at or 0) >= STATE_EVERY_S:
            self._save()

    def succeeded(self) -> int:
        """A write succeeded: the number of failed writes of the episode it ends (0: none was failing).

        The end of an episode that had its line gets one at once; failed writes no line told yet (an
        episode that began and ended within a minute of the last line) are told by the first success
        a minute after that line, or at close: at most two lines a minute, and every count is told.
        """
        if not self.episode and not self.unlogged:
            return 0
        now = self._monotonic()
        ended, self.episode = self.episode, 0
        if ended and self._episode_told:
            log.warning("the store writes again after %d failed writes", ended)
            self._told(now)
        elif self._logged_at is None or now - self._logged_at >= self.log_every_s:
            log.warning("the store writes again; %d writes failed in the last %.0f s", self.unlogged,
                        now - self._logged_at if self._logged_at is not None else 0)
            self._told(now)
        if ended:
            self._episode_told = False
            self.since_ms = None
            self._save()
        return ended

    def _told(self, now: float) -> None:
        self._logged_at = now
        self.unlogged = 0

    def close(self) -> None:
        if self.unlogged:
            log.warning("%d failed writes not told yet; the last: %s", self.unlogged, self.last_error)
            self.unlogged = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
