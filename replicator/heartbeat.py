"""The heartbeat: an `edge_health` point every `[cloud] heartbeat_s`, on its own timer and writer.

One point per beat tagged `site` (the Pi: software version, backlog, oldest unsent
sample, dead letters, dropped rows, database size, free disk, NTP, the last 30 days'
cloud completeness once a reconciliation ran, the alerts firing now), and one per device tagged `site` and
`device` (its model, newest sample's age, read errors, fresh). `FIELDS` describes them for
docs/influx-schema.md (replicator/influx_schema.py). The fleet view reads them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from typing import Any, Callable

from edge_store.alerts.events import active_totals, read
from edge_store.devices import DeviceConfig, fresh_within_s
from edge_store.health_figures import device_figures, disk_figures
from edge_store.ntp import kernel_synchronised
from edge_store.outbox import Outbox
from edge_store.reconcile_log import ReconcileLog
from edge_store.store import now_ms

from .line_protocol import fields_text, measurement_text, tags_text, time_text
from .points import BOOLEAN, FLOAT, INTEGER, STRING

log = logging.getLogger(__name__)

MEASUREMENT = "edge_health"

# (field, InfluxDB type, what): the site's point, then each device's point.
SITE_FIELDS = (
    ("version", STRING, "the software version (kammthaar-edge)"),
    ("backlog_rows", INTEGER, "rows not acknowledged by the cloud yet"),
    ("oldest_unsent_age_s", FLOAT, "age of the oldest sample the cloud does not have (0: none)"),
    ("dead_letters", INTEGER, "points the cloud refused, ever"),
    ("dropped_rows", INTEGER, "unsent samples pruned to keep the database under its cap, ever"),
    ("db_bytes", INTEGER, "size of the SQLite file and its WAL"),
    ("free_bytes", INTEGER, "free space on the database's filesystem"),
    ("ntp_synced", BOOLEAN, "the system clock is NTP-synchronised"),
    ("completeness", FLOAT, "points the cloud holds / points the Pi sent, last 30 days (absent before the "
                            "first reconciliation)"),
    ("alerts_active", INTEGER, "alerts firing now, one per rule and device (edge_store/alerts)"),
    ("alerts_critical", INTEGER, "of which critical"),
)
DEVICE_FIELDS = (
    ("model", STRING, "the device's `[[devices]] model` (a cloud API answers another site's device with its "
                      "model's fields)"),
    ("newest_sample_age_s", FLOAT, "age of the device's newest live sample"),
    ("errors", INTEGER, "the device's read errors still stored (pruned with the samples)"),
    ("fresh", BOOLEAN, "the newest sample is at most two poll intervals (plus the commit window) old"),
)


def software_version() -> str:
    try:
        return importlib.metadata.version("kammthaar-edge")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class Heartbeat:
    """Renders and sends the `edge_health` points; `run()` does it every `every_s` until stopped."""

    def __init__(self, outbox: Outbox, writer, *, site: str, devices: tuple[DeviceConfig, ...],
                 every_s: float = 60.0, clock_ms: Callable[[], int] = now_ms,
                 ntp: Callable[[], bool] = kernel_synchronised, stop_event: threading.Event | None = None,
                 commit_window_s: float = 0.0):
        self.outbox = outbox
        self.writer = writer
        self.site = site
        self.devices = devices  # [[devices]]: name, model, poll interval_s
        self.commit_window_s = commit_window_s
        self.every_s = every_s
        self._clock_ms = clock_ms
        self._ntp = ntp
        self.version = software_version()
        self.log = ReconcileLog(outbox.db)
        self.stop_event = stop_event or threading.Event()
        self._failing = False

    def lines(self) -> list[str]:
        now = self._clock_ms()
        summary = self.outbox.summary(now)
        db_bytes, free_bytes = disk_figures(self.outbox.path)
        completeness = self.log.summary(now)["completeness"]
        alerts_active, alerts_critical = read(self.outbox.db, "the active alerts", active_totals)
        site: dict[str, Any] = {
            "version": self.version, "backlog_rows": int(summary["backlog_rows"]),
            "oldest_unsent_age_s": float(summary["oldest_unsent_age_s"] or 0),
            "dead_letters": int(summary["dead_letters"]), "dropped_rows": int(summary["dropped_rows"]),
            "db_bytes": int(db_bytes), "free_bytes": int(free_bytes), "ntp_synced": bool(self._ntp()),
            "completeness": None if completeness is None else float(completeness),
            "alerts_active": alerts_active, "alerts_critical": alerts_critical,
        }
        stamp = time_text(now)
        out = [measurement_text(MEASUREMENT) + tags_text({"site": self.site}) + fields_text(site) + stamp]
        for device in self.devices:
            newest, errors = device_figures(self.outbox.db, device.name)
            age = None if newest is None else max(0.0, (now - newest) / 1000)
            fields = {"model": device.model, "newest_sample_age_s": age, "errors": int(errors),
                      "fresh": age is not None and age <= fresh_within_s(device.interval_s, self.commit_window_s)}
            out.append(measurement_text(MEASUREMENT) + tags_text({"site": self.site, "device": device.name})
                       + fields_text(fields) + stamp)
        return out

    def beat_once(self) -> None:
        """Send one heartbeat (one request); raises WriteError or StoreError."""
        self.writer.send(self.writer.encode(self.lines()))

    def run(self) -> None:
        """A beat every `every_s` until stopped; a failure is logged when it starts and when it ends."""
        from edge_store.errors import KammthaarError

        while not self.stop_event.is_set():
            try:
                self.beat_once()
                if self._failing:
                    log.info("heartbeat: sent again")
                self._failing = False
            except (KammthaarError, OSError) as exc:  # OSError: the disk figures (the store's directory gone)
                if not self._failing:
                    log.warning("heartbeat not sent (tried again every %gs): %s", self.every_s, exc)
                self._failing = True
            self.stop_event.wait(self.every_s)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="heartbeat", daemon=True)
        thread.start()
        return thread
