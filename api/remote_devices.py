"""Another site's devices, as InfluxDB knows them (issue 15).

A cloud server answers for many sites but configures only its own `[[devices]]`;
each Pi has its own. For a site other than the server's `[site] id`, the devices
and their models come from the site's points, in one request of two statements:

- its devices: the `device` tag values of the points carrying its `site` tag
  (`SHOW TAG VALUES`, an index lookup answered per measurement, so it also says
  which measurements each device writes);
- each device's newest heartbeat (`edge_health`, replicator/heartbeat.py): its
  `model` and `fresh`.

A device whose heartbeat has no `model` (a Pi older than issue 15) gets the one
model whose measurements fit its points (`infer_model`: an EPEVER writes
chargingEquipmentStatus with every live row, a Rover never does), else the
default model (`epever-tracer`). The answer is kept `TTL_S` per site (a device
added on a Pi shows within a minute), shared by the threads of a process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from edge_store.catalogue import DEFAULT_MODEL, MODELS
from edge_store.registers import LIVE
from replicator.influxql import InfluxQLReader, ident, literal

from .fleet import HEALTH  # the heartbeat's measurement, as the fleet reads it
TTL_S = 60.0
MAX_SITES = 4096  # kept answers; beyond, the expired ones are dropped


@dataclass(frozen=True)
class RemoteDevice:
    """A device of another site: its name, model, and its newest heartbeat's say (None: no heartbeat)."""

    name: str
    model: str
    reported: bool  # the model is the one its heartbeat gives (False: inferred from its points, or the default)
    heartbeat_fresh: bool | None = None


def _measurements(live_only: bool) -> dict[str, frozenset[str]]:
    return {name: frozenset(f.measurement for f in c.fields if f.measurement and (not live_only or c.group(f) == LIVE))
            for name, c in MODELS.items()}


WRITES, WRITES_LIVE = _measurements(False), _measurements(True)
SAMPLE_MEASUREMENTS = frozenset().union(*WRITES.values())


def infer_model(measurements: set[str] | frozenset[str]) -> str:
    """The one model that writes every measurement a device has points in, and all of its live ones among them;
    the default model when none or several do (points of one group only, rollups only)."""
    data = frozenset(measurements) & SAMPLE_MEASUREMENTS  # not edge_health, alerts, the rollups
    fits = [m for m in MODELS if WRITES_LIVE[m] <= data <= WRITES[m]]
    return fits[0] if len(fits) == 1 else DEFAULT_MODEL


def statements(site: str) -> list[str]:
    """The two statements of one site's lookup."""
    where = f"{ident('site')} = {literal(site)}"
    return [f"SHOW TAG VALUES WITH KEY = {ident('device')} WHERE {where}",
            f"SELECT {ident('model')}, {ident('fresh')} FROM {ident(HEALTH)} WHERE {where} "
            f"GROUP BY {ident('device')} ORDER BY time DESC LIMIT 1"]


def parse(tag_values: list[dict], heartbeats: list[dict]) -> tuple[RemoteDevice, ...]:
    """The site's devices, sorted by name, from the answers of `statements`."""
    written: dict[str, set[str]] = {}
    for series in tag_values:  # one series per measurement: rows ["device", name]
        for _, name in series.get("values") or ():
            if name:
                written.setdefault(name, set()).add(series.get("name", ""))
    beats: dict[str, dict] = {}
    for series in heartbeats:
        name = (series.get("tags") or {}).get("device")
        if name and series.get("values"):
            beats[name] = dict(zip(series["columns"], series["values"][0]))
    out = []
    for name in sorted(written):
        beat = beats.get(name, {})
        model = beat.get("model")
        reported = model in MODELS
        out.append(RemoteDevice(name, model if reported else infer_model(frozenset(written[name])), reported,
                                beat.get("fresh")))
    return tuple(out)


class RemoteDevices:
    """Each site's devices from InfluxDB, kept `ttl_s`; `of(site)` raises QueryError as the reader does."""

    def __init__(self, reader: Callable[[], InfluxQLReader], *, ttl_s: float = TTL_S,
                 monotonic: Callable[[], float] = time.monotonic):
        self._reader = reader
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._sites: dict[str, tuple[float, tuple[RemoteDevice, ...]]] = {}

    def of(self, site: str) -> tuple[RemoteDevice, ...]:
        now = self._monotonic()
        with self._lock:
            kept = self._sites.get(site)
        if kept is not None and now < kept[0]:
            return kept[1]
        devices = parse(*self._reader().query_each(statements(site)))  # outside the lock: one slow site
        with self._lock:                                                  # never holds up the others
            if len(self._sites) >= MAX_SITES:  # the expired go, then the oldest half: bounded whatever is asked
                kept = sorted(((v[0], s) for s, v in self._sites.items() if now < v[0]), reverse=True)
                self._sites = {s: self._sites[s] for _, s in kept[:MAX_SITES // 2]}
            self._sites[site] = (now + self.ttl_s, devices)
        return devices
