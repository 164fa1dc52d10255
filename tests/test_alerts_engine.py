"""The alert state machine on a real store: samples in, events out, in the sample's transaction."""

import sqlite3

import pytest

from edge_store.alerts import Engine, load_alerts
from edge_store.alerts.events import active_counts, list_events, read, unsent
from edge_store.errors import ConfigError
from edge_store.registers import LIVE
from edge_store.store import Store
from tests.samples import LIVE_VALUES

QUIET = {name: {"enabled": False} for name in (
    "battery_voltage_high", "state_of_charge_low", "battery_temperature_high", "battery_temperature_low",
    "controller_temperature_high", "controller_temperature_low", "device_silent", "replication_backlog",
    "disk_free_low", "controller_fault")}


def engine(**builtin):
    return Engine(load_alerts({"builtin": {**QUIET, **builtin}}))


def feed(store, volts, start_ms=1_000_000, step_ms=5000, **extra):
    for i, v in enumerate(volts):
        store.insert_sample(LIVE, start_ms + i * step_ms, True, "epever", {**LIVE_VALUES, "battery_voltage": v,
                                                                          **extra})


def events(store):
    return [(e["rule"], e["state"], e["value"]) for e in read(store.db, "events", list_events)][::-1]


def test_low_battery_fires_once_after_for_s_and_clears_at_clear_at(db_path):
    store = Store(db_path, alerts=engine())  # battery_voltage_low: below 11.8 for 60 s, clears at 12.2
    feed(store, [11.5] * 12)  # 55 s below: pending
    assert events(store) == []
    feed(store, [11.5] * 20, start_ms=1_060_000)  # 60 s: fires once, not at every sample
    assert events(store) == [("battery_voltage_low", "firing", 11.5)]
    feed(store, [12.0, 11.7, 12.1, 11.6] * 5, start_ms=1_200_000)  # flaps inside the hysteresis
    assert events(store) == [("battery_voltage_low", "firing", 11.5)]
    feed(store, [12.2], start_ms=1_400_000)
    assert events(store) == [("battery_voltage_low", "firing", 11.5), ("battery_voltage_low", "resolved", 12.2)]
    assert [n["state"] for n in read(store.db, "outbox", unsent)] == ["firing", "resolved"]
    store.close()


def test_a_dip_shorter_than_for_s_does_not_fire(store):
    store.alerts = engine()
    feed(store, [11.5] * 6 + [12.5] + [11.5] * 6)
    assert events(store) == []


def test_a_fault_bit_fires(db_path):
    store = Store(db_path, alerts=engine(controller_fault={}))
    feed(store, [12.8], charging_equipment_status=9)  # running, no fault
    feed(store, [12.8], start_ms=2_000_000, charging_equipment_status=9 | 2)  # bit 1: fault
    assert events(store) == [("controller_fault.charging.fault", "firing", 1.0)]
    store.close()


def test_a_restart_during_a_firing_alert_does_not_fire_again(db_path):
    store = Store(db_path, alerts=engine())
    feed(store, [11.0] * 14)
    store.close()
    again = Store(db_path, alerts=engine())  # a new process: the state comes back from alert_state
    feed(again, [11.0] * 30, start_ms=5_000_000)
    assert events(again) == [("battery_voltage_low", "firing", 11.0)]
    assert [e["state"] for e in read(again.db, "active", list_events, firing_only=True)] == ["firing"]
    assert read(again.db, "counts", active_counts) == [("battery_voltage_low", "critical", 1)]
    again.close()


def test_a_rolled_back_sample_leaves_no_event(db_path):
    store = Store(db_path, alerts=engine(battery_voltage_low={"for_s": 0}))
    with pytest.raises(Exception):
        # state_of_charge is NOT NULL: the transaction rolls back, the engine's state is read again
        store.insert_sample(LIVE, 1000, True, "epever", {**LIVE_VALUES, "battery_voltage": 11.0,
                                                         "state_of_charge": None})
    feed(store, [11.0])
    assert events(store) == [("battery_voltage_low", "firing", 11.0)]
    store.close()


def test_measured_figures_fire_and_resolve(db_path):
    store = Store(db_path, alerts=engine(device_silent={}))  # above 5 silent polls; clears at 0
    for n in range(1, 8):
        store.alerts.observe(store.db, "collector.silent_polls", "epever", n, 1000 * n)
    store.alerts.observe(store.db, "collector.silent_polls", "epever", 0, 9000)
    assert events(store) == [("device_silent", "firing", 6.0), ("device_silent", "resolved", 0.0)]
    store.close()


def test_custom_rules_with_device_and_view(db_path):
    rules = load_alerts({"builtin": QUIET | {"battery_voltage_low": {"enabled": False}}, "rules": [
        {"name": "pv_weak", "field": "solar.power", "below": 60, "clear_at": 80, "severity": "info"},
        {"name": "other_only", "field": "solar.power", "below": 60, "device": "other"}]})
    store = Store(db_path, alerts=Engine(rules))
    feed(store, [13.0])
    assert events(store) == [("pv_weak", "firing", 56.42)]
    store.close()
    rows = sqlite3.connect(db_path).execute("SELECT rule, severity, state, active, at_utc FROM v_alerts").fetchall()
    assert rows == [("pv_weak", "info", "firing", 1, "1970-01-01T00:16:40.000Z")]


@pytest.mark.parametrize("raw, says", [
    ({"rules": [{"name": "r1", "field": "battery.nope", "below": 1}]}, "'r1': field = 'battery.nope'"),
    ({"rules": [{"name": "r2", "field": "battery.voltage"}]}, "'r2': exactly one of below and above"),
    ({"rules": [{"name": "r3", "field": "battery.voltage", "below": 11, "clear_at": 10}]}, "'r3': clear_at"),
    ({"rules": [{"name": "r4", "field": "battery.voltage", "above": 15, "severity": "loud"}]}, "'r4': severity"),
    ({"rules": [{"name": "r5", "field": "battery.voltage", "above": 15, "for": 3}]}, "'r5': unknown key for"),
    ({"builtin": {"battery_voltage_low": {"threshold": "low"}}}, "[alerts.builtin.battery_voltage_low] threshold"),
    ({"builtin": {"nope": {}}}, "unknown rule [alerts.builtin.nope]"),
])
def test_a_wrong_rule_names_the_rule_and_the_key(raw, says):
    with pytest.raises(ConfigError) as err:
        load_alerts(raw)
    assert says in str(err.value)


def test_status_lists_the_active_alerts(db_path):
    from edge_store import config
    from edge_store.status_report import report

    store = Store(db_path, alerts=engine(battery_voltage_low={"for_s": 0}))
    feed(store, [11.0])
    text = report(store, config.load(None, {"KAMMTHAAR_STORE_PATH": str(db_path), "KAMMTHAAR_SITE_TIMEZONE": "UTC"}))
    store.close()
    assert "alerts: 1 active" in text and "!! critical battery_voltage_low on epever since 1970-01-01" in text


def test_a_wrong_rule_stops_the_command_with_exit_2(tmp_path):
    from tests.support import clean_env, kammthaar

    config = tmp_path / "k.toml"
    config.write_text('[[alerts.rules]]\nname = "pv_weak"\nfield = "solar.power"\nbelow = 20\nclear_at = 10\n')
    done = kammthaar("-c", str(config), "config", "show", env=clean_env())
    assert done.returncode == 2 and "[[alerts.rules]] 'pv_weak': clear_at = 10 is not allowed" in done.stderr
