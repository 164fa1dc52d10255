"""The real collector reading several devices: one silent unit never stalls its bus-mates, and is read again,
without a restart, once it answers."""

from __future__ import annotations

import time

from edge_store.errors import StoreError
from edge_store.store import Store
from tests.fixtures_serial import collector_env, counters
from tests.samples import FROZEN, expected_values
from tests.support import rows_in

INTERVAL_S = 0.2
WINDOW_S = 6.0


def devices_config(tmp_path, port: str) -> str:
    path = tmp_path / "devices.toml"
    path.write_text(f'[modbus]\nport = "{port}"\ninter_request_ms = 5\n\n'
                    '[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n\n'
                    '[[devices]]\nname = "ghost"\nmodel = "epever-tracer"\nunit = 7\n')
    return str(path)


def device_errors(db, device: str) -> dict[str, int]:
    try:
        with Store(db, readonly=True) as store:
            return store.device_errors().get(device, {})
    except StoreError:  # the file or its tables are still being created
        return {}


def test_a_silent_unit_does_not_stall_its_bus_mates_and_is_read_again_when_it_answers(
        serial_pair, start_simulator, tmp_path, start_kammthaar):
    sim = start_simulator("--port", serial_pair.device, *FROZEN, "--unit", "1")  # unit 7 gets no answer
    db = tmp_path / "k.db"
    env = collector_env(db, serial_pair.client, modbus_interval_s=str(INTERVAL_S), modbus_slow_interval_s="5")
    proc = start_kammthaar("-c", devices_config(tmp_path, serial_pair.client), "collect", env=env, name="collector")
    # The ghost's breaker opens after 3 silent polls (3 attempts each).
    proc.wait_for(lambda: device_errors(db, "ghost").get("timeout", 0) >= 9, 60, "the ghost never timed out")
    start = rows_in(db, "live_samples", "roof")
    time.sleep(WINDOW_S)
    stored = rows_in(db, "live_samples", "roof") - start
    # Nominal 30 in the window; with the ghost asked every round (3 timeouts of 0.2 s) it would be at most 7.
    assert stored >= 0.5 * WINDOW_S / INTERVAL_S, (stored, proc.log()[-2000:])
    assert rows_in(db, "live_samples", "ghost") == 0
    assert counters(db)["modbus_errors.timeout"] == sum(device_errors(db, d).get("timeout", 0) for d in ("roof", "ghost"))
    # The ghost answers (the simulator now serves unit 7 and roof is silent): read again, no restart.
    sim.stop(10)
    start_simulator("--port", serial_pair.device, *FROZEN, "--unit", "7")
    proc.wait_for(lambda: rows_in(db, "live_samples", "ghost") >= 3, 90, "the ghost was not read again", poll_s=0.2)
    assert rows_in(db, "device_statistics", "ghost") >= 1  # its slow groups too
    code, log = proc.stop(30), proc.log()
    assert code == 0, log[-3000:]
    assert "ghost answers again" in log and "ghost is silent" in log
    with Store(db, readonly=True) as store:
        served = expected_values()
        for row in store.rows("live"):
            assert row["pv_voltage"] == served["pv_voltage"] and row["device"] in ("roof", "ghost")
