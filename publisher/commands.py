"""publisher's command (`kammthaar publish`) and the publisher built from the config's [mqtt] section.

`register(subparsers)` adds it to the parser (kammthaar/cli.py).
"""

from __future__ import annotations

import logging
import signal
import threading

from edge_store import config

log = logging.getLogger("kammthaar")

IDLE_REMINDER_S = 3600


def build_publisher(cfg: config.Config):
    """The publisher the [mqtt] section describes, on the store (migrated first, as every long-running
    command does), reading it read-only."""
    from edge_store import migrate

    from .devices import topic_part
    from .link import Link
    from .publisher import Publisher
    from .snapshot import StoreReader

    m = cfg.mqtt
    link = Link(m.url, username=m.username, password=m.password, client_id=f"kammthaar-publish-{cfg.site.id}",
                status_topic=f"{m.base_topic}/{topic_part(cfg.site.id)}/status", wake=threading.Event(),
                ca_file=m.ca_file)
    migrate.ensure_schema(cfg.store.path)
    return Publisher(StoreReader(cfg.store.path), link, site=cfg.site.id, devices=cfg.devices,
                     base_topic=m.base_topic, discovery_prefix=m.discovery_prefix, interval_s=m.interval_s,
                     commit_window_s=cfg.store.commit_window_s)


def _stop_on_signals(stop: threading.Event, wake: threading.Event | None = None) -> None:
    def handler(*_):
        stop.set()
        if wake is not None:
            wake.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_publish(args) -> int:
    cfg = config.load(args.config)
    stop = threading.Event()
    if not cfg.mqtt.url:
        message = "no [mqtt] url configured: the publisher has nothing to do and idles (set [mqtt] url, or KAMMTHAAR_MQTT_URL)"
        _stop_on_signals(stop)
        log.warning(message)
        while not stop.wait(IDLE_REMINDER_S):
            log.warning(message)
        return 0
    publisher = build_publisher(cfg)
    _stop_on_signals(stop, publisher.link.wake)
    log.info("publishing %s to %s", cfg.store.path, cfg.mqtt.url)
    publisher.run(stop)
    return 0


def register(sub) -> None:
    """Add `kammthaar publish` to `kammthaar`'s subparsers."""
    p = sub.add_parser("publish", help="publish the newest values to an MQTT broker ([mqtt] section), "
                                       "with Home Assistant discovery, forever")
    p.set_defaults(func=cmd_publish)
