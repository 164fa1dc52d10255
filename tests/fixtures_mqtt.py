"""A real MQTT broker and a real subscriber for the publisher tests.

- `Mosquitto`: Debian's `mosquitto` on a free loopback port, anonymous, no persistence (a
  restart loses every retained message, so what comes back was republished). `kill()`
  (SIGKILL) and `start()` again on the same port: the outage tests. With `tls=True`, a second
  listener speaks TLS with a server certificate for 127.0.0.1 from a throwaway CA (`ca_file`),
  both made by openssl in the broker's directory.
- `Subscriber`: a paho-mqtt client subscribed to `#`, keeping every message received
  (resubscribing after a broker restart); `latest(topic)`, `wait_for(predicate)`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support import Process, free_port, port_open, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    def run(*args):
        subprocess.run([OPENSSL, *args], cwd=directory, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=kammthaar test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                          "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext")
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


class Mosquitto:
    """mosquitto with its config and log in `directory`, on a free loopback port; with `users`
    (name -> password) only they may connect."""

    def __init__(self, directory: Path, users: dict[str, str] | None = None, tls: bool = False):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        access = "allow_anonymous true\n"
        if users:
            passwords = self.dir / "passwords"
            for i, (name, password) in enumerate(users.items()):
                subprocess.run([MOSQUITTO_PASSWD, "-b", *(["-c"] if i == 0 else []), str(passwords), name, password],
                               check=True, capture_output=True)
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        # Started as root, mosquitto becomes its own user, who cannot read pytest's temp directory.
        user = "user root\n" if os.geteuid() == 0 else ""
        conf = self.dir / "mosquitto.conf"
        text = (f"listener {self.port} 127.0.0.1\n{access}{user}persistence false\n"
                "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
        self.tls_port = self.ca_file = None
        if tls:
            self.tls_port = free_port()
            self.ca_file, cert, key = make_ca_and_server_cert(self.dir)
            text += f"listener {self.tls_port} 127.0.0.1\ncafile {self.ca_file}\ncertfile {cert}\nkeyfile {key}\n"
        conf.write_text(text)
        self.process = Process([MOSQUITTO, "-c", str(conf)], self.dir / "mosquitto.log")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self, timeout_s: float = 15.0) -> "Mosquitto":
        self.process.start(ready=lambda: port_open(self.port) and (self.tls_port is None or port_open(self.tls_port)),
                           timeout_s=timeout_s)
        return self

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


class Subscriber:
    """Every message on the broker, in arrival order: (topic, payload text, retained)."""

    def __init__(self, broker: Mosquitto):
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kammthaar-test-subscriber")
        self.subscribed = threading.Event()
        self.client.on_connect = lambda client, *_: client.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def received(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def latest(self, topic: str) -> str | None:
        got = self.received(topic)
        return got[-1] if got else None

    def latest_json(self, topic: str) -> dict | None:
        text = self.latest(topic)
        return None if text is None else json.loads(text)

    def topics(self, prefix: str = "") -> set[str]:
        with self._lock:
            return {t for t, _, _ in self.messages if t.startswith(prefix)}

    def forget(self) -> None:
        with self._lock:
            self.messages.clear()

    def wait_for(self, predicate, what: str, timeout_s: float = 30.0):
        return wait_until(predicate, timeout_s, what, poll_s=0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mosquitto(tmp_path):
    """A broker of this test alone (tests kill and restart it)."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def subscriber(mosquitto):
    sub = Subscriber(mosquitto)
    sub.wait_for(sub.subscribed.is_set, "the test's subscriber did not subscribe")
    yield sub
    sub.close()
