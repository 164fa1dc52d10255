"""The API in-process: `falcon.testing.TestClient(create_app(...))` with a fixed clock, over a store filled
through the real Store (the local source) and the influxd the real replicator filled from it (the cloud).

- `site` (module scope): a migrated store file holding what the frozen simulator serves, stamped just
  before the fixed clock as `kammthaar collect` would have stored it (30 live samples 0.1 s apart, 3 of
  each slow group 0.5 s apart, rollups in the same transactions), a user, and its replication into a
  database of the session influxd. Its two apps are built as `kammthaar serve` builds them for
  `[api] sources = "local,cloud"` (CORS for the dashboard's origin) and `"cloud"` (the users in a file
  without samples, poll intervals long enough for the replicated data to be realtime).
- `AppClient`: the calls of fixtures_api's `Client`, answered by falcon.testing: no socket, no process.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import falcon.testing
import pytest

from api.app import Settings, create_app
from api.sources import CloudSource, LocalSource, Sources
from api.users import Users
from edge_store import migrate
from edge_store.outbox import Outbox
from edge_store.registers import LIVE, registers_of
from edge_store.rollups import RollupSettings
from edge_store.store import Store, now_ms
from replicator.influxql import InfluxQLReader
from replicator.replicator import Replicator
from replicator.influx_writer import V1Writer
from tests.fixtures_api import DEVICE, SECRET, SITE, Calls, Response, add_user, request_headers
from tests.samples import GROUPS, ZONE, expected_values

ORIGIN = "http://localhost:4200"
INTERVAL_S, SLOW_INTERVAL_S = 0.1, 0.5  # the local app's, as the e2e collector polls
GAP_FACTOR = 3.0  # [rollups] gap_factor's default
LIVE_SAMPLES, LIVE_STEP_MS = 30, 100
SLOW_SAMPLES, SLOW_STEP_MS = 3, 500
NEWEST_AGE_MS = 50
QUERY_TIMEOUT_S = 5.0


def fixed_now_ms() -> int:
    """The apps' clock: now, or just before local midnight in the first minute of a day (so the samples,
    the 24 h windows and "today" are all one local day). Near real time: tokens stay valid for PyJWT."""
    now = now_ms()
    local = datetime.fromtimestamp(now / 1000, ZoneInfo(ZONE))
    midnight_ms = int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    return now if now - midnight_ms >= 60_000 else midnight_ms - 1_000


def fill(db: Path, now: int) -> None:
    """What the frozen simulator serves, stored group by group as the collector stores it."""
    served = expected_values()
    store = Store(db, rollups=RollupSettings(ZONE, GAP_FACTOR * INTERVAL_S))
    try:
        for group in GROUPS:
            values = {r.name: served[r.name] for r in registers_of(group)}
            n, step = (LIVE_SAMPLES, LIVE_STEP_MS) if group == LIVE else (SLOW_SAMPLES, SLOW_STEP_MS)
            for k in reversed(range(n)):  # oldest first, the newest NEWEST_AGE_MS before now
                store.insert_sample(group, now - NEWEST_AGE_MS - k * step, True, DEVICE, values)
    finally:
        store.close()


class AppClient(Calls):
    """The calls of fixtures_api's `Client` (request, get, post, login), answered in-process."""

    def __init__(self, app: falcon.App, remote_addr: str = "127.0.0.1"):
        self._client = falcon.testing.TestClient(app)
        self.remote_addr = remote_addr

    def request(self, method: str, path: str, *, json_body=None, body: bytes | None = None, headers=None,
                token: str | None = None, cookies: dict | None = None) -> Response:
        path, _, query = path.partition("?")
        hdrs, body = request_headers(headers, json_body, body, token)
        result = self._client.simulate_request(method, path, query_string=query or None, headers=hdrs, body=body,
                                               cookies=cookies, remote_addr=self.remote_addr)
        return Response(result.status_code, {k.lower(): v for k, v in result.headers.items()}, [], result.content)



class App:
    """One in-process app: its source's name (`local` answers first, or `cloud` alone) and clients."""

    def __init__(self, source: str, app: falcon.App):
        self.source = source
        self.app = app

    def client(self, **kw) -> AppClient:
        return AppClient(self.app, **kw)


class Site:
    """The filled store, its replication, its users and the two apps on them, at the fixed clock."""

    def __init__(self, directory: Path, influxd):
        self.dir = directory
        self.now_ms = fixed_now_ms()
        self.db = directory / "kammthaar.db"
        migrate.upgrade(self.db)
        fill(self.db, self.now_ms)
        add_user(self.db)
        self.users_db = directory / "users.db"  # the cloud app's: users, no samples
        migrate.upgrade(self.users_db)
        add_user(self.users_db)
        self.database = influxd.create_database()
        self.influx_url = influxd.url
        replicator = Replicator(Outbox(self.db), V1Writer(influxd.url, database=self.database), site=SITE)
        try:
            done = replicator.drain()
        finally:
            replicator.close()
        assert done.error is None and done.points > 0, done
        self.users = [Users(self.db), Users(self.users_db)]
        for users in self.users:
            users.connect()
        self.local = self.app("local")
        self.cloud = self.app("cloud")

    def app(self, source: str, clock_ms=None, commit_window_s: float = 0.0) -> App:
        """The app answering from the store first (`local`) or from the cloud alone, at `clock_ms` (default:
        the fixed clock), for a collector with the given `[store] commit_window_s`."""
        common = dict(site=SITE, device=DEVICE, timezone=ZONE, jwt_secret=SECRET)
        if source == "local":
            settings = Settings(**common, interval_s=INTERVAL_S, slow_interval_s=SLOW_INTERVAL_S,
                                cookie_secure=False, cors_origins=(ORIGIN,), store_path=str(self.db),
                                commit_window_s=commit_window_s)
            sources = Sources([LocalSource(str(self.db), site=SITE, device=DEVICE), self.cloud_source()])
            users = self.users[0]
        else:
            settings = Settings(**common, interval_s=300, slow_interval_s=600)
            sources, users = Sources([self.cloud_source()]), self.users[1]
        return App(source, create_app(settings, sources, users, clock_ms=clock_ms or self.clock_ms))

    def clock_ms(self) -> int:
        return self.now_ms

    def cloud_source(self) -> CloudSource:
        return CloudSource(lambda: InfluxQLReader(self.influx_url, database=self.database, timeout_s=QUERY_TIMEOUT_S),
                           device=DEVICE, timezone_name=ZONE)

    def today(self) -> date:
        """The local day of the clock."""
        return datetime.fromtimestamp(self.now_ms / 1000, ZoneInfo(ZONE)).date()

    def local_days(self, n: int) -> list[str]:
        """The last `n` local days, oldest first, today last."""
        today = self.today()
        return [(today - timedelta(days=k)).isoformat() for k in range(n - 1, -1, -1)]

    def close(self) -> None:
        for users in self.users:
            users.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, influxd):
    s = Site(tmp_path_factory.mktemp("site"), influxd)
    yield s
    s.close()
