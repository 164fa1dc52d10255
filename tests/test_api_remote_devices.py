"""Another site's devices on a cloud server (issue 15): they come from InfluxDB, not from the server's own
[[devices]]. The remote site `cabin` has a Renogy Rover `rover-1` (its heartbeat says its model) and an EPEVER
`shed` (no heartbeat), stored through the real Store, replicated by the real Replicator and its real Heartbeat
into the session influxd; the in-process app is configured with one EPEVER `epever` at its own site `home`."""

from __future__ import annotations

import pytest

from api.app import Settings, create_app
from api.families import family
from api.remote_devices import RemoteDevices, infer_model
from api.sources import CloudSource, LocalSource, Sources
from api.users import Users
from edge_store import migrate
from edge_store.catalogue import MODELS, RENOGY_ROVER, absent
from edge_store.outbox import Outbox
from edge_store.registers import LIVE, registers_of
from edge_store.rollups import RollupSettings
from edge_store.store import Store, now_ms
from replicator.heartbeat import Heartbeat
from replicator.influx_writer import V1Writer
from replicator.influxql import InfluxQLReader
from replicator.replicator import Replicator
from tests.fixtures_api import PASSWORD, SECRET, add_user, get_ok
from tests.fixtures_app import AppClient
from tests.samples import LIVE_VALUES, ZONE, device, expected_unit_values

HOME, CABIN = "home", "cabin"
MODEL_OF = {"rover-1": "renogy-rover", "shed": "epever-tracer"}
PV_POWER = {"rover-1": 120.0, "shed": 300.0}
VIEWER = "vic"
NEWCOMER, NEW_SITE = "nel", "newsite"  # a viewer of a site granted before its first point


def rover_live(power: float) -> dict:
    """A Rover's live row as the reader hands it over (the simulator's Rover), the others' columns NULL."""
    served = expected_unit_values("renogy-rover", 3, 1)
    values = {r.name: served[r.name] for r in registers_of(LIVE, RENOGY_ROVER.registers)}
    return {**dict.fromkeys(absent(RENOGY_ROVER, LIVE)), **RENOGY_ROVER.derive(LIVE, values), "pv_power": power}


class Cabin:
    def __init__(self, directory, influxd):
        self.now = now_ms()
        self.db = directory / "cabin.db"
        migrate.upgrade(self.db)
        rows = {"rover-1": rover_live(PV_POWER["rover-1"]), "shed": {**LIVE_VALUES, "pv_power": PV_POWER["shed"]}}
        with Store(self.db, rollups=RollupSettings(ZONE, 30.0)) as store:
            for k in reversed(range(10)):
                for name, row in rows.items():
                    store.insert_sample(LIVE, self.now - 50 - k * 10_000, True, name, row)
        self.database = influxd.create_database()
        self.url = influxd.url
        replicator = Replicator(Outbox(self.db), V1Writer(influxd.url, database=self.database), site=CABIN,
                                models=MODEL_OF)
        try:
            assert replicator.drain().error is None
            # The Rover's Pi beats (an upgraded one); the shed's is older: no heartbeat of it.
            Heartbeat(replicator.outbox, replicator.writer, site=CABIN, clock_ms=lambda: self.now,
                      devices=(device("rover-1", 3600.0, "renogy-rover"),)).beat_once()
        finally:
            replicator.close()
        self.users_db = directory / "users.db"
        migrate.upgrade(self.users_db)
        add_user(self.users_db)
        self.users = Users(self.users_db)
        self.users.connect()
        self.users.add(VIEWER, PASSWORD, role="viewer", sites=(HOME,))
        self.users.add(NEWCOMER, PASSWORD, role="viewer", sites=(NEW_SITE,))

    def reader(self) -> InfluxQLReader:
        return InfluxQLReader(self.url, database=self.database, timeout_s=5.0)

    def client(self, user: str | None = None) -> AppClient:
        """The cloud-only app of an installer's server whose own site is `home` with one EPEVER `epever`."""
        settings = Settings(site=HOME, device="epever", timezone=ZONE, jwt_secret=SECRET, interval_s=10.0,
                            slow_interval_s=60.0)
        cloud = CloudSource(self.reader, device="epever", timezone_name=ZONE, models={"epever": "epever-tracer"})
        client = AppClient(create_app(settings, Sources([cloud]), self.users, clock_ms=lambda: self.now))
        client.token = client.login() if user is None else client.login(user)
        return client


@pytest.fixture(scope="module")
def cabin(tmp_path_factory, influxd):
    c = Cabin(tmp_path_factory.mktemp("cabin"), influxd)
    yield c
    c.users.close()


def test_devices_of_another_site_are_its_own_with_their_models(cabin):
    listed = get_ok(cabin.client(), f"/devices?site={CABIN}", "cloud")
    assert [(d["name"], d["model"]) for d in listed] == [("rover-1", "renogy-rover"), ("shed", "epever-tracer")]
    for d in listed:  # what the cloud cannot know is null; the data are fresh
        assert (d["unit"], d["port"], d["errors"], d["reported_model"], d["fresh"]) == (None, None, None, None, True)
        assert d["newest_sample"] is not None
    assert [d["name"] for d in get_ok(cabin.client(), "/devices", "cloud")] == ["epever"]  # our own: the config


def test_another_sites_device_is_answered_with_its_models_fields_as_its_own_store_would(cabin):
    client = cabin.client()
    for name, model in MODEL_OF.items():
        local = LocalSource(str(cabin.db), site=CABIN, device=name, models=MODEL_OF)
        for obj, path in (("battery", "/battery/last"), ("charging", "/charging/last"), ("solar", "/solarData/last")):
            body = get_ok(client, f"{path}?site={CABIN}&device={name}", "cloud")
            body.pop("date")
            assert body == local.newest(CABIN, family(obj, obj, MODELS[model])).value, (name, obj)
    rover = get_ok(client, f"/battery/last?site={CABIN}&device=rover-1", "cloud")
    assert rover["voltage"] is not None and rover["status"]["battery_status"] is None  # EPEVER-only: null
    assert get_ok(client, f"/battery/last?site={CABIN}&device=shed", "cloud")["status"]["battery_status"] is not None
    # A Rover has no charging equipment status: its object (the live row's time, null values), not a 404.
    assert set(get_ok(client, f"/charging/last?site={CABIN}&device=rover-1", "cloud")["errors"].values()) == {None}
    # Without ?device=: ours (epever) is not there, so the site's first device by name.
    assert get_ok(client, f"/solarData/last?site={CABIN}", "cloud")["power"] == PV_POWER["rover-1"]


def test_an_unknown_device_of_another_site_is_a_404_naming_its_devices(cabin):
    client = cabin.client()
    for path in ("/battery/last", "/battery/last/24h/voltage", "/statistics/daily", "/serveur/status"):
        resp = client.get(f"{path}?site={CABIN}&device=epever", token=client.token)
        assert resp.status == 404, (path, resp.status)
        assert resp.json()["message"].startswith("no device 'epever' at site 'cabin'; the devices are: rover-1, shed")


def test_device_all_of_another_site_sums_its_devices(cabin):
    client = cabin.client()
    per = {n: get_ok(client, f"/statistics/daily?site={CABIN}&device={n}", "cloud") for n in MODEL_OF}
    total = get_ok(client, f"/statistics/daily?site={CABIN}&device=all", "cloud")
    assert sum(d["samples"] for d in total) == sum(d["samples"] for rows in per.values() for d in rows) == 20
    assert sum(d["energy_generated_kwh"] for d in total) == pytest.approx(
        sum(d["energy_generated_kwh"] for rows in per.values() for d in rows), abs=2e-3)


def test_a_viewer_never_learns_another_sites_devices(cabin):
    client = cabin.client(VIEWER)
    for path in ("/devices", "/battery/last?device=rover-1", "/battery/last?device=nope", "/statistics/daily"):
        sep = "&" if "?" in path else "?"
        denied = client.get(f"{path}{sep}site={CABIN}", token=client.token)
        unknown = client.get(f"{path}{sep}site=nowhere", token=client.token)
        assert denied.status == unknown.status == 404, path
        assert denied.json()["message"].replace(CABIN, "S") == unknown.json()["message"].replace("nowhere", "S")


def test_a_site_no_device_is_known_of_answers_alike_whatever_device_is_asked(cabin):
    """A site with no point yet has no device: not the server's own. Asking ours, none or another gets one
    and the same answer (the asked name aside), and no answer names ours (review finding: they did)."""
    client = cabin.client(NEWCOMER)
    assert get_ok(client, f"/devices?site={NEW_SITE}", "cloud") == []
    for path in ("/battery/last", "/battery/realtime", "/battery/last/24h/voltage", "/statistics/daily",
                 "/statistics/daily/7days", "/serveur/status", "/alerts"):
        answers = set()
        for asked in (None, "epever", "nope", "all"):
            query = f"{path}?site={NEW_SITE}" + (f"&device={asked}" if asked else "")
            resp = client.get(query, token=client.token)
            text = resp.body.decode()
            text = text if asked is None else text.replace(f"'{asked}'", "'X'")
            assert "epever" not in text, (query, resp.status, text)
            if asked != "all":  # all: where the path sums (a device's name elsewhere)
                answers.add((resp.status, text))
        assert len(answers) == 1, (path, answers)


def test_the_devices_are_looked_up_once_per_ttl_and_an_older_pis_model_is_inferred(cabin, influxd):
    clock = [0.0]
    remote = RemoteDevices(cabin.reader, ttl_s=60.0, monotonic=lambda: clock[0])
    assert [(d.name, d.reported, d.heartbeat_fresh) for d in remote.of(CABIN)] == [
        ("rover-1", True, True), ("shed", False, None)]

    def add(name: str) -> None:
        status, body = influxd.write_lines(cabin.database, f"batteryStatus,device={name},site=barn voltage=12.5 "
                                                           f"{cabin.now}")
        assert status == 204, body

    add("one")
    assert [d.name for d in remote.of("barn")] == ["one"]
    add("two")
    assert [d.name for d in remote.of("barn")] == ["one"]  # kept for the TTL
    clock[0] = 61.0
    assert [d.name for d in remote.of("barn")] == ["one", "two"]
    # Without a heartbeat model: the one model whose live measurements the points show, else the default.
    rover = {f.measurement for f in RENOGY_ROVER.fields if f.measurement}
    assert infer_model(rover | {"edge_health", "rollup_daily"}) == "renogy-rover"
    assert infer_model(rover | {"chargingEquipmentStatus", "dischargingEquipmentStatus"}) == "epever-tracer"
    assert infer_model({"batteryStatus"}) == infer_model({"rollup_daily"}) == "epever-tracer"
