"""The API per device: ?device= on the data paths, GET /devices, ?device=all site totals, /health and /metrics
per device; local and cloud sources alike. In-process apps (fixtures_app's AppClient) over a store holding
three devices, replicated by the real replicator into the session influxd."""

from __future__ import annotations

import pytest

from api.app import DeviceInfo, Settings, create_app
from api.sources import CloudSource, LocalSource, Sources
from api.users import Users
from edge_store import migrate
from edge_store.outbox import Outbox
from edge_store.registers import LIVE, STATS
from edge_store.rollups import RollupSettings
from edge_store.store import Store, now_ms
from replicator.influx_writer import V1Writer
from replicator.influxql import InfluxQLReader
from replicator.replicator import Replicator
from tests.fixtures_api import SECRET, SITE, add_user, get_ok
from tests.fixtures_app import AppClient
from tests.samples import LIVE_VALUES, STATS_VALUES, ZONE

INTERVAL_S = 10.0
STEP_MS = 10_000
SAMPLES = 30
PV_POWER = {"roof": 600.0, "side": 300.0, "rover": 120.0}  # attic is configured and never answered
DEVICES = tuple(DeviceInfo(name, "epever-tracer", unit, port, INTERVAL_S, 60.0) for name, unit, port in (
    ("roof", 1, "/dev/epever"), ("side", 2, "/dev/epever"), ("rover", 1, "/dev/ttyUSB1"), ("attic", 3, "/dev/epever")))


class Devices:
    def __init__(self, directory, influxd):
        self.now = now_ms()
        self.db = directory / "kammthaar.db"
        migrate.upgrade(self.db)
        with Store(self.db, rollups=RollupSettings(ZONE, 1.5 * INTERVAL_S)) as store:
            for k in reversed(range(SAMPLES)):
                for name, power in PV_POWER.items():
                    store.insert_sample(LIVE, self.now - 50 - k * STEP_MS, True, name,
                                        {**LIVE_VALUES, "pv_power": power})
            for name in PV_POWER:
                store.insert_sample(STATS, self.now - 100, True, name, STATS_VALUES)
            store.record_error("timeout", "input:0x3100+18", "no answer", device="attic")
            store.record_error("crc", "input:0x3100+18", "bad frame", device="side")
        add_user(self.db)
        self.database = influxd.create_database()
        self.influx_url = influxd.url
        replicator = Replicator(Outbox(self.db), V1Writer(influxd.url, database=self.database), site=SITE)
        try:
            assert replicator.drain().error is None
        finally:
            replicator.close()
        self.users = Users(self.db)
        self.users.connect()

    def client(self, source: str = "local", default: str = "roof") -> AppClient:
        settings = Settings(site=SITE, device=default, timezone=ZONE, jwt_secret=SECRET, interval_s=INTERVAL_S,
                            slow_interval_s=60.0, devices=DEVICES, store_path=str(self.db))
        cloud = CloudSource(lambda: InfluxQLReader(self.influx_url, database=self.database, timeout_s=5.0),
                            device=default, timezone_name=ZONE)
        sources = [LocalSource(str(self.db), site=SITE, device=default)] if source == "local" else [cloud]
        client = AppClient(create_app(settings, Sources(sources), self.users, clock_ms=lambda: self.now))
        client.token = client.login()
        return client


@pytest.fixture(scope="module")
def devices(tmp_path_factory, influxd):
    d = Devices(tmp_path_factory.mktemp("devices"), influxd)
    yield d
    d.users.close()


@pytest.mark.parametrize("source", ["local", "cloud"])
def test_every_data_path_answers_for_the_device_asked(devices, source):
    client = devices.client(source)
    for name, power in PV_POWER.items():
        assert get_ok(client, f"/solarData/last?device={name}", source)["power"] == power
        assert get_ok(client, f"/solarData/realtime?device={name}", source)["power"] == power
        series = get_ok(client, f"/solarData/last/24h/power?device={name}&raw=true", source)
        assert len(series) == SAMPLES and {p["value"] for p in series} == {power}
    assert get_ok(client, "/solarData/last", source)["power"] == PV_POWER["roof"]  # the default device
    assert get_ok(devices.client(source, default="side"), "/solarData/last", source)["power"] == PV_POWER["side"]


def test_an_unknown_device_is_a_404_whatever_the_freshness(devices):
    client = devices.client()
    for path in ("/solarData/realtime", "/battery/last", "/battery/last/24h/voltage", "/statistics/daily",
                 "/statistics/energy/7days", "/serveur/status"):
        resp = client.get(f"{path}?device=nope", token=client.token)
        assert resp.status == 404, (path, resp.status)
        assert resp.json()["error"] == "not_found" and "'nope'" in resp.json()["message"]
        assert "roof, side, rover, attic" in resp.json()["message"]
    assert client.get("/battery/last?device=all", token=client.token).status == 404  # all: statistics only
    # A configured device that never answered: no data yet (404), its realtime too.
    assert client.get("/battery/realtime?device=attic", token=client.token).status == 404


def test_devices_lists_every_device_with_freshness_and_errors(devices):
    listed = get_ok(devices.client(), "/devices", "local")
    assert [(d["name"], d["unit"], d["port"], d["model"]) for d in listed] == [
        (d.name, d.unit, d.port, "epever-tracer") for d in DEVICES]
    by_name = {d["name"]: d for d in listed}
    assert [by_name[n]["fresh"] for n in ("roof", "side", "rover", "attic")] == [True, True, True, False]
    assert by_name["attic"]["newest_sample"] is None and by_name["attic"]["errors"] == {"timeout": 1}
    assert by_name["side"]["errors"] == {"crc": 1} and by_name["roof"]["errors"] == {}
    assert all(d["reported_model"] is None for d in listed)  # EPEVER reports no model string
    cloud = get_ok(devices.client("cloud"), "/devices", "cloud")
    assert [d["newest_sample"] for d in cloud] == [d["newest_sample"] for d in listed]


@pytest.mark.parametrize("source", ["local", "cloud"])
def test_device_all_sums_energy_and_charge_across_devices(devices, source):
    client = devices.client(source)
    per = {n: get_ok(client, f"/statistics/daily?device={n}", source) for n in PV_POWER}
    total = get_ok(client, "/statistics/daily?device=all", source)
    assert [r["date"] for r in total] == sorted({r["date"] for rows in per.values() for r in rows})
    for day in total:
        rows = [r for rows in per.values() for r in rows if r["date"] == day["date"]]
        assert day["energy_generated_kwh"] == pytest.approx(sum(r["energy_generated_kwh"] for r in rows), abs=2e-3)
        assert day["battery_discharge_ah"] == pytest.approx(sum(r["battery_discharge_ah"] for r in rows), abs=2e-3)
        assert day["samples"] == sum(r["samples"] for r in rows)
        assert day["pv_voltage_max"] == max(r["pv_voltage_max"] for r in rows)
    assert sum(d["energy_generated_kwh"] for d in total) > sum(d["energy_generated_kwh"] for d in per["roof"])
    month = get_ok(client, "/statistics/monthly?device=all", source)
    assert sum(m["samples"] for m in month) == sum(d["samples"] for d in total)
    seven = get_ok(client, "/statistics/energy/7days?device=all", source)
    one = {n: get_ok(client, f"/statistics/energy/7days?device={n}", source) for n in PV_POWER}
    for day, values in seven.items():
        known = [one[n][day]["consumed_today"] for n in PV_POWER if one[n][day]["consumed_today"] is not None]
        assert values["consumed_today"] == (pytest.approx(sum(known), abs=2e-3) if known else None)


def test_health_and_metrics_per_device(devices):
    client = devices.client()
    health = client.get("/health").json()
    assert [(d["name"], d["fresh"]) for d in health["devices"]] == [
        ("roof", True), ("side", True), ("rover", True), ("attic", False)]
    assert health["status"] == "degraded"  # attic gives nothing
    assert health["devices"][3]["errors"] == {"timeout": 1}
    metrics = client.get("/metrics", token=client.token).body.decode()
    assert 'kammthaar_device_fresh{device="attic"} 0.0' in metrics
    assert 'kammthaar_device_fresh{device="roof"} 1.0' in metrics
    assert 'kammthaar_device_modbus_errors_total{device="side",kind="crc"} 1.0' in metrics


def test_openapi_describes_the_device_parameter_and_devices(devices):
    spec = devices.client().get("/openapi.json").json()
    params = {path: {p["name"]: p for p in op["get"].get("parameters", [])} for path, op in spec["paths"].items()
              if "get" in op}
    assert "device" in params["/battery/last"] and "device" in params["/solarData/last/24h/power"]
    assert "all" in params["/statistics/daily"]["device"]["description"]
    assert "all" not in params["/battery/last"]["device"]["description"]
    items = spec["paths"]["/devices"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert set(items["required"]) == {"name", "model", "reported_model", "unit", "port", "newest_sample", "fresh",
                                      "errors"}


def test_a_site_total_missing_a_devices_period_says_it_covers_no_full_time():
    from api.site_totals import sum_periods
    from edge_store.catalogue.rollup_figures import FIGURES

    def row(date, kwh, covered):
        return {"date": date, **{f.name: None for f in FIGURES}, "energy_generated_kwh": kwh, "covered_s": covered}

    roof = [row("2026-12-01", 1.0, 86_000.0), row("2026-12-02", 2.0, 86_400.0)]
    side = [row("2026-12-02", 0.5, 80_000.0)]  # added on the 2nd
    first, second = sum_periods([roof, side], "date")
    assert (first["energy_generated_kwh"], first["covered_s"]) == (1.0, 0.0)  # the side had no row: partial
    assert (second["energy_generated_kwh"], second["covered_s"]) == (2.5, 80_000.0)
