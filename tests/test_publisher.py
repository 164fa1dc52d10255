"""`kammthaar publish` as a process, a real mosquitto and a paho subscriber: Home Assistant discovery and
states checked field by field against the catalogue and what the simulator served (real collector, pty pair);
a device going stale; the broker killed and restarted; the last will and the clean stop."""

from __future__ import annotations

import json

from edge_store.catalogue import BOOLEAN, EPEVER_TRACER, STRING
from edge_store.db import Database
from edge_store.registers import CLOCK, SETTINGS
from publisher.entities import field_key
from tests.fixtures_serial import collector_env, wait_for_rows
from tests.samples import FROZEN, T0, add_live, expected_values
from tests.support import clean_env

SITE, DEVICE = "van-lisa", "epever"
NODE = f"kammthaar_{SITE}_{DEVICE}"
BASE = f"kammthaar/{SITE}"
STATUS, AVAILABILITY = f"{BASE}/status", f"{BASE}/{DEVICE}/availability"
# What Home Assistant's standard classes are for our units (written here, not read from publisher/).
DEVICE_CLASS = {"V": "voltage", "A": "current", "W": "power", "°C": "temperature", "kWh": "energy", "min": "duration"}
LIFETIME = {"total_generated", "total_consumed"}
EDGE_ENERGY = ("battery_energy_in", "battery_energy_out")


def _config_topic(component: str, key: str) -> str:
    return f"homeassistant/{component}/{NODE}/{key}/config"


def _publisher_env(db, broker, **extra) -> dict:
    return clean_env(store_path=db, site_id=SITE, mqtt_url=broker.url, mqtt_interval_s="0.2", **extra)


def _expected_config_topics() -> set[str]:
    topics = {_config_topic("binary_sensor" if f.type == BOOLEAN else "sensor", field_key(f))
              for f in EPEVER_TRACER.fields}
    return topics | {_config_topic("sensor", k) for k in (*EDGE_ENERGY, "availability")}


def _assert_entity(config: dict, f, served: dict, states: dict) -> None:
    """One catalogue field's discovery config and its state, as Home Assistant reads them."""
    cat, key = EPEVER_TRACER, field_key(f)
    group = cat.group(f)
    assert config["unique_id"] == f"{NODE}_{key}"
    assert config["state_topic"] == f"{BASE}/{DEVICE}/{group}"
    assert config["value_template"] == "{{ value_json.%s }}" % key
    assert config["availability"] == [{"topic": STATUS}, {"topic": AVAILABILITY, "value_template": "{{ value_json.state }}"}]
    assert config["availability_mode"] == "all"
    assert config["device"] == {"identifiers": [NODE], "name": f"{DEVICE} ({SITE})", "manufacturer": "EPEVER",
                                "model": "Tracer (epever-tracer)"}
    unit = cat.unit(f)
    numeric = f.type not in (BOOLEAN, STRING) and unit
    assert config.get("unit_of_measurement") == (unit if numeric else None), key
    want_class = "battery" if f.column == "state_of_charge" else DEVICE_CLASS.get(unit) if numeric else None
    if f.type == BOOLEAN:
        assert (config["payload_on"], config["payload_off"]) == ("True", "False")
        want_class = config.get("device_class")  # problem / running / heat: not a unit's
    assert config.get("device_class") == want_class, key
    if f.column in LIFETIME:
        want_state = "total_increasing"
    elif numeric and group not in (SETTINGS, CLOCK) and unit != "kWh" and want_class:
        want_state = "measurement"
    else:
        want_state = None
    assert config.get("state_class") == want_state, key
    assert (config.get("entity_category") == "diagnostic") == (
        group in (SETTINGS, CLOCK) or f.key.startswith(("errors.", "status."))), key
    assert states[group][key] == f.from_column()(served[f.column]), key


def test_home_assistant_gets_every_catalogue_field_with_the_served_values_then_stale(
        serial_pair, start_simulator, start_kammthaar, mosquitto, subscriber, tmp_path):
    db = tmp_path / "kammthaar.db"
    start_simulator("--port", serial_pair.device, *FROZEN)
    collector = start_kammthaar("collect", env=collector_env(db, serial_pair.client, modbus_interval_s="0.5",
                                                             site_id=SITE))
    wait_for_rows(db, "device_settings", 1, collector)
    start_kammthaar("publish", env=_publisher_env(db, mosquitto, modbus_interval_s="0.5"), ready_line="connected to")
    want = _expected_config_topics()
    subscriber.wait_for(lambda: want <= subscriber.topics("homeassistant/"), "every discovery config")
    assert subscriber.topics("homeassistant/") == want  # one entity per catalogue field, nothing else
    groups = ("live", "stats", "settings", "clock")
    subscriber.wait_for(lambda: all(subscriber.latest(f"{BASE}/{DEVICE}/{g}") for g in groups), "every state")
    subscriber.wait_for(lambda: (subscriber.latest_json(AVAILABILITY) or {}).get("state") == "online", "online")
    assert subscriber.latest(STATUS) == "online"

    served = expected_values()
    states = {g: subscriber.latest_json(f"{BASE}/{DEVICE}/{g}") for g in groups}
    for f in EPEVER_TRACER.fields:
        component = "binary_sensor" if f.type == BOOLEAN else "sensor"
        _assert_entity(subscriber.latest_json(_config_topic(component, field_key(f))), f, served, states)
    # The Energy dashboard's four: energy, total_increasing, kWh (the device's lifetime counters, the edge's battery).
    energy_keys = ["energy_total_generated", "energy_total_consumed", *EDGE_ENERGY]
    for key in energy_keys:
        config = subscriber.latest_json(_config_topic("sensor", key))
        assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == \
            ("energy", "total_increasing", "kWh"), key
    assert subscriber.latest_json(_config_topic("sensor", "battery_energy_in"))["state_topic"] == \
        f"{BASE}/{DEVICE}/energy"
    # Each stored row is published once: their times only increase.
    times = [json.loads(m)["ts_ms"] for m in subscriber.received(f"{BASE}/{DEVICE}/live")]
    assert times == sorted(set(times))

    # The collector stops: nothing new is published, the device goes offline and says why.
    collector.stop()
    subscriber.wait_for(lambda: subscriber.latest_json(AVAILABILITY)["state"] == "offline", "offline when stale")
    assert subscriber.latest_json(AVAILABILITY)["why"] == "stale"
    with Database(db, readonly=True) as store:
        newest = store.query("t", "SELECT max(ts_ms) FROM live_samples").fetchone()[0]
        charge, discharge = store.query(
            "t", "SELECT sum(battery_charge_kwh), sum(battery_discharge_kwh) FROM rollup_daily").fetchone()
    energy_topic = f"{BASE}/{DEVICE}/energy"
    subscriber.wait_for(lambda: subscriber.latest_json(energy_topic)["ts_ms"] == newest, "the last energy totals")
    assert subscriber.latest_json(energy_topic)["battery_energy_in"] == round(charge, 3)
    assert subscriber.latest_json(energy_topic)["battery_energy_out"] == round(discharge, 3)
    assert subscriber.latest_json(f"{BASE}/{DEVICE}/live")["ts_ms"] == newest


def test_after_a_broker_restart_discovery_and_state_come_back_and_the_will_says_offline(
        start_kammthaar, mosquitto, subscriber, store, db_path):
    add_live(store, 5)
    env = _publisher_env(db_path, mosquitto)
    publisher = start_kammthaar("publish", env=env, ready_line="connected to")
    want = _expected_config_topics()
    live_topic = f"{BASE}/{DEVICE}/live"
    subscriber.wait_for(lambda: want <= subscriber.topics("homeassistant/") and subscriber.latest(live_topic),
                        "discovery and state")
    before = subscriber.latest_json(live_topic)
    assert before["ts_ms"] == T0 + 4000
    assert subscriber.latest_json(AVAILABILITY)["why"] == "stale"  # samples of 2025

    mosquitto.kill()
    subscriber.forget()
    mosquitto.start()  # no persistence: every retained message is gone; what comes back was republished
    subscriber.wait_for(lambda: want <= subscriber.topics("homeassistant/") and subscriber.latest(live_topic)
                        and subscriber.latest(STATUS) == "online", "discovery and state after the restart")
    assert subscriber.latest_json(live_topic) == before
    assert subscriber.latest_json(AVAILABILITY)["state"] == "offline"
    publisher.assert_alive()

    publisher.kill()  # a crash: the broker publishes the last will
    subscriber.wait_for(lambda: subscriber.latest(STATUS) == "offline", "the last will")
    publisher = start_kammthaar("publish", env=env, ready_line="connected to")
    subscriber.wait_for(lambda: subscriber.latest(STATUS) == "online", "online again")
    assert publisher.stop() == 0  # a clean stop says offline itself
    subscriber.wait_for(lambda: subscriber.latest(STATUS) == "offline", "offline on a clean stop")
