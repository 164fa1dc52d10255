"""Alerts on several devices (issues 12 and 13 merged): the rules bound per device model, evaluated on every
sample of a poll round (held in the commit window or not) and on each device's silent polls, in the round's
transaction (Store.write_round)."""

import pytest

from edge_store import config
from edge_store.alerts import Engine, load_alerts
from edge_store.alerts.events import list_events, read
from edge_store.catalogue import RENOGY_ROVER
from edge_store.errors import ConfigError
from edge_store.registers import LIVE
from edge_store.store import Store
from tests.samples import T0, live

OFF = {name: {"enabled": False} for name in (
    "battery_voltage_high", "state_of_charge_low", "battery_temperature_high", "battery_temperature_low",
    "controller_temperature_high", "controller_temperature_low", "replication_backlog", "disk_free_low")}
MODELS = {"roof": "epever-tracer", "shed": "renogy-rover"}
DEVICES = ('[modbus]\nport = "tcp://127.0.0.1:1502"\n\n[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n\n'
           '[[devices]]\nname = "shed"\nmodel = "renogy-rover"\nunit = 2\n\n')


def engine(**builtin) -> Engine:
    return Engine(load_alerts({"builtin": {**OFF, **builtin}}), MODELS)


def epever(i: int, **values) -> tuple[str, dict]:
    return LIVE, {"ts_ms": T0 + i * 5000, "ntp_synced": True, "device": "roof", **live(i), **values}


def rover(i: int, **values) -> tuple[str, dict]:
    row = {c.name: 0 for c in RENOGY_ROVER.columns(LIVE)}
    row.update(battery_voltage=12.8, state_of_charge=80, controller_temperature=25, battery_temperature=20)
    return LIVE, {**row, "ts_ms": T0 + i * 5000, "ntp_synced": True, "device": "shed", **values}


def events(store) -> list[tuple]:
    return [(e["rule"], e["device"], e["state"], e["ts_ms"]) for e in read(store.db, "events", list_events)][::-1]


def test_each_device_is_watched_with_its_own_models_fields(db_path):
    store = Store(db_path, alerts=engine(battery_voltage_low={"for_s": 0}, device_silent={"enabled": False}))
    pv_reversed = 1 << next(r.shift for r in store.alerts.config.for_model("renogy-rover")
                            if r.name == "controller_fault.faults.pv_reversed")
    store.write_round([epever(0, battery_voltage=11.0, charging_equipment_status=1 | 2),
                       rover(0, battery_voltage=11.2, fault_bits=pv_reversed)])
    assert sorted(events(store)) == [
        ("battery_voltage_low", "roof", "firing", T0), ("battery_voltage_low", "shed", "firing", T0),
        ("controller_fault.charging.fault", "roof", "firing", T0),  # an EPEVER status word the Rover lacks
        ("controller_fault.faults.pv_reversed", "shed", "firing", T0)]  # the Rover's fault word
    names = {r.name for r in store.alerts.config.for_model("renogy-rover")}
    assert "controller_fault.charging.fault" not in names and "battery_voltage_low" in names
    store.close()


def test_every_sample_held_in_the_window_is_evaluated_at_its_own_time(db_path):
    store = Store(db_path, alerts=engine(device_silent={"enabled": False}))  # below 11.8 V for 60 s
    # A dip shorter than for_s, inside one window: nothing.
    store.write_round([epever(i, battery_voltage=11.5 if i < 6 else 12.5) for i in range(7)])
    assert events(store) == []
    # Thirteen samples 5 s apart below the threshold, committed as two windows: fires once, at the sample
    # 60 s after the first, not at the commit.
    store.write_round([epever(i, battery_voltage=11.5) for i in range(10, 17)])
    store.write_round([epever(i, battery_voltage=11.5) for i in range(17, 30)])
    assert events(store) == [("battery_voltage_low", "roof", "firing", T0 + 22 * 5000)]
    store.close()


def test_each_devices_silent_polls_fire_for_that_device_only(db_path):
    store = Store(db_path, alerts=engine(battery_voltage_low={"enabled": False}))  # device_silent: above 5
    for n in range(1, 8):  # shed silent, roof answering, as their breakers count them
        store.write_round([epever(n)], [("timeout", "live", "no answer", "shed", T0 + n * 5000)],
                          [("collector.silent_polls", "shed", T0 + n * 5000, n),
                           ("collector.silent_polls", "roof", T0 + n * 5000, 0)])
    store.write_round([rover(9)], [], [("collector.silent_polls", "shed", T0 + 9 * 5000, 0)])
    assert events(store) == [("device_silent", "shed", "firing", T0 + 6 * 5000),
                             ("device_silent", "shed", "resolved", T0 + 9 * 5000)]
    store.close()


def load(tmp_path, text: str):
    path = tmp_path / "k.toml"
    path.write_text(DEVICES + text)
    return config.load(str(path), {})


def test_a_custom_rule_on_a_device_whose_model_lacks_its_field_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, '[[alerts.rules]]\nname = "chg"\nfield = "charging.fault"\nabove = 0.5\ndevice = "shed"\n')
    assert "[[alerts.rules]] 'chg': device = 'shed' is a renogy-rover, which has no field 'charging.fault'" \
        in str(err.value)
    with pytest.raises(ConfigError, match="'chg': device = 'attic' is not allowed: expected one of the devices: "
                                          "roof, shed"):
        load(tmp_path, '[[alerts.rules]]\nname = "chg"\nfield = "charging.fault"\nabove = 0.5\ndevice = "attic"\n')
    # Without a device, the same rule watches the devices that have the field (roof) and not the others.
    cfg = load(tmp_path, '[[alerts.rules]]\nname = "chg"\nfield = "charging.fault"\nabove = 0.5\n')
    assert "chg" in {r.name for r in cfg.alerts.for_model("epever-tracer")}
    assert "chg" not in {r.name for r in cfg.alerts.for_model("renogy-rover")}
