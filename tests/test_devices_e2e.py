"""End to end: the real collector over two socat pty pairs against the simulator, two EPEVER units on one bus
and a Renogy Rover on a second bus at 9600 baud: every stored row per device equals what that unit served; the
replicator tags each point with its device's name, and the API answers per device from the store and the cloud."""

from __future__ import annotations

import pytest

from api.app import Settings, create_app
from api.gunicorn_server import build_sources
from api.users import Users
from edge_store import config
from edge_store.catalogue import MODELS, absent
from edge_store.store import Store
from replicator.commands import build_replicator
from replicator.influxql import InfluxQLReader
from tests.fixtures_api import SECRET, SITE, add_user, get_ok
from tests.fixtures_app import AppClient
from tests.fixtures_serial import collector_env
from tests.samples import FROZEN, SEED, ZONE, expected_unit_values
from tests.support import rows_in

DEVICES = (("roof", "epever-tracer", 1), ("side", "epever-tracer", 2), ("rover", "renogy-rover", 1))


def served(model: str, unit: int, simulated_unit: int) -> dict:
    """What a unit of the frozen simulator serves: its seed is --seed + unit - 1 on its own simulator."""
    return expected_unit_values(model, int(SEED) + simulated_unit - 1, simulated_unit)


def test_two_buses_three_devices_every_row_is_what_its_unit_served(
        serial_pair, second_serial_pair, start_simulator, start_kammthaar, tmp_path, influxd):
    start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer",
                    "--device", "unit=2,model=epever-tracer")
    start_simulator("--port", second_serial_pair.device, *FROZEN, "--baudrate", "9600",
                    "--device", "unit=1,model=renogy-rover")
    db = tmp_path / "k.db"
    cfg_path = tmp_path / "devices.toml"
    cfg_path.write_text(f'[modbus]\nport = "{serial_pair.client}"\ninter_request_ms = 5\n'
                        f'[site]\nid = "{SITE}"\n'
                        '[[devices]]\nname = "roof"\nmodel = "epever-tracer"\nunit = 1\n'
                        '[[devices]]\nname = "side"\nmodel = "epever-tracer"\nunit = 2\n'
                        f'[[devices]]\nname = "rover"\nmodel = "renogy-rover"\nunit = 1\nport = "{second_serial_pair.client}"\n'
                        'baudrate = 9600\n')
    env = collector_env(db, serial_pair.client, modbus_interval_s="0.2", modbus_slow_interval_s="1")
    proc = start_kammthaar("-c", str(cfg_path), "collect", env=env, name="collector")
    for name, _, _ in DEVICES:
        proc.wait_for(lambda n=name: rows_in(db, "live_samples", n) >= 5 and rows_in(db, "device_settings", n) >= 1,
                      60, f"{name}: too few rows", poll_s=0.2)
    assert proc.stop(30) == 0, proc.log()[-3000:]
    want = {"roof": served("epever-tracer", 1, 1), "side": served("epever-tracer", 2, 2),
            "rover": served("renogy-rover", 1, 1)}
    assert want["roof"]["pv_power"] != want["side"]["pv_power"]  # two units, two answers
    checked = 0
    with Store(db, readonly=True) as store:
        for name, model, _ in DEVICES:
            catalogue = MODELS[model]
            for group in catalogue.groups():
                expected = catalogue.derive(group, {r.name: want[name][r.name] for r in catalogue.registers
                                                    if r.group == group})
                rows = [r for r in store.rows(group) if r["device"] == name]
                assert rows or group != "live", (name, group)
                for row in rows:
                    assert {k: row[k] for k in expected} == expected, (name, group, row["id"])
                    assert all(row[c] is None for c in absent(catalogue, group)), (name, group)
                    checked += 1
            if "clock" not in catalogue.groups():
                assert not [r for r in store.rows("clock") if r["device"] == name]
    assert checked >= 15

    # The replicator tags each point with its device's name, each device's model's measurements.
    database = influxd.create_database()
    environ = {"KAMMTHAAR_STORE_PATH": str(db), "KAMMTHAAR_API_JWT_SECRET": SECRET, "KAMMTHAAR_CLOUD_URL": influxd.url,
               "KAMMTHAAR_CLOUD_API": "v1", "KAMMTHAAR_CLOUD_DATABASE": database}
    cfg = config.load(str(cfg_path), environ=environ)
    replicator = build_replicator(cfg)
    try:
        assert replicator.drain().error is None
    finally:
        replicator.close()
    reader = InfluxQLReader(influxd.url, database=database, timeout_s=5.0)
    tags = reader.query('SHOW TAG VALUES WITH KEY = "device"')
    assert sorted({v[1] for s in tags for v in s["values"]}) == ["roof", "rover", "side"]
    add_user(db)
    users = Users(db)
    users.connect()
    try:
        settings = Settings.from_config(cfg)

        def app(source: str) -> AppClient:
            """The app with `source` alone, its sources built as `kammthaar serve` builds them."""
            one = config.load(str(cfg_path), environ={**environ, "KAMMTHAAR_API_SOURCES": source,
                                                      "KAMMTHAAR_SITE_TIMEZONE": ZONE})
            return AppClient(create_app(settings, build_sources(one), users))

        client, cloud = app("local"), app("cloud")
        client.token, cloud.token = client.login(), cloud.login()
        for name, model, _ in DEVICES:
            solar = get_ok(client, f"/solarData/last?device={name}", "local")
            assert solar["power"] == pytest.approx(want[name]["pv_power"]), name
            battery = get_ok(client, f"/battery/last?device={name}", "local")
            assert battery["voltage"] == pytest.approx(want[name]["battery_voltage"]), name
            # The cloud answers per device too, with the same object.
            assert get_ok(cloud, f"/solarData/last?device={name}", "cloud") == solar, name
        assert get_ok(client, "/solarData/last", "local")["power"] == pytest.approx(want["roof"]["pv_power"])
        listed = {d["name"]: d for d in get_ok(client, "/devices", "local")}
        assert listed["rover"]["reported_model"] == want["rover"]["device_model"] == "RNG-CTRL-RVR40"
        assert listed["rover"]["model"] == "renogy-rover" and listed["roof"]["reported_model"] is None
        assert [listed[n]["errors"] for n in ("roof", "side", "rover")] == [{}, {}, {}]
        # /health and /metrics per device, the Rover as its own model.
        health = client.get("/health").json()
        assert [(d["name"], d["model"], d["errors"]) for d in health["devices"]] == [
            ("roof", "epever-tracer", {}), ("side", "epever-tracer", {}), ("rover", "renogy-rover", {})]
        assert all(d["newest_ms"] for d in health["devices"]), health["devices"]
        metrics = client.get("/metrics", token=client.token).body.decode()
        for name, _, _ in DEVICES:
            assert f'kammthaar_device_sample_age_seconds{{device="{name}"}} ' in metrics, name
    finally:
        users.close()
