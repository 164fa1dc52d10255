"""The real collector reading several devices: one silent unit never stalls its bus-mates, and is read again,
without a restart, once it answers (the simulator's SIGUSR1 wakes its silent units); its device_silent alert
fires and resolves for it alone."""

from __future__ import annotations

import signal
import time

from edge_store.alerts.events import list_events, read
from edge_store.errors import StoreError
from edge_store.registers import GROUPS
from edge_store.store import Store
from tests.fixtures_serial import collector_env, counters
from tests.samples import FROZEN, SEED, expected_unit_values
from tests.support import rows_in

INTERVAL_S = 0.2
WINDOW_S = 6.0


def devices_config(tmp_path, port: str) -> str:
    path = tmp_path / "devices.toml"
    path.write_text(f'[modbus]\nport = "{port}"\ninter_request_ms = 5\n\n'
                    '[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n\n'
                    '[[devices]]\nname = "side"\nmodel = "epever-tracer"\nunit = 2\n\n'
                    '[alerts.builtin.device_silent]\nthreshold = 2\n')  # fires at the third silent poll
    return str(path)


def device_errors(db, device: str) -> dict[str, int]:
    try:
        with Store(db, readonly=True) as store:
            return store.device_errors().get(device, {})
    except StoreError:  # the file or its tables are still being created
        return {}


def test_a_silent_unit_does_not_stall_its_bus_mate_and_is_read_again_when_it_answers(
        serial_pair, start_simulator, tmp_path, start_kammthaar):
    sim = start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer",
                          "--device", "unit=2,model=epever-tracer,silent")
    db = tmp_path / "k.db"
    env = collector_env(db, serial_pair.client, modbus_interval_s=str(INTERVAL_S), modbus_slow_interval_s="5")
    proc = start_kammthaar("-c", devices_config(tmp_path, serial_pair.client), "collect", env=env, name="collector")
    # side's breaker opens after 3 silent polls (3 attempts each).
    proc.wait_for(lambda: device_errors(db, "side").get("timeout", 0) >= 9, 60, "side never timed out")
    start = rows_in(db, "live_samples", "roof")
    time.sleep(WINDOW_S)
    stored = rows_in(db, "live_samples", "roof") - start
    # Nominal 30 in the window; with side asked every round (3 timeouts of 0.2 s) it would be at most 7.
    assert stored >= 0.5 * WINDOW_S / INTERVAL_S, (stored, proc.log()[-2000:])
    assert rows_in(db, "live_samples", "side") == 0 and device_errors(db, "roof") == {}
    assert counters(db)["modbus_errors.timeout"] == device_errors(db, "side")["timeout"]
    # side answers now: read again at its next probe (at most probe_max_s), without a restart.
    sim.send_signal(signal.SIGUSR1)
    proc.wait_for(lambda: rows_in(db, "live_samples", "side") >= 3, 90, "side was not read again", poll_s=0.2)
    assert rows_in(db, "device_statistics", "side") >= 1  # its slow groups too
    code, log = proc.stop(30), proc.log()
    assert code == 0, log[-3000:]
    assert "side answers again" in log and "side is silent" in log
    with Store(db, readonly=True) as store:
        silent = [(e["device"], e["state"]) for e in read(store.db, "events", list_events)[::-1]
                  if e["rule"] == "device_silent"]
        assert silent == [("side", "firing"), ("side", "resolved")], silent
        for unit, name in ((1, "roof"), (2, "side")):
            served = expected_unit_values("epever-tracer", int(SEED) + unit - 1, unit)
            rows = [r for r in store.rows("live") if r["device"] == name]
            assert rows and all(r["pv_power"] == served["pv_power"] and r["battery_voltage"] == served["battery_voltage"]
                                for r in rows), name


def test_collect_once_reads_every_group_of_every_device_and_fails_when_one_is_silent(
        serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer",
                    "--device", "unit=2,model=renogy-rover", "--device", "unit=3,model=epever-tracer,silent")
    db = tmp_path / "k.db"
    cfg = tmp_path / "three.toml"
    cfg.write_text(f'[modbus]\nport = "{serial_pair.client}"\ninter_request_ms = 5\n\n'
                   '[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n\n'
                   '[[devices]]\nname = "rover"\nmodel = "renogy-rover"\nunit = 2\n\n'
                   '[[devices]]\nname = "side"\nmodel = "epever-tracer"\nunit = 3\n')
    proc = start_kammthaar("-c", str(cfg), "collect", "--once", env=collector_env(db, serial_pair.client))
    code, log = proc.wait(90), proc.log()
    assert code == 1, log[-3000:]  # one device unread: a failure, the others stored all the same
    said = [line.split(": ")[0] + ": " + line.split(": ")[1][:10] for line in log.splitlines()
            if line.startswith(("roof ", "rover ", "side "))]
    assert said == [f"roof {g}: stored row" for g in GROUPS] + [f"rover {g}: stored row" for g in GROUPS if g != "clock"] \
        + [f"side {g}: read faile" for g in GROUPS], log[-3000:]  # a Rover has no clock
    with Store(db, readonly=True) as store:
        assert {g: sorted(r["device"] for r in store.rows(g)) for g in GROUPS} == {
            "live": ["roof", "rover"], "stats": ["roof", "rover"], "settings": ["roof", "rover"], "clock": ["roof"]}
        for unit, name, model in ((1, "roof", "epever-tracer"), (2, "rover", "renogy-rover")):
            served = expected_unit_values(model, int(SEED) + unit - 1, unit)
            (live,) = [r for r in store.rows("live") if r["device"] == name]
            assert (live["pv_power"], live["battery_voltage"]) == (served["pv_power"], served["battery_voltage"]), name
        assert set(store.device_errors()) == {"side"}
