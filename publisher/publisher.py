"""The publisher: `publish_once()` sends what changed in the store since the last pass; `run()` loops.

Topics (BASE = `[mqtt] base_topic`/site):
- `BASE/status`: `online`, or `offline` on a clean stop and as the last will (retained).
- `BASE/DEVICE/availability`: `{"state": "online"|"offline", "reason": ..., "newest_sample_age_s": ...}`
  (retained): offline when the newest live sample is older than two of the device's `interval_s` (plus the
  collector's commit window),
  the reason saying whether the reads fail (a collector error after it) or nothing came.
- `BASE/DEVICE/GROUP` (live, stats, settings, clock): the newest row of that register group as JSON,
  one key per entity (entities.py), published once per new row (retained). A failed read stores no
  row, so nothing new is published: never a zero in its place.
- `BASE/DEVICE/energy`: the edge's lifetime energy totals, with each new live row; never lower than
  before, across restarts too (a session starts from what the broker retains there).
- `BASE/status/sync`: a nonce the publisher sends itself to know the retained totals have all come.
- `DISCOVERY/COMPONENT/NODE/KEY/config`: Home Assistant discovery (retained), at every new session.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from edge_store.devices import DeviceConfig, fresh_within_s
from edge_store import __version__
from edge_store.catalogue import MODELS
from edge_store.errors import StoreError
from edge_store.registers import GROUPS, LIVE, SETTINGS

from .devices import ha_device, node_id, reported_model, topic_part
from .entities import ENERGY, Entity, entities, state
from .link import ONLINE, OFFLINE, Link
from .snapshot import Snapshot, StoreReader

log = logging.getLogger("kammthaar.publish")

ORIGIN = {"name": "Kammthaar Edge", "sw_version": __version__}  # Home Assistant shows who made the entity
AVAILABILITY = "availability"
HA_STATE_MAX = 255  # Home Assistant refuses a longer state: the reason is cut to it


def _json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Publisher:
    """The store's newest values for each device, on the broker behind `link`."""

    def __init__(self, reader: StoreReader, link: Link, *, site: str, devices: tuple[DeviceConfig, ...],
                 base_topic: str, discovery_prefix: str, interval_s: float, commit_window_s: float = 0.0,
                 clock: Callable[[], float] = time.time):
        self.reader, self.link, self.site, self.devices = reader, link, site, devices
        self.base = f"{base_topic}/{topic_part(site)}"
        self.discovery_prefix = discovery_prefix
        self.interval_s = interval_s
        self.commit_window_s = commit_window_s  # [store]: a sample reaches the store up to this long after its read
        self.clock = clock
        self.entities: dict[str, tuple[Entity, ...]] = {d.name: entities(MODELS[d.model]) for d in devices}
        self._sent: dict[tuple[str, str], int] = {}  # (device, topic) -> id of the row last published
        self._availability: dict[str, tuple[str, str]] = {}  # device -> (state, why) last published
        self._energy: dict[tuple[str, str], float] = {}  # the highest total published: never a decrease
        self._reported: dict[str, str | None] = {}  # device -> the model string it reports, as discovered

    @property
    def status_topic(self) -> str:
        return f"{self.base}/status"

    def topic(self, device: str, what: str) -> str:
        return f"{self.base}/{topic_part(device)}/{what}"

    # -- discovery --------------------------------------------------------------------

    def discovery(self) -> dict[str, dict]:
        """Every discovery config by topic: the entities of each device, and its availability reason."""
        out: dict[str, dict] = {}
        for d in self.devices:
            out.update(self.device_discovery(d))
        return out

    def device_discovery(self, d: DeviceConfig) -> dict[str, dict]:
        """The discovery configs of one device, by topic."""
        out: dict[str, dict] = {}
        nid, device = node_id(self.site, d.name), ha_device(self.site, d, self._reported.get(d.name))
        availability = [{"topic": self.status_topic},
                        {"topic": self.topic(d.name, AVAILABILITY), "value_template": "{{ value_json.state }}"}]
        for e in self.entities[d.name]:
            config = {"name": e.name, "unique_id": f"{nid}_{e.key}", "state_topic": self.topic(d.name, e.topic),
                      "value_template": "{{ value_json.%s }}" % e.key, "availability": availability,
                      "availability_mode": "all", "device": device, "origin": ORIGIN, **e.options}
            if e.component == "binary_sensor":  # Jinja writes a JSON boolean as True / False
                config.update(payload_on="True", payload_off="False")
            out[f"{self.discovery_prefix}/{e.component}/{nid}/{e.key}/config"] = config
        # Why the device is (un)available: itself available whenever the publisher is.
        out[f"{self.discovery_prefix}/sensor/{nid}/{AVAILABILITY}/config"] = {
            "name": "Availability", "unique_id": f"{nid}_{AVAILABILITY}",
            "state_topic": self.topic(d.name, AVAILABILITY), "value_template": "{{ value_json.reason }}",
            "availability": availability[:1], "entity_category": "diagnostic", "device": device,
            "origin": ORIGIN}
        return out

    # -- one pass ---------------------------------------------------------------------

    def availability(self, device: DeviceConfig, snap: Snapshot, now_s: float) -> dict:
        """The device's availability and why: fresh, stale (nothing new) or failed (reads fail)."""
        live = snap.newest[LIVE]
        limit_s = fresh_within_s(device.interval_s, self.commit_window_s)
        if live is None:
            return {"state": OFFLINE, "why": "none", "reason": "no live sample stored yet", "newest_sample_age_s": None}
        age_s = round(max(0.0, now_s - live["ts_ms"] / 1000), 3)
        err = snap.last_error
        if age_s <= limit_s:
            state_, why, reason = ONLINE, "fresh", f"fresh: newest live sample {age_s:.0f} s old"
        elif err is not None and err["ts_ms"] > live["ts_ms"]:
            state_, why = OFFLINE, "failed"
            reason = (f"failed: {err['kind']} reading {err['block']} ({err['detail']}); "
                      f"newest live sample {age_s:.0f} s old")
        else:
            state_, why = OFFLINE, "stale"
            window = f" + the {self.commit_window_s:g} s commit window" if self.commit_window_s else ""
            reason = f"stale: newest live sample {age_s:.0f} s old, more than 2 × interval_s{window} ({limit_s:g} s)"
        if len(reason) > HA_STATE_MAX:
            reason = reason[:HA_STATE_MAX - 1] + "…"
        return {"state": state_, "why": why, "reason": reason, "newest_sample_age_s": age_s}

    def publish_once(self, *, force: bool = False) -> int:
        """Publish what changed since the last pass (everything current with `force`); messages sent."""
        sent = 0
        now_s = self.clock()
        for d in self.devices:
            snap = self.reader.take(d.name)
            reported = reported_model(d, snap.newest[SETTINGS])
            if reported is not None and reported != self._reported.get(d.name):
                # First read (or replaced): Home Assistant's device shows what the device says it is.
                self._reported[d.name] = reported
                sent += sum(self.link.publish(topic, _json(config)) for topic, config in self.device_discovery(d).items())
            avail = self.availability(d, snap, now_s)
            if force or self._availability.get(d.name) != (avail["state"], avail["why"]):
                if self.link.publish(self.topic(d.name, AVAILABILITY), _json(avail)):
                    self._availability[d.name] = (avail["state"], avail["why"])
                    sent += 1
            ents = self.entities[d.name]
            for group in GROUPS:
                row = snap.newest[group]
                if row is None or (not force and self._sent.get((d.name, group)) == row["id"]):
                    continue
                payload = {**state(ents, group, row), "ts_ms": row["ts_ms"]}
                if self.link.publish(self.topic(d.name, group), _json(payload)):
                    self._sent[(d.name, group)] = row["id"]
                    sent += 1
            live = snap.newest[LIVE]
            energy = state(ents, ENERGY, snap.energy)
            if energy and live is not None and (force or self._sent.get((d.name, ENERGY)) != live["id"]):
                for key, value in energy.items():
                    energy[key] = self._energy[(d.name, key)] = max(value, self._energy.get((d.name, key), value))
                if self.link.publish(self.topic(d.name, ENERGY), _json({**energy, "ts_ms": live["ts_ms"]})):
                    self._sent[(d.name, ENERGY)] = live["id"]
                    sent += 1
        return sent

    def _raise_energy_floors(self) -> None:
        """Start every energy total at least at what the broker retains from an earlier run: a
        total that went down (a rebuilt day, an upgrade) would read as a meter reset in Home Assistant."""
        topics = {self.topic(d.name, ENERGY): d.name for d in self.devices}
        for topic, payload in self.link.retained(list(topics)).items():
            try:
                totals = json.loads(payload)
            except ValueError:
                continue
            device = topics[topic]
            for e in self.entities[device]:
                value = totals.get(e.key) if e.topic == ENERGY and isinstance(totals, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    key = (device, e.key)
                    self._energy[key] = max(value, self._energy.get(key, value))

    def publish_session(self) -> int:
        """A new session: discovery, `online`, the energy totals' floors the broker retains, and the
        current state of everything."""
        self._raise_energy_floors()
        for d in self.devices:  # discovery names the model the device reports, when it is stored already
            self._reported[d.name] = reported_model(d, self.reader.take(d.name).newest[SETTINGS])
        sent = sum(self.link.publish(topic, _json(config)) for topic, config in self.discovery().items())
        sent += self.link.publish(self.status_topic, ONLINE)
        return sent + self.publish_once(force=True)

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: a pass every interval_s, a whole republication at each new session; then
        `offline` and disconnect. A store that cannot be read is logged and tried again."""
        self.link.start()
        try:
            while not stop.is_set():
                try:
                    if self.link.new_session.is_set():
                        self.link.new_session.clear()
                        log.info("session: %d messages published", self.publish_session())
                    elif self.link.connected:
                        self.publish_once()
                except StoreError as exc:
                    log.warning("%s; trying again in %g s", exc, self.interval_s)
                self.link.wake.wait(self.interval_s)
                self.link.wake.clear()
        finally:
            self.link.stop()
            self.reader.close()
