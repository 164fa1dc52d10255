"""The publisher in process against a real broker and a real store: availability and its reasons, nothing
new for a failed or missing reading, energy totals that never decrease (clock passed in)."""

from __future__ import annotations

import json
import threading

import pytest

from edge_store.registers import LIVE, STATS
from publisher.link import Link
from publisher.publisher import Publisher
from publisher.snapshot import StoreReader
from tests.samples import STATS_VALUES, T0, add_live, device, live
from tests.fixtures_mqtt import Mosquitto, Subscriber
from tests.support import clean_env, kammthaar, wait_until

SITE, DEVICE = "van-lisa", "epever"
BASE = f"kammthaar/{SITE}/{DEVICE}"


@pytest.fixture
def clock():
    """The publisher's clock (seconds), moved by the test."""
    return [T0 / 1000]


@pytest.fixture
def publisher(mosquitto, subscriber, db_path, clock):
    link = Link(mosquitto.url, username="", password="", client_id="test-publisher",
                status_topic=f"kammthaar/{SITE}/status", wake=threading.Event())
    pub = Publisher(StoreReader(str(db_path)), link, site=SITE, devices=(device(DEVICE, 1.0),),
                    base_topic="kammthaar", discovery_prefix="homeassistant", interval_s=1.0,
                    clock=lambda: clock[0])
    link.start()
    subscriber.wait_for(lambda: link.connected and link.new_session.is_set(), "the publisher did not connect")
    link.new_session.clear()
    yield pub
    link.stop()
    pub.reader.close()


def _flush(pub: Publisher, subscriber, topic: str, count: int) -> None:
    subscriber.wait_for(lambda: len(subscriber.received(topic)) >= count, f"{count} messages on {topic}")


def test_availability_says_fresh_stale_or_failed_and_a_failed_read_publishes_nothing(publisher, subscriber, store,
                                                                                      clock):
    avail = f"{BASE}/availability"
    publisher.publish_session()
    _flush(publisher, subscriber, avail, 1)
    assert subscriber.latest_json(avail)["reason"] == "no live sample stored yet"
    assert subscriber.latest_json(avail)["state"] == "offline"
    assert subscriber.received(f"{BASE}/live") == []  # nothing stored: no state, no zeros

    add_live(store, 3)  # T0 .. T0 + 2 s
    clock[0] = T0 / 1000 + 2.5
    assert publisher.publish_once() == 3  # availability, live, energy
    _flush(publisher, subscriber, f"{BASE}/live", 1)
    assert subscriber.latest_json(avail)["state"] == "online"
    assert subscriber.latest_json(f"{BASE}/live")["ts_ms"] == T0 + 2000

    # Time passes, nothing new is stored: nothing is republished until it is more than 2 × interval_s old.
    clock[0] = T0 / 1000 + 4.0
    assert publisher.publish_once() == 0
    clock[0] = T0 / 1000 + 4.5
    assert publisher.publish_once() == 1
    _flush(publisher, subscriber, avail, 3)
    stale = subscriber.latest_json(avail)
    assert (stale["state"], stale["why"], stale["newest_sample_age_s"]) == ("offline", "stale", 2.5)
    assert "more than 2 × interval_s (2 s)" in stale["reason"]

    # The reads fail: the collector records errors and stores nothing; availability says so, states stay.
    store.record_error("timeout", "input:0x3100+18", "no answer within 1.0 s", device=DEVICE, ts_ms=T0 + 4000)
    assert publisher.publish_once() == 1
    _flush(publisher, subscriber, avail, 4)
    failed = subscriber.latest_json(avail)
    assert (failed["state"], failed["why"]) == ("offline", "failed")
    assert failed["reason"].startswith("failed: timeout reading input:0x3100+18 (no answer within 1.0 s)")
    assert len(subscriber.received(f"{BASE}/live")) == 1
    assert publisher.publish_once() == 0

    # A new sample: online again, published once.
    add_live(store, 1, start=5)
    clock[0] = T0 / 1000 + 5.5
    assert publisher.publish_once() == 3
    _flush(publisher, subscriber, f"{BASE}/live", 2)
    assert subscriber.latest_json(avail)["state"] == "online"
    assert subscriber.latest_json(f"{BASE}/live")["ts_ms"] == T0 + 5000


def test_battery_energy_totals_sum_every_day_and_never_decrease(publisher, subscriber, open_store, clock):
    rolled = open_store(tz="UTC", max_gap_s=15.0)
    # Two days of charging at 2 A, then discharging at 1 A, one sample a second for 10 minutes each.
    day = 86_400_000
    for d in range(2):
        rolled.insert_samples(LIVE, ({"ts_ms": T0 + d * day + i * 1000, "ntp_synced": True, "device": DEVICE,
                                      **live(i, battery_voltage=12.5 + (i % 2),
                                                battery_current=2.0 if i < 600 else -1.0)} for i in range(1200)))
    rolled.insert_samples(STATS, [{"ts_ms": T0, "ntp_synced": True, "device": DEVICE, **STATS_VALUES}])
    rows = rolled.db.query("t", "SELECT battery_charge_kwh, battery_discharge_kwh FROM rollup_daily "
                                "WHERE device = ?", (DEVICE,)).fetchall()
    assert len(rows) == 2
    # The rollups' exact integration (tests/test_rollups_battery_energy.py checks it by hand), summed.
    expect_in, expect_out = (round(sum(r[i] for r in rows), 3) for i in (0, 1))
    # About 26 W in for 599 s and 13 W out for 599 s a day (12.5 V / 13.5 V alternating).
    assert expect_in == pytest.approx(2 * 26 * 599 / 3.6e6, abs=0.002)
    assert expect_out == pytest.approx(2 * 13 * 599 / 3.6e6, abs=0.002)
    clock[0] = (T0 + day) / 1000 + 1200
    publisher.publish_session()
    topic = f"{BASE}/energy"
    _flush(publisher, subscriber, topic, 1)
    energy = subscriber.latest_json(topic)
    assert energy["battery_energy_in"] == expect_in > 0
    assert energy["battery_energy_out"] == expect_out > 0
    assert set(energy) == {"battery_energy_in", "battery_energy_out", "ts_ms"}  # the device has its own totals
    assert subscriber.latest_json(f"{BASE}/stats")["energy_total_generated"] == STATS_VALUES["total_generated"]

    # A rebuild that lowers a day (here: a row edited down) never shows as a decrease: HA would read a reset.
    with rolled.db.writing("t") as conn:
        conn.execute("UPDATE rollup_daily SET battery_charge_kwh = battery_charge_kwh / 2")
    rolled.insert_samples(LIVE, [{"ts_ms": T0 + day + 1_200_000, "ntp_synced": True, "device": DEVICE,
                                  **live(0, battery_current=0.0)}])
    assert publisher.publish_once() >= 2
    _flush(publisher, subscriber, topic, 2)
    assert subscriber.latest_json(topic)["battery_energy_in"] == expect_in


def test_a_bad_mqtt_url_names_the_key_and_exits_2(tmp_path):
    done = kammthaar("publish", env=clean_env(store_path=tmp_path / "k.db", mqtt_url="http://broker:1883"))
    assert done.returncode == 2
    assert "[mqtt] url" in done.stderr and "mqtt://HOST:PORT" in done.stderr


def test_the_publisher_logs_in_with_username_and_password_and_a_wrong_one_is_refused(tmp_path, caplog):
    broker = Mosquitto(tmp_path / "auth-broker", users={"kammthaar": "s3cret-pw"}).start()
    links = []
    try:
        for password in ("wrong", "s3cret-pw"):
            link = Link(broker.url, username="kammthaar", password=password, client_id=f"test-{password}",
                        status_topic="kammthaar/auth/status", wake=threading.Event())
            links.append(link)
            link.start()
        wait_until(lambda: links[1].connected, 15, "the publisher with the right password did not connect")
        wait_until(lambda: "refused the connection" in caplog.text, 15, "no refusal logged for the wrong password")
        assert not links[0].connected
    finally:
        for link in links:
            link.stop()
        broker.stop()


def test_without_a_url_the_publisher_idles_says_why_and_stops_cleanly(start_kammthaar, tmp_path):
    proc = start_kammthaar("publish", env=clean_env(store_path=tmp_path / "k.db"), ready_line="no [mqtt] url configured")
    assert proc.stop() == 0


def test_mqtts_with_the_ca_file_publishes_over_tls_and_an_unknown_ca_is_refused(start_kammthaar, store, db_path,
                                                                                tmp_path, caplog):
    # A throwaway CA and server certificate (openssl), a TLS listener beside the plain one the subscriber uses.
    broker = Mosquitto(tmp_path / "tls-broker", tls=True).start()
    subscriber = Subscriber(broker)
    untrusted = None
    try:
        subscriber.wait_for(subscriber.subscribed.is_set, "the subscriber did not subscribe")
        add_live(store, 2)
        start_kammthaar("publish", env=clean_env(store_path=db_path, site_id=SITE, mqtt_url=broker.tls_url,
                                                 mqtt_ca_file=broker.ca_file, mqtt_interval_s="0.2"),
                        ready_line="connected to mqtts://")
        subscriber.wait_for(lambda: subscriber.latest(f"kammthaar/{SITE}/status") == "online"
                            and subscriber.latest(f"{BASE}/live"), "state published over TLS")
        assert subscriber.latest_json(f"{BASE}/live")["ts_ms"] == T0 + 1000
        # Empty ca_file: the system's CA store, which does not know this CA: no connection, and it says so.
        untrusted = Link(broker.tls_url, username="", password="", client_id="untrusted",
                         status_topic="kammthaar/untrusted/status", wake=threading.Event(), ca_file="")
        untrusted.start()
        wait_until(lambda: "could not connect to mqtts://" in caplog.text, 15, "no failed TLS connection logged")
        assert not untrusted.connected
    finally:
        if untrusted is not None:
            untrusted.stop()
        subscriber.close()
        broker.stop()


def test_a_missing_ca_file_names_the_key_and_exits_2(tmp_path):
    done = kammthaar("publish", env=clean_env(store_path=tmp_path / "k.db", mqtt_url="mqtts://127.0.0.1:8883",
                                              mqtt_ca_file=tmp_path / "no-such-ca.pem"))
    assert done.returncode == 2
    assert "[mqtt] ca_file" in done.stderr


def test_a_restarted_publisher_starts_its_totals_at_what_the_broker_retains(publisher, mosquitto, subscriber,
                                                                             open_store, db_path, clock):
    rolled = open_store(tz="UTC", max_gap_s=15.0)
    rolled.insert_samples(LIVE, ({"ts_ms": T0 + i * 1000, "ntp_synced": True, "device": DEVICE,
                                  **live(i, battery_current=2.0)} for i in range(600)))
    clock[0] = T0 / 1000 + 600
    publisher.publish_session()
    topic = f"{BASE}/energy"
    _flush(publisher, subscriber, topic, 1)
    first = subscriber.latest_json(topic)["battery_energy_in"]
    assert first > 0
    # The day goes down (a rebuild, an upgrade's exact figures below the old estimate); a new process starts.
    with rolled.db.writing("t") as conn:
        conn.execute("UPDATE rollup_daily SET battery_charge_kwh = battery_charge_kwh / 2")
    link = Link(mosquitto.url, username="", password="", client_id="test-publisher-2",
                status_topic=f"kammthaar/{SITE}/status", wake=threading.Event())
    again = Publisher(StoreReader(str(db_path)), link, site=SITE, devices=(device(DEVICE, 1.0),),
                      base_topic="kammthaar", discovery_prefix="homeassistant", interval_s=1.0, clock=lambda: clock[0])
    link.start()
    try:
        subscriber.wait_for(lambda: link.connected, "the second publisher did not connect")
        again.publish_session()
        _flush(again, subscriber, topic, 2)
        assert [json.loads(m)["battery_energy_in"] for m in subscriber.received(topic)] == [first, first]
    finally:
        link.stop()
        again.reader.close()
