"""Several devices in one store: errors counted per device, the v_devices view, migrations with their data."""

import sqlite3
import subprocess

from edge_store import config, migrate
from edge_store.catalogue import MODELS, absent
from edge_store.registers import LIVE, SETTINGS, STATS
from edge_store.rollups import RollupSettings
from edge_store.status_report import report
from edge_store.store import Store
from tests.samples import LIVE_VALUES, STATS_VALUES, expected_unit_values
from tests.support import clean_env, kammthaar

DEVICES = ("roof", "side", "rover")
T0 = 1_780_000_000_000


def fill(store: Store) -> None:
    for n, device in enumerate(DEVICES):
        for i in range(3 + n):
            store.insert_sample(LIVE, T0 + i * 5000, True, device, {**LIVE_VALUES, "pv_power": 10.0 * (n + 1)})
        store.insert_sample(STATS, T0, True, device, STATS_VALUES)


def per_device(path, table: str) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute(f"SELECT device, count(*) FROM {table} GROUP BY device"))


def test_errors_are_counted_per_device_beside_the_site_totals(store):
    store.record_error("timeout", "input:0x3100+18", "no answer", device="side")
    store.record_error("timeout", "input:0x3100+18", "no answer", device="side")
    store.record_error("crc", "input:0x3100+18", "bad crc", device="roof")
    assert store.device_errors() == {"side": {"timeout": 2}, "roof": {"crc": 1}}
    assert store.counters() == {"modbus_errors.timeout": 2, "modbus_errors.crc": 1}


def test_v_devices_lists_each_device_with_its_newest_sample_and_errors(db_path):
    with Store(db_path, rollups=RollupSettings("UTC", 15.0)) as store:
        fill(store)
        store.record_error("timeout", "input:0x3100+18", "no answer", device="side")
        store.record_error("port", "", "gone", device="attic")  # never answered: listed, no sample
    out = subprocess.run(["sqlite3", str(db_path), "SELECT device, errors, errors_by_kind, "
                          "newest_local_time IS NOT NULL FROM v_devices"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["attic|1|port=1|0", "roof|0||1", "rover|0||1", "side|1|timeout=1|1"]


def test_migrations_up_down_up_keep_the_samples_of_every_device(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path)
    with Store(path, rollups=RollupSettings("UTC", 15.0)) as store:
        fill(store)
        store.record_error("timeout", "b", "no answer", device="rover")
    before = {t: per_device(path, t) for t in ("live_samples", "device_statistics", "rollup_daily")}
    assert before["live_samples"] == {"roof": 3, "side": 4, "rover": 5}
    migrate.downgrade(path, "0007")
    assert {t: per_device(path, t) for t in before} == before
    migrate.upgrade(path)
    assert migrate.current(path) == migrate.HEAD
    assert {t: per_device(path, t) for t in before} == before
    with Store(path) as store:
        assert store.device_errors() == {}  # the per-device counts went down with their table
        store.record_error("timeout", "b", "no answer", device="rover")
        assert store.device_errors() == {"rover": {"timeout": 1}}
        assert {d: store.latest(LIVE, d)["pv_power"] for d in DEVICES} == {"roof": 10.0, "side": 20.0, "rover": 30.0}


def test_status_reports_each_device(tmp_path, db_path):
    with Store(db_path, rollups=RollupSettings("UTC", 15.0)) as store:
        fill(store)
        store.record_error("timeout", "input:0x3100+18", "no answer", device="side")
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'[store]\npath = "{db_path}"\n[site]\ntimezone = "UTC"\n[modbus]\nport = "/dev/ttyS9"\n'
                   + "".join(f'[[devices]]\nname = "{d}"\nmodel = "epever-tracer"\nunit = {u}\n'
                             for u, d in enumerate(("roof", "side", "attic"), 1)))
    out = kammthaar("-c", str(cfg), "status", env=clean_env(), timeout_s=60)
    assert out.returncode == 0, out.stderr
    sections = out.stdout.split("\ndevice ")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == ["roof", "side", "attic"]
    assert "(epever-tracer, unit 2 on /dev/ttyS9): errors timeout=1" in sections[1]
    assert "errors none" in sections[0] and "live: " in sections[0] and "pv " in sections[0]
    assert "live: no sample yet" in sections[2]
    assert "side timeout input:0x3100+18: no answer" in out.stdout  # recent errors name their device


def test_status_names_the_model_a_device_reports(tmp_path, db_path):
    rover = MODELS["renogy-rover"]
    served = expected_unit_values("renogy-rover", 1, 1)
    values = rover.derive(SETTINGS, {r.name: served[r.name] for r in rover.registers if r.group == SETTINGS})
    cfg_path = tmp_path / "k.toml"
    cfg_path.write_text(f'[store]\npath = "{db_path}"\n[site]\ntimezone = "UTC"\n[modbus]\nport = "/dev/ttyS9"\n'
                        '[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n'
                        '[[devices]]\nname = "rover"\nmodel = "renogy-rover"\nunit = 2\n')
    with Store(db_path) as store:
        store.insert_sample(SETTINGS, T0, True, "rover", {**dict.fromkeys(absent(rover, SETTINGS)), **values})
        text = report(store, config.load(str(cfg_path), environ={}))
    assert "device rover (renogy-rover RNG-CTRL-RVR40, unit 2 on /dev/ttyS9): errors none" in text
    assert "device roof (epever-tracer, unit 1 on /dev/ttyS9): errors none" in text
