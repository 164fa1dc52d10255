"""Alerts end to end with the real collector and the simulator (`--set`): a low battery and a fault bit
fire once, a restart during a firing alert neither fires nor notifies again, a silent device fires."""

import sqlite3

from tests.fixtures_serial import collector_env
from tests.support import KAMMTHAAR, free_port, wait_until

CONFIG = """
[alerts.builtin.battery_voltage_low]
for_s = 0.3
[alerts.builtin.device_silent]
threshold = 3
[alerts.builtin.battery_temperature_low]
enabled = false
[alerts.builtin.controller_temperature_low]
enabled = false
"""


def events(db):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT rule, state FROM alert_events ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not created or not migrated yet
        return []


def test_low_battery_and_fault_fire_once_survive_a_restart_and_a_silent_device_fires(tmp_path, start_simulator,
                                                                                     start_kammthaar):
    port = free_port()
    # 11.0 V and the charging fault bit (1) set with the controller running (bit 0).
    simulator = start_simulator("--tcp", f"127.0.0.1:{port}", "--speed", "0", "--set", "battery_voltage=11.0",
                                "--set", "charging_equipment_status=3")
    db = tmp_path / "k.db"
    config = tmp_path / "kammthaar.toml"
    config.write_text(CONFIG)
    env = collector_env(db, f"tcp://127.0.0.1:{port}")
    wanted = [("battery_voltage_low", "firing"), ("controller_fault.charging.fault", "firing")]
    collector = start_kammthaar("-c", str(config), "collect", env=env)
    wait_until(lambda: sorted(events(db)) == wanted, 60, "both alerts firing")
    assert collector.stop() == 0
    collector = start_kammthaar("-c", str(config), "collect", env=env, name="collect-again")
    n = sqlite3.connect(db).execute("SELECT count(*) FROM live_samples").fetchone()[0]
    wait_until(lambda: sqlite3.connect(db).execute("SELECT count(*) FROM live_samples").fetchone()[0] > n + 10,
               60, "ten more samples after the restart")
    assert sorted(events(db)) == wanted  # no second event, so no second notification
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM v_alerts WHERE active = 1").fetchone()[0] == 2
    simulator.stop()
    wait_until(lambda: ("device_silent", "firing") in events(db), 60, "the silent device's alert")
    assert collector.stop() == 0
