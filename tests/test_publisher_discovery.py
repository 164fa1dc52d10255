"""Home Assistant discovery as Home Assistant's MQTT sensor and binary sensor docs define it: clean entity
names, the keys and classes each component takes, and the Energy dashboard's four entities (in process; the
broker tests in test_publisher.py check what a subscriber receives)."""

from __future__ import annotations

import re
import threading

import pytest

from publisher.link import Link
from publisher.publisher import Publisher
from publisher.snapshot import StoreReader
from edge_store.catalogue import MODELS, absent
from edge_store.registers import SETTINGS
from tests.samples import T0, add_live, device as device_config, expected_unit_values

SITE = "van-lisa"
DEVICES = (device_config("epever", 1.0), device_config("shed", 5.0), device_config("rover", 5.0, "renogy-rover"))

# Options of the MQTT sensor / binary sensor discovery payloads (home-assistant.io, sensor.mqtt and
# binary_sensor.mqtt), the ones this publisher may use.
COMMON = {"name", "unique_id", "state_topic", "value_template", "availability", "availability_mode", "device",
          "origin", "device_class", "entity_category"}
ALLOWED = {"sensor": COMMON | {"unit_of_measurement", "state_class", "suggested_display_precision"},
           "binary_sensor": COMMON | {"payload_on", "payload_off"}}
# Home Assistant's sensor device classes we use, with the units it accepts for each.
SENSOR_UNITS = {"voltage": {"V", "mV"}, "current": {"A", "mA"}, "power": {"W", "kW"}, "temperature": {"°C", "°F"},
                "battery": {"%"}, "energy": {"Wh", "kWh", "MWh"}, "duration": {"s", "min", "h", "d"}}
BINARY_CLASSES = {"problem", "running", "heat", "light"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}


@pytest.fixture
def publisher(store, db_path):
    link = Link("mqtt://127.0.0.1:1883", username="", password="", client_id="t", status_topic="kammthaar/s/status",
                wake=threading.Event())
    pub = Publisher(StoreReader(str(db_path)), link, site=SITE, devices=DEVICES, base_topic="kammthaar",
                    discovery_prefix="homeassistant", interval_s=1.0)
    yield pub
    pub.reader.close()


@pytest.fixture
def configs(publisher):
    return publisher.discovery()


def test_every_entity_has_a_clean_name_unique_per_device(configs):
    by_device: dict[str, list[str]] = {}
    for config in configs.values():
        by_device.setdefault(config["device"]["identifiers"][0], []).append(config["name"])
    assert len(by_device) == len(DEVICES)
    for device, names in by_device.items():
        assert len(names) == len(set(names)), f"{device}: {sorted(n for n in names if names.count(n) > 1)}"
        for name in names:
            words = name.lower().split()
            assert all(a != b for a, b in zip(words, words[1:])), f"a word twice in a row: {name!r}"
            assert "_" not in name and name[:1].isupper() and name == name.strip(), name
            assert not name.lower().startswith(("errors", "status", "parameters")), name
    names = set(by_device[f"kammthaar_{SITE}_epever"])
    assert {"Battery status", "Charging status", "PV power", "State of charge", "Battery energy in",
            "Charging MOSFET short circuit", "Battery inner resistance abnormal"} <= names


def test_discovery_payloads_take_only_home_assistant_keys_classes_and_units(configs):
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for topic, config in configs.items():
        prefix, component, node, object_id, last = topic.split("/")
        assert (prefix, last) == ("homeassistant", "config") and component in ALLOWED
        assert re.fullmatch(r"[A-Za-z0-9_-]+", node) and re.fullmatch(r"[A-Za-z0-9_-]+", object_id), topic
        assert set(config) <= ALLOWED[component], (topic, set(config) - ALLOWED[component])
        assert {"name", "unique_id", "state_topic", "device", "availability"} <= set(config)
        assert all(set(a) <= {"topic", "value_template"} and a["topic"] for a in config["availability"])
        assert config["device"]["identifiers"] == [node]
        assert set(config["origin"]) <= {"name", "sw_version", "support_url"} and config["origin"]["name"]
        assert config.get("entity_category") in (None, "diagnostic")
        device_class, unit, state_class = (config.get(k) for k in ("device_class", "unit_of_measurement", "state_class"))
        if component == "binary_sensor":
            assert device_class in BINARY_CLASSES | {None}, topic
            continue
        assert state_class in STATE_CLASSES | {None}, topic
        if device_class is not None:
            assert unit in SENSOR_UNITS[device_class], (topic, device_class, unit)
        if device_class == "energy":  # energy is never a `measurement` in Home Assistant
            assert state_class in (None, "total", "total_increasing"), topic
        if state_class is not None:
            assert unit, f"{topic}: a state_class needs a unit (a number)"


def test_an_availability_reason_fits_in_a_home_assistant_state(publisher, store):
    # A collector error with a long detail after the newest sample: the reason is cut to 255 characters.
    add_live(store, 1)
    store.record_error("crc", "input:0x3100+18", "x" * 400, device="epever", ts_ms=T0 + 1000)
    avail = publisher.availability(DEVICES[0], publisher.reader.take("epever"), T0 / 1000 + 60)
    assert (avail["state"], avail["why"]) == ("offline", "failed")
    assert len(avail["reason"]) == 255 and avail["reason"].startswith("failed: crc reading input:0x3100+18 (xxx")


def test_the_energy_dashboard_gets_solar_consumption_and_battery_in_and_out_per_device(configs):
    for d in DEVICES:
        node = f"kammthaar_{SITE}_{d.name}"
        energy = {c["name"]: c for t, c in configs.items() if f"/{node}/" in t and c.get("state_class") == "total_increasing"}
        assert set(energy) == {"Solar production", "Consumption", "Battery energy in", "Battery energy out"}
        for config in energy.values():
            assert (config["device_class"], config["unit_of_measurement"]) == ("energy", "kWh")
            assert "entity_category" not in config  # a diagnostic entity is not offered by the dashboard


def test_a_device_stays_available_while_its_samples_wait_in_the_collectors_commit_window(publisher, store):
    # [store] commit_window_s: samples reach the store up to a window after their read; 20 s old at a 1 s
    # interval is stale without a window and fresh with the default 30 s one.
    add_live(store, 1)
    snap = publisher.reader.take("epever")
    assert publisher.availability(DEVICES[0], snap, T0 / 1000 + 20)["state"] == "offline"
    publisher.commit_window_s = 30.0
    assert publisher.availability(DEVICES[0], snap, T0 / 1000 + 20)["state"] == "online"
    assert publisher.availability(DEVICES[0], snap, T0 / 1000 + 33)["state"] == "offline"


def test_a_device_is_shown_as_the_model_it_reports_once_its_settings_are_stored(publisher, store):
    """The Rover's own model string (its settings row) names its Home Assistant device; an EPEVER, which
    reports none, keeps its register table's name."""
    def models():
        return {c["device"]["identifiers"][0]: c["device"]["model"] for c in publisher.discovery().values()}

    assert models()["kammthaar_van-lisa_rover"] == "Rover (renogy-rover)"
    rover = MODELS["renogy-rover"]
    served = expected_unit_values("renogy-rover", 1, 1)
    values = rover.derive(SETTINGS, {r.name: served[r.name] for r in rover.registers if r.group == SETTINGS})
    store.insert_sample(SETTINGS, T0, True, "rover", {**dict.fromkeys(absent(rover, SETTINGS)), **values})
    publisher.publish_once()  # the pass that reads it (no broker here: nothing is sent)
    assert models() == {"kammthaar_van-lisa_epever": "Tracer (epever-tracer)",
                        "kammthaar_van-lisa_shed": "Tracer (epever-tracer)",
                        "kammthaar_van-lisa_rover": served["device_model"]}
    assert served["device_model"] == "RNG-CTRL-RVR40"
