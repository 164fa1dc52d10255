"""Real parts for the API tests: a store filled by the real collector from the real simulator, the real
replicator into a real influxd, and `kammthaar serve` (gunicorn) on free loopback ports.

- `edge` (session): socat pty pair, the simulator frozen (speed 0: every poll serves the same values,
  tests/samples.py `expected_values()`), `kammthaar collect` polling every 0.1 s for the whole session
  (realtime stays fresh), its store replicated into a database of the session influxd by
  `kammthaar replicate --once`.
- `ApiServer`: `kammthaar serve` as a subprocess (tests/support.py `Process`), configured through
  KAMMTHAAR_* variables, waited for until /health answers, checked alive, SIGTERMed at teardown.
- `Client`: a small stdlib HTTP client (new connection per request, optional source address such as
  127.0.0.2 to be another client), cookies handled by hand so nothing is hidden.
- `expected_objects()`: each family's object as the contract says, from what the frozen device serves.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.users import Users
from edge_store import migrate
from tests import status_words as status
from tests.fixtures_serial import SerialPair
from tests.samples import FROZEN, ZONE
from tests.support import KAMMTHAAR, SIMULATOR_READY, Process, clean_env, free_port, kammthaar, rows_in, \
    simulator_command

SECRET = "Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk-tests"
SITE = "van-test"
DEVICE = "epever"
USER, PASSWORD = "alice", "alice-password-1"


def snapshot_copy(src: Path, dst: Path) -> Path:
    """A consistent copy of a live store (SQLite's backup API), for servers that must not see it move."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return dst


def add_user(db: Path, name: str = USER, password: str = PASSWORD) -> None:
    users = Users(db)
    try:
        if users.get(name) is None:
            users.add(name, password)
    finally:
        users.close()


# -- HTTP ------------------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict  # lower-case name -> value (the last one)
    set_cookies: list[str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def source(self) -> str | None:
        return self.headers.get("x-data-source")

    def cookies(self) -> dict[str, http.cookies.Morsel]:
        jar = http.cookies.SimpleCookie()
        for line in self.set_cookies:
            jar.load(line)
        return dict(jar)


class Calls:
    """get, post and login over a client's `request` (over HTTP here, in-process in fixtures_app)."""

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def login(self, user: str = USER, password: str = PASSWORD) -> str:
        resp = self.post("/login", json_body={"username": user, "password": password})
        assert resp.status == 200, (resp.status, resp.body)
        return resp.json()["access_token"]


def get_ok(client, path: str, source: str | None):
    """A 200 JSON answer from `source` (X-Data-Source), decoded."""
    resp = client.get(path, token=client.token)
    assert resp.status == 200, (path, resp.status, resp.body[:300])
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.source == source, (path, resp.headers)
    assert resp.body, path
    return resp.json()


def error_answers(client, cloud) -> dict:
    """One request per error status of the contract (503 from a cloud source that cannot be reached)."""
    return {
        400: client.get("/battery/last/24h/voltage?every=7m", token=client.token),
        401: client.get("/battery/last"),
        404: client.get("/no/such/path", token=client.token),
        405: client.request("DELETE", "/battery/last", token=client.token),
        503: cloud.get("/serveur/infos", token=cloud.login()),
    }


def request_headers(headers: dict | None, json_body, body: bytes | None, token: str | None) -> tuple[dict, bytes | None]:
    """The headers and body of a test request: JSON encoded, the bearer token set."""
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    return hdrs, body


def assert_health(body: dict, cloud: dict) -> None:
    """/health of a local-first API with a fresh collector and a caught-up replicator, and of a cloud-only one."""
    assert body["status"] == "ok" and body["sources"] == ["local", "cloud"]
    assert body["store"]["reachable"] is True and body["store"]["size_bytes"] > 0
    assert body["collector"]["fresh"] is True and body["collector"]["source"] == "local"
    assert 0 <= body["collector"]["age_s"] <= body["collector"]["fresh_within_s"] * 50
    rep = body["replicator"]
    assert isinstance(rep["backlog_rows"], int) and rep["backlog_rows"] >= 0 and rep["last_success"] is not None
    assert rep["blocked"] is None and rep["last_error"] is None
    assert body["cloud"] == {"configured": True, "reachable": True}
    assert cloud["store"]["configured"] is False and cloud["replicator"] is None
    assert cloud["collector"]["source"] == "cloud" and cloud["cloud"]["reachable"] is True


def assert_one_error_shape(answers: dict) -> None:
    """Each answer (by its expected status) is JSON {"error", "message"}; 404, 405 and 503 as the contract says."""
    for code, resp in answers.items():
        assert resp.status == code, (code, resp.body)
        assert resp.headers["content-type"] == "application/json"
        body = resp.json()
        assert set(body) == {"error", "message"} and all(isinstance(v, str) and v for v in body.values()), body
    assert answers[404].json() == {"error": "not_found", "message": "no path /no/such/path here (see /openapi.json)"}
    assert "GET" in answers[405].headers["allow"] and answers[405].json()["error"] == "method_not_allowed"
    assert int(answers[503].headers["retry-after"]) > 0


@dataclass
class Client(Calls):
    base_url: str
    source_address: str | None = None
    cookies: dict = field(default_factory=dict)
    keep_cookies: bool = False

    def request(self, method: str, path: str, *, json_body=None, body: bytes | None = None, headers=None,
                token: str | None = None, cookies: dict | None = None, timeout_s: float = 30) -> Response:
        parts = urllib.parse.urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s,
                                          source_address=(self.source_address, 0) if self.source_address else None)
        hdrs, body = request_headers(headers, json_body, body, token)
        jar = {**self.cookies, **(cookies or {})}
        if jar:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            raw = resp.getheaders()
        finally:
            conn.close()
        out = Response(resp.status, {k.lower(): v for k, v in raw}, [v for k, v in raw if k.lower() == "set-cookie"],
                       data)
        if self.keep_cookies:
            for name, morsel in out.cookies().items():
                if morsel["max-age"] == "0" or morsel["expires"] and "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return out



# -- the server ----------------------------------------------------------------------------------

class ApiServer:
    """`kammthaar serve` on a free loopback port with the given settings (KAMMTHAAR_* variables)."""

    def __init__(self, directory: Path, name: str, **settings):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        defaults = dict(api_listen=f"127.0.0.1:{self.port}", api_workers=2, api_jwt_secret=SECRET,
                        api_cookie_secure="false", site_id=SITE, site_timezone=ZONE, modbus_device=DEVICE,
                        modbus_interval_s=0.1, modbus_slow_interval_s=0.5)
        defaults.update(settings)
        self.settings = defaults
        self.process = Process([*KAMMTHAAR, "serve"], self.dir / f"serve-{name}.log", env=clean_env(**defaults))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> Client:
        return Client(self.url, **kw)

    def start(self, timeout_s: float = 30) -> "ApiServer":
        """Start it and wait until /health answers (whatever its status)."""
        self.process.start(ready=lambda: self.client().get("/health", timeout_s=2), timeout_s=timeout_s)
        return self

    def stop(self) -> int | None:
        return self.process.stop(20)


@pytest.fixture(scope="session")
def api_servers():
    """Factory: api_servers(directory, name, **settings) -> a started ApiServer; all stopped at the end."""
    started: list[ApiServer] = []

    def start(directory, name, **settings) -> ApiServer:
        server = ApiServer(directory, name, **settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# -- the edge: simulator, collector, replicator ----------------------------------------------------

class Edge:
    """The frozen simulator behind a socat pair, `kammthaar collect` into `db`, and its cloud database."""

    def __init__(self, directory: Path, influxd):
        self.dir = Path(directory)
        self.db = self.dir / "edge.db"
        self.influxd = influxd
        self.database = influxd.create_database()
        self.pair = SerialPair(self.dir)
        self.sim = Process(simulator_command("--port", self.pair.device, *FROZEN), self.dir / "simulator.log")
        self.collector = Process([*KAMMTHAAR, "collect"], self.dir / "collector.log", env=self.env())

    def env(self, **extra) -> dict:
        settings = dict(store_path=self.db, modbus_port=self.pair.client, modbus_interval_s=0.1,
                        modbus_slow_interval_s=0.5, modbus_timeout_s=0.2, modbus_device=DEVICE, site_id=SITE,
                        site_timezone=ZONE, cloud_url=self.influxd.url, cloud_api="v1",
                        cloud_database=self.database)
        settings.update(extra)
        return clean_env(**settings)

    def start(self) -> "Edge":
        """Simulator, collector, a user and a first replication; whatever started is stopped if a step fails."""
        try:
            self.pair.plug()
            self.sim.start(ready_line=SIMULATOR_READY, timeout_s=15)
            self.collector.start(ready=lambda: all(rows_in(self.db, t) >= n for t, n in (
                ("live_samples", 20), ("device_statistics", 2), ("device_settings", 2), ("device_clock", 2))),
                timeout_s=60)
            add_user(self.db)
            self.replicate()
        except BaseException:
            self.stop()
            raise
        return self

    def replicate(self, **extra) -> None:
        """`kammthaar replicate --once`: everything stored so far, to the cloud."""
        done = kammthaar("replicate", "--once", env=self.env(**extra))
        assert done.returncode == 0, done.stderr[-3000:]

    def stop(self) -> None:
        self.collector.stop()
        self.sim.stop()
        self.pair.unplug()


@pytest.fixture(scope="session")
def edge(tmp_path_factory, influxd):
    """A store filled (and still being filled) by the real collector, replicated to the session influxd."""
    e = Edge(tmp_path_factory.mktemp("edge"), influxd).start()
    yield e
    e.stop()


@pytest.fixture(scope="session")
def local_api(edge, api_servers):
    """The API on the live store, local first then cloud (answers come from the store).

    Its poll intervals are ten times the collector's: realtime stays fresh on a busy machine (the
    freshness limits themselves are checked in-process, against a fixed clock).
    """
    return api_servers(edge.dir, "local", store_path=edge.db, api_sources="local,cloud",
                       cloud_url=edge.influxd.url, cloud_api="v1", cloud_database=edge.database,
                       api_cors_origins="http://localhost:4200", modbus_interval_s=1, modbus_slow_interval_s=5)


@pytest.fixture(scope="session")
def cloud_api(edge, api_servers, tmp_path_factory):
    """A cloud-only API on the same site: InfluxDB alone, the users in a store file without samples.

    Its poll intervals are long enough for the replicated data to count as realtime.
    """
    directory = tmp_path_factory.mktemp("cloud-api")
    users_db = directory / "users.db"
    migrate.upgrade(users_db)
    add_user(users_db)
    return api_servers(directory, "cloud", store_path=users_db, api_sources="cloud", api_cookie_secure="true",
                       cloud_url=edge.influxd.url,
                       cloud_api="v1", cloud_database=edge.database, modbus_interval_s=300,
                       modbus_slow_interval_s=600)


# -- what the contract says the frozen device's objects are -----------------------------------------

def expected_objects(ev: dict, source: str) -> dict:
    """Each family's object, from the simulator's values and the contract's names."""
    params = {k: round(float(ev[k]), 2) for k in (
        "rated_charging_current", "rated_load_current", "battery_capacity", "temp_compensation_coefficient",
        "over_voltage_disconnect", "charging_limit_voltage", "over_voltage_reconnect", "equalize_charging_voltage",
        "boost_charging_voltage", "float_charging_voltage", "boost_reconnect_voltage", "low_voltage_reconnect",
        "under_voltage_recover", "under_voltage_warning", "low_voltage_disconnect", "discharging_limit_voltage",
        "equalize_duration", "boost_duration", "battery_discharge", "battery_charge")}
    params.update({k: status.enum_name(k, ev[k]) for k in ("battery_rated_voltage", "battery_type",
                                                             "default_load_mode", "charging_mode")})
    # A live register: the catalogue writes it on the live batteryStatus point, so the cloud knows it too.
    params["real_rated_voltage"] = int(round(ev["battery_real_rated_voltage"]))
    return {
        "battery": {"voltage": ev["battery_voltage"], "current": ev["battery_current"], "power": ev["battery_power"],
                    "state_of_charge": float(ev["state_of_charge"]), "temperature": ev["battery_temperature"],
                    "status": status.battery_status(ev["battery_status"])},
        "battery/parameters": params,
        "solarData": {"voltage": ev["pv_voltage"], "current": ev["pv_current"], "power": ev["pv_power"],
                      "maximum_voltage_today": ev["maximum_pv_voltage_today"],
                      "minimum_voltage_today": ev["minimum_pv_voltage_today"]},
        "loadData": {"voltage": ev["load_voltage"], "current": ev["load_current"], "power": ev["load_power"]},
        "controller": {"temperature": ev["controller_temperature"],
                       "device_over_temperature": ev["device_over_temperature"],
                       "current_device_time": ev["device_time"]},
        "charging": status.charging_status(ev["charging_equipment_status"]),
        "discharging": status.discharging_status(ev["discharging_equipment_status"]),
        "statistics/daily": {"maximum_battery_voltage_today": ev["maximum_battery_voltage_today"],
                             "minimum_battery_voltage_today": ev["minimum_battery_voltage_today"],
                             "day_time": not ev["night"], "night_time": ev["night"]},
        "statistics/energy": {k: ev[k] for k in ("consumed_today", "consumed_this_month", "consumed_this_year",
                                                 "total_consumed", "generated_today", "generated_this_month",
                                                 "generated_this_year", "total_generated")},
        "breadcrumb": {"day_time": not ev["night"], "current_device_time": ev["device_time"]},
    }
