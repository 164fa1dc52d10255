"""Real time-series servers for the replicator tests, and what those tests share.

- `Influxd`: Debian's InfluxDB 1.x `influxd` with a config written into a temp
  directory: every directory in it, reporting and the monitor off, HTTP on a
  free loopback port, the RPC (backup) listener on another free loopback port.
  `kill()` (SIGKILL), `freeze()` (SIGSTOP), `thaw()` (SIGCONT), `start()` again
  on the same port and data: what the outage tests do.
- `VictoriaMetrics`: Debian's `victoria-metrics`, which accepts `/api/v2/write`
  (the v2 path through influxdb-client) and is read back through its export API.
- `fault_proxy`: tests/fault_proxy.py's `FaultProxy` in front of the session influxd.
- What the replicator tests share: their site, their `kammthaar` environment, reading
  back, and `assert_cloud_equals_store()`.

The classes are plain so `bench/replicate.py` and `bench/api.py` start the same servers.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import urllib.parse
import uuid
from pathlib import Path

import pytest

from edge_store.outbox import Outbox
from replicator.influx_writer import V1Writer
from replicator.influxql import InfluxQLReader
from replicator.replicator import Replicator
from tests.fault_proxy import FaultProxy
from tests.samples import ZONE
from tests.support import Process, clean_env, free_port

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def _http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
          timeout_s: float = 10.0) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class _Server:
    """A server process (tests/support.py `Process`) on a free loopback port, with its log file."""

    name = "server"

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self._process: Process | None = None

    @property
    def process(self) -> Process:
        if self._process is None:  # the command is known once the subclass has written its config
            self._process = Process(self._command(), self.log_path)
        return self._process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proc(self):
        return self.process.proc

    def _command(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _ready(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self, timeout_s: float = 30.0) -> "_Server":
        """Start it (again: same port, same data) and wait until it answers."""
        self.process.start(ready=self._ready, timeout_s=timeout_s)
        return self

    def alive(self) -> bool:
        return self.process.alive()

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, connections refused."""
        self.process.kill()

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (requests time out)."""
        self.process.freeze()

    def thaw(self) -> None:
        self.process.thaw()

    def stop(self) -> None:
        self.process.stop()


class Influxd(_Server):
    """InfluxDB 1.x with everything in `directory`. `auth=True` turns HTTP auth on.

    `max_body_size` is influxd's own `[http] max-body-size` (bytes, 0: unlimited).
    """

    name = "influxd"

    def __init__(self, directory: Path, *, auth: bool = False, max_body_size: int = 0):
        super().__init__(directory)
        self.rpc_port = free_port()
        self.auth = auth
        self.config_path = self.dir / "influxdb.conf"
        d = self.dir
        self.config_path.write_text(f"""
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d / 'meta'}"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{d / 'data'}"
  wal-dir = "{d / 'wal'}"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10m0s"

[coordinator]
  write-timeout = "10s"

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false
  bind-socket = "{d / 'influxdb.sock'}"
  max-body-size = {int(max_body_size)}

[logging]
  level = "warn"
  suppress-logo = true

[ifql]
  enabled = false

[continuous_queries]
  enabled = false
""")

    def _command(self) -> list[str]:
        return [INFLUXD, "-config", str(self.config_path)]

    def _ready(self) -> bool:
        status, _ = _http("GET", f"{self.url}/ping", timeout_s=2.0)
        return status == 204

    # -- administration and reading back ------------------------------------------

    def query(self, q: str, db: str | None = None, *, user: str | None = None, password: str | None = None,
              epoch: str = "ms") -> dict:
        """POST /query; the decoded JSON answer (raises on an HTTP error or an error in it)."""
        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        status, body = _http("POST", f"{self.url}/query", urllib.parse.urlencode(params).encode(), headers,
                             timeout_s=60)
        answer = json.loads(body or b"{}")
        if status != 200 or "error" in answer or any("error" in r for r in answer.get("results", [])):
            raise RuntimeError(f"influxd answered {status}: {body[:500]!r}")
        return answer

    def create_database(self, name: str | None = None, **auth) -> str:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.query(f'CREATE DATABASE "{name}"', **auth)
        return name

    def write_lines(self, db: str, lines: str, precision: str = "ms", **auth) -> tuple[int, bytes]:
        params = {"db": db, "precision": precision}
        if auth:
            params.update(u=auth["user"], p=auth["password"])
        return _http("POST", f"{self.url}/write?{urllib.parse.urlencode(params)}", lines.encode())


class VictoriaMetrics(_Server):
    """victoria-metrics with its data in `directory`, any timestamp accepted, no deduplication."""

    name = "victoria-metrics"

    def _command(self) -> list[str]:
        return [VICTORIA, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.dir / 'data'}",
                "-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.latencyOffset=0s",
                "-search.disableCache", "-memory.allowedBytes=256MiB"]

    def _ready(self) -> bool:
        status, _ = _http("GET", f"{self.url}/health", timeout_s=2.0)
        return status == 200

    def export(self, match: str) -> list[dict]:
        """Every stored series matching `match`, through /api/v1/export (one JSON object per line)."""
        _http("GET", f"{self.url}/internal/force_flush")
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        status, body = _http("GET", f"{self.url}/api/v1/export?{query}", timeout_s=60)
        if status != 200:
            raise RuntimeError(f"victoria-metrics export answered {status}: {body[:300]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def influxd(tmp_path_factory):
    """One InfluxDB 1.x for the session; each test takes its own database (`influx_db`)."""
    server = Influxd(tmp_path_factory.mktemp("influxd")).start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxd) -> str:
    """A fresh database on the session influxd."""
    return influxd.create_database()


@pytest.fixture(scope="session")
def influxd_auth(tmp_path_factory):
    """InfluxDB 1.x with auth on: an admin, a `writer` allowed to write, a `reader` who may only read."""
    server = Influxd(tmp_path_factory.mktemp("influxd-auth"), auth=True).start()
    try:
        server.query("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
        admin = dict(user="admin", password="admin-pw")
        server.create_database("site", **admin)
        server.query("CREATE USER writer WITH PASSWORD 'writer-pw'", **admin)
        server.query('GRANT ALL ON "site" TO writer', **admin)
        server.query("CREATE USER reader WITH PASSWORD 'reader-pw'", **admin)
        server.query('GRANT READ ON "site" TO reader', **admin)
        server.admin = admin
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_influxd(tmp_path):
    """An influxd of this test alone, for tests that SIGKILL or SIGSTOP it."""
    server = Influxd(tmp_path / "own-influxd").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory):
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria")).start()
    yield server
    server.stop()


@pytest.fixture
def fault_proxy(influxd):
    """A FaultProxy in front of the session influxd."""
    proxy = FaultProxy(influxd.url)
    yield proxy
    proxy.close()


# -- the replicator tests' site, and the cloud against the local store ---------------

SITE = "van-lisa"  # the `site` tag the replicator tests write


def cli_env(db_path, **overrides) -> dict:
    """`kammthaar` on `db_path` for SITE, in the samples' zone; `overrides`: more settings."""
    return clean_env(store_path=db_path, site_id=SITE, site_timezone=ZONE, **overrides)


def reader_of(server, database: str) -> InfluxQLReader:
    """An InfluxQL reader on `database` of `server` (an Influxd, or a FaultProxy in front of one)."""
    return InfluxQLReader(server.url, database=database)



def expected_points(db_path, site: str) -> dict[tuple[str, str, int], dict]:
    """Every point the local store's rows stand for: (measurement, device, time ms) -> fields.

    Two rows landing on the same measurement, tags and time merge their fields,
    as InfluxDB does. Fields without a value (None, NaN) are left out.
    """
    import math

    from edge_store.outbox import STREAMS, Outbox
    from replicator.points import MEASUREMENTS, TIME_COLUMN

    outbox = Outbox(db_path, readonly=True)
    out: dict[tuple[str, str, int], dict] = {}
    try:
        for stream in STREAMS:
            for row in outbox.rows_after(stream, 0, 10**9):
                ts = row[TIME_COLUMN.get(stream.name, "ts_ms")]
                for m in MEASUREMENTS[stream.name]:
                    fields = {k: v for k, v in m.fields(*m.args(row)).items()
                              if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
                    out.setdefault((m.name, row["device"], ts), {}).update(fields)
    finally:
        outbox.close()
    return out


def influx_points(reader, site: str, measurements) -> dict[tuple[str, str, int], dict]:
    """What InfluxDB holds for `site`, read back with InfluxQL, in the shape of `expected_points`."""
    from replicator.influxql import ident, literal

    out: dict[tuple[str, str, int], dict] = {}
    for name in sorted(set(measurements)):
        for series in reader.query(f"SELECT * FROM {ident(name)} WHERE site = {literal(site)} GROUP BY *"):
            device = series["tags"]["device"]
            for values in series["values"]:
                record = dict(zip(series["columns"], values))
                ts = record.pop("time")
                key = (name, device, ts)
                assert key not in out, f"two points for {key}"
                out[key] = {k: v for k, v in record.items() if v is not None}
    return out


def assert_cloud_equals_store(reader, db_path, site: str) -> dict[str, int]:
    """Same points, same values, nothing missing, nothing extra; the count per measurement."""
    expected = expected_points(db_path, site)
    got = influx_points(reader, site, {k[0] for k in expected})
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing {missing[:5]} ({len(missing)}), extra {extra[:5]} ({len(extra)})"
    for key, fields in expected.items():
        assert got[key] == fields, (key, got[key], fields)
    counts: dict[str, int] = {}
    for name, _, _ in expected:
        counts[name] = counts.get(name, 0) + 1
    return counts


def v1(influxd, database: str, **kw) -> V1Writer:
    return V1Writer(influxd.url, database=database, **kw)


def replicator_on(db_path, writer, **kw) -> Replicator:
    kw.setdefault("site", SITE)
    return Replicator(Outbox(db_path), writer, **kw)
