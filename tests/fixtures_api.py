"""Real parts for the API tests: a store filled by the real collector from the real simulator, the real
replicator into a real influxd, and `kammthaar serve` (gunicorn) on free loopback ports.

- `edge` (session): socat pty pair, the simulator frozen (speed 0: every poll serves the same values,
  `expected_values()`), `kammthaar collect` polling every 0.1 s for the whole session (realtime stays
  fresh), its store replicated into a database of the session influxd by `kammthaar replicate --once`.
- `ApiServer`: `kammthaar serve` as a subprocess, configured through KAMMTHAAR_* variables, waited for
  until /health answers, checked alive, SIGTERMed at teardown.
- `Client`: a small stdlib HTTP client (new connection per request, optional source address such as
  127.0.0.2 to be another client), cookies handled by hand so nothing is hidden.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.users import Users
from tests.fixtures_serial import REPO, READY_LINE, SerialPair
from tests.support import clean_env, free_port, rows_in, wait_until  # noqa: F401 (clean_env, rows_in: used by the API tests)

SECRET = "Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk-tests"
ZONE = "Europe/Paris"
SITE = "van-test"
DEVICE = "epever"
START = "2026-06-21T10:00:00+00:00"
SEED = "3"
FROZEN = ["--speed", "0", "--start", START, "--seed", SEED, "--timezone", ZONE]
USER, PASSWORD = "alice", "alice-password-1"


def kammthaar(*args, env: dict, timeout_s: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `kammthaar ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "kammthaar.cli", *args], env=env, cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=timeout_s)




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


@dataclass
class Client:
    base_url: str
    source_address: str | None = None
    cookies: dict = field(default_factory=dict)
    keep_cookies: bool = False

    def request(self, method: str, path: str, *, json_body=None, body: bytes | None = None, headers=None,
                token: str | None = None, cookies: dict | None = None, timeout_s: float = 30) -> Response:
        parts = urllib.parse.urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s,
                                          source_address=(self.source_address, 0) if self.source_address else None)
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
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

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def login(self, user: str = USER, password: str = PASSWORD) -> str:
        resp = self.post("/login", json_body={"username": user, "password": password})
        assert resp.status == 200, (resp.status, resp.body)
        return resp.json()["access_token"]


# -- the server ----------------------------------------------------------------------------------

class ApiServer:
    """`kammthaar serve` on a free loopback port with the given settings (KAMMTHAAR_* variables)."""

    def __init__(self, directory: Path, name: str, **settings):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.dir / f"serve-{name}.log"
        defaults = dict(api_listen=f"127.0.0.1:{self.port}", api_workers=2, api_jwt_secret=SECRET,
                        api_cookie_secure="false", site_id=SITE, site_timezone=ZONE, modbus_device=DEVICE,
                        modbus_interval_s=0.1, modbus_slow_interval_s=0.5)
        defaults.update(settings)
        self.settings = defaults
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> Client:
        return Client(self.url, **kw)

    def start(self, timeout_s: float = 30) -> "ApiServer":
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "kammthaar.cli", "serve"], cwd=REPO,
                                         env=clean_env(**self.settings), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kammthaar serve exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-3000:]}")
            try:
                self.client().get("/health", timeout_s=2)
                return True
            except OSError:
                return False

        wait_until(up, timeout_s, f"kammthaar serve did not answer on {self.url}")
        assert self.proc.poll() is None
        return self

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


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
        self.sim: subprocess.Popen | None = None
        self.collector: subprocess.Popen | None = None

    def env(self, **extra) -> dict:
        settings = dict(store_path=self.db, modbus_port=self.pair.client, modbus_interval_s=0.1,
                        modbus_slow_interval_s=0.5, modbus_timeout_s=0.2, modbus_device=DEVICE, site_id=SITE,
                        site_timezone=ZONE, cloud_url=self.influxd.url, cloud_api="v1",
                        cloud_database=self.database)
        settings.update(extra)
        return clean_env(**settings)

    def start(self) -> "Edge":
        self.pair.plug()
        sim_log = self.dir / "simulator.log"
        with open(sim_log, "w") as log:
            self.sim = subprocess.Popen([sys.executable, "-m", "kammthaar.cli", "simulate", "--port",
                                         self.pair.device, *FROZEN], cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        wait_until(lambda: READY_LINE in sim_log.read_text() or self.sim.poll() is not None, 15,
                    "the simulator did not listen")
        assert self.sim.poll() is None, sim_log.read_text()
        with open(self.dir / "collector.log", "w") as log:
            self.collector = subprocess.Popen([sys.executable, "-m", "kammthaar.cli", "collect"], cwd=REPO,
                                              env=self.env(), stdout=subprocess.DEVNULL, stderr=log)

        def filled() -> bool:
            assert self.collector.poll() is None, (self.dir / "collector.log").read_text()[-3000:]
            return all(rows_in(self.db, t) >= n for t, n in (("live_samples", 20), ("device_statistics", 2),
                                                             ("device_settings", 2), ("device_clock", 2)))

        wait_until(filled, 60, "the collector did not fill the store")
        add_user(self.db)
        self.replicate()
        return self

    def replicate(self, **extra) -> None:
        """`kammthaar replicate --once`: everything stored so far, to the cloud."""
        done = kammthaar("replicate", "--once", env=self.env(**extra))
        assert done.returncode == 0, done.stderr[-3000:]

    def stop(self) -> None:
        for proc in (self.collector, self.sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.pair.unplug()


@pytest.fixture(scope="session")
def edge(tmp_path_factory, influxd):
    """A store filled (and still being filled) by the real collector, replicated to the session influxd."""
    e = Edge(tmp_path_factory.mktemp("edge"), influxd).start()
    yield e
    e.stop()


@pytest.fixture(scope="session")
def local_api(edge, api_servers):
    """The API on the live store, local first then cloud (answers come from the store)."""
    return api_servers(edge.dir, "local", store_path=edge.db, api_sources="local,cloud",
                       cloud_url=edge.influxd.url, cloud_api="v1", cloud_database=edge.database,
                       api_cors_origins="http://localhost:4200")


@pytest.fixture(scope="session")
def cloud_api(edge, api_servers, tmp_path_factory):
    """A cloud-only API on the same site: InfluxDB alone, the users in a store file without samples.

    Its poll intervals are long enough for the replicated data to count as realtime.
    """
    directory = tmp_path_factory.mktemp("cloud-api")
    users_db = directory / "users.db"
    done = kammthaar("db", "upgrade", env=clean_env(store_path=users_db))
    assert done.returncode == 0, done.stderr
    add_user(users_db)
    return api_servers(directory, "cloud", store_path=users_db, api_sources="cloud", api_cookie_secure="true",
                       cloud_url=edge.influxd.url,
                       cloud_api="v1", cloud_database=edge.database, modbus_interval_s=300,
                       modbus_slow_interval_s=600)


def expected_values() -> dict:
    """What the frozen simulator serves, at the device's resolution (as tests/test_collector.py computes it)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from edge_store.registers import EPEVER_TRACER, decode_register, encode
    from edge_store.simulator.model import SolarDay

    model = SolarDay(seed=int(SEED), start=datetime.fromisoformat(START), speed=0, tz=ZoneInfo(ZONE))
    snap = model.snapshot()
    return {r.name: decode_register(r, encode(r, snap[r.name])) for r in EPEVER_TRACER}
