"""The MQTT connection: paho-mqtt 2.x (callback API version 2) on its own network thread.

The broker is told the publisher's last will (`offline`, retained) at every
connect, so a crash or a pulled cable says `offline` for us. paho reconnects by
itself after an outage (backoff up to `MAX_RECONNECT_S`); every new session sets
`sessions`, and the publisher then republishes discovery and state, since a
restarted broker may have lost the retained messages.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from edge_store.errors import ConfigError

log = logging.getLogger("kammthaar.publish")

ONLINE, OFFLINE = "online", "offline"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_RECONNECT_S = 30
KEEPALIVE_S = 30
STOP_FLUSH_S = 5.0
RETAINED_WAIT_S = 5.0


class Link:
    """One MQTT client with a last will on `status_topic`; `publish` only while connected."""

    def __init__(self, url: str, *, username: str, password: str, client_id: str, status_topic: str,
                 wake: threading.Event, ca_file: str = ""):
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(f"config: [mqtt] url = {url!r} is not allowed: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
        self.url, self.host, self.client_id = url, parts.hostname, client_id
        self.port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.status_topic = status_topic
        self.wake = wake
        self.new_session = threading.Event()  # set at each connect: republish everything
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.will_set(status_topic, OFFLINE, qos=1, retain=True)
        if username:
            self.client.username_pw_set(username, password or None)
        if parts.scheme == "mqtts":
            # The broker's certificate must chain to ca_file (a private CA) or the system's CAs, and name the host.
            try:
                self.client.tls_set(ca_certs=ca_file or None)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"config: [mqtt] ca_file = {ca_file!r} is not allowed: {exc}") from None
        self.client.reconnect_delay_set(min_delay=1, max_delay=MAX_RECONNECT_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("the broker %s refused the connection: %s", self.url, reason_code)
            return
        log.info("connected to %s", self.url)
        self.new_session.set()
        self.wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        # A broker that is down, or a TLS handshake that fails (an unknown CA): paho tries again.
        log.warning("could not connect to %s; trying again", self.url)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:  # not our own disconnect(): paho reconnects
            log.warning("disconnected from %s (%s); reconnecting", self.url, reason_code)

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> bool:
        """Queue a message (QoS 1); False when not connected (nothing queued for later: the next
        session republishes the current state instead)."""
        if not self.connected:
            return False
        return self.client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    def retained(self, topics: list[str], timeout_s: float = RETAINED_WAIT_S) -> dict[str, bytes]:
        """The messages the broker retains on `topics` (those it has), read once.

        Subscribes to them and to a sync topic, then publishes a nonce there: the broker
        handles our packets in order and queues a subscription's retained messages before
        the nonce comes back, so the nonce ends the wait without guessing a delay.
        """
        got: dict[str, bytes] = {}
        done = threading.Event()
        sync, nonce = f"{self.status_topic}/sync", f"{self.client_id}-{time.time_ns()}".encode()

        def on_message(client, userdata, msg) -> None:
            if msg.topic == sync:
                if msg.payload == nonce:
                    done.set()
            elif msg.retain:
                got[msg.topic] = msg.payload

        if not self.connected:
            return got
        self.client.on_message = on_message
        try:
            self.client.subscribe([(t, 1) for t in (*topics, sync)])
            self.client.publish(sync, nonce, qos=1)
            if not done.wait(timeout_s):
                log.warning("the broker did not echo within %g s: retained totals not read", timeout_s)
            self.client.unsubscribe([*topics, sync])
        finally:
            self.client.on_message = None
        return got

    def stop(self) -> None:
        """Clean stop: `offline` on the status topic, then disconnect (the will is not sent then)."""
        if self.connected:
            info = self.client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(STOP_FLUSH_S)
            except (RuntimeError, ValueError):  # the connection went away meanwhile: the will says it
                pass
        self.client.disconnect()
        self.client.loop_stop()
