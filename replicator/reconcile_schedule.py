"""The daemon's reconciliation: a pass every `[cloud] reconcile_every_h` and after every long outage,
one day at a time, only while the backlog is drained (the drain never waits for it).

`step()` checks (and repairs) at most one day and returns; the replicator's loop calls it
when a pass found nothing more to send. A cloud that cannot answer InfluxQL is said once,
loudly, kept in the store (`kammthaar status`, /health), and not asked again by this process;
replication and the heartbeat go on.
"""

from __future__ import annotations

import logging
from typing import Callable

from edge_store.errors import KammthaarError
from edge_store.store import now_ms

from .reconcile import Reconciler, Unsupported

log = logging.getLogger(__name__)

RETRY_MS = 60_000  # after the cloud or the store failed a check


class ReconcileSchedule:
    def __init__(self, reconciler: Reconciler, *, every_h: float, retry_ms: int = RETRY_MS,
                 clock_ms: Callable[[], int] = now_ms):
        self.reconciler = reconciler
        self.every_ms = int(every_h * 3_600_000)
        self._clock_ms = clock_ms
        self._days: list[str] | None = None  # the pass in progress: days left
        self._ok = True
        self._requested = False
        self.off: str | None = None  # why reconciliation is off in this process
        self.retry_ms = retry_ms
        self._paused_until = 0

    def after_outage(self) -> None:
        """The cloud answers again after a long outage: check it once the backlog is sent."""
        self._requested = True

    def _due(self) -> bool:
        if self._requested:
            return True
        if not self.every_ms:
            return False
        last = self.reconciler.log.state()["last_pass_ms"]
        return last is None or self._clock_ms() - last >= self.every_ms

    def step(self) -> bool:
        """Check at most one day; whether there was something to do."""
        if self.off is not None or self._clock_ms() < self._paused_until:
            return False
        try:
            if self._days is None:
                if not self._due():
                    return False
                self._requested = False
                self._days = self.reconciler.days()
                self._ok = True
                log.info("reconciliation: checking %d day(s) held locally", len(self._days))
            if not self._days:
                self.reconciler.log.record_pass(self._ok, self._clock_ms())
                self._days = None
                return False
            finding = self.reconciler.check_day(self._days[0])
            self._days.pop(0)
            self._ok = self._ok and finding.hours_still_differing == 0
            if finding.hours_differing:
                log.warning("reconciliation of %s: %d range(s) differed, %d repaired: %s", finding.day,
                            finding.hours_differing, finding.hours_repaired, "; ".join(finding.repaired[:5]))
            return True
        except Unsupported as exc:
            self.off = str(exc)
            log.error("RECONCILIATION OFF: %s; replication and the heartbeat go on", exc)
            self.reconciler.log.record_unsupported(self.off)
            return False
        except KammthaarError as exc:  # the cloud or the store is away for now: the same day later
            log.warning("reconciliation paused for %ds: %s", self.retry_ms // 1000, exc)
            self._paused_until = self._clock_ms() + self.retry_ms
            return False
