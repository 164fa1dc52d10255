"""The installer's fleet for the tests: sites replicated into one InfluxDB, the state in PostgreSQL, two APIs.

- Three sites, each a store filled through the real Store (what the frozen simulator serves, with a battery
  voltage and a PV power no other site has: `MARKERS`) and replicated by its own real Replicator into one
  database of the session influxd; a fourth site known from its heartbeat alone.
- Their heartbeats (`edge_health`, issue 14's agreed shape) and alert events (`alerts`, issue 13's) written
  into the same database in line protocol (replicator/line_protocol.py), as those issues will:
  van-lisa has an active critical alert, cabin-morvan was last seen days ago (stale), boat-ys carries a
  replication backlog and a resolved warning, aa-calm is quiet.
- The state in a database of the session PostgreSQL, migrated and filled by the `kammthaar user` command:
  `ines` (installer), `victor` (viewer of van-lisa), `vera` (viewer of no site yet).
- Two `kammthaar serve` (cloud only) on that one PostgreSQL: `fleet.a`, `fleet.b`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from api.users import Users
from edge_store import migrate
from edge_store.outbox import Outbox
from edge_store.registers import registers_of
from edge_store.rollups import RollupSettings
from edge_store.store import Store, now_ms
from replicator.influx_writer import V1Writer
from replicator.line_protocol import fields_text, measurement_text, tags_text, time_text
from replicator.replicator import Replicator
from tests.fixtures_api import DEVICE, SECRET, ApiServer
from tests.samples import GROUPS, ZONE, expected_values
from tests.support import clean_env, kammthaar

# site -> (battery voltage, PV power): values only that site's points carry
MARKERS = {"van-lisa": (61.73, 711.11), "cabin-morvan": (62.84, 722.22), "boat-ys": (63.95, 733.33)}
QUIET = "aa-calm"  # known from its heartbeat alone
STALE_AGE_MS = 3 * 86_400_000
PASSWORD = "fleet-password-1"
INSTALLER, VIEWER, NOBODY = "ines", "victor", "vera"
HOME = "van-lisa"  # the servers' [site] id and victor's one site


def line(measurement: str, tags: dict, fields: dict, ts: int) -> str:
    """One point in line protocol, as the replicator's serialiser writes it."""
    return f"{measurement_text(measurement)}{tags_text(tags)}{fields_text(fields)}{time_text(ts)}"


def heartbeat_lines(site: str, ts: int, *, backlog: int = 0, completeness: float = 0.99, fresh: bool = True,
                    alerts: tuple[int, int] | None = None) -> list:
    """One heartbeat of `site` at `ts` (ms): the site's point and its device's, as issue 14 writes them;
    `alerts`: (alerts_active, alerts_critical), as issue 13 adds them."""
    site_fields = {"version": "0.1.0", "backlog_rows": backlog, "oldest_unsent_age_s": backlog / 10.0,
                   "dead_letters": 0, "dropped_rows": 0, "db_bytes": 1_000_000, "free_bytes": 9_000_000_000,
                   "ntp_synced": True, "completeness": completeness}
    if alerts is not None:
        site_fields.update(alerts_active=alerts[0], alerts_critical=alerts[1])
    device_fields = {"newest_sample_age_s": 1.5 if fresh else 4000.0, "errors": 2, "fresh": fresh}
    return [line("edge_health", {"site": site}, site_fields, ts),
            line("edge_health", {"site": site, "device": DEVICE}, device_fields, ts)]


def alert_line(site: str, ts: int, *, rule: str, severity: str, state: str, event_id: int) -> str:
    tags = {"site": site, "device": DEVICE, "rule": rule, "severity": severity, "state": state}
    fields = {"value": 11.2, "threshold": 11.5, "event_id": event_id, "message": f"{rule} {state}"}
    return line("alerts", tags, fields, ts)


def fill_site(db: Path, newest_ms: int, voltage: float, pv_power: float) -> None:
    """What the frozen simulator serves with this site's markers: 5 rows per group, 1 s apart."""
    served = {**expected_values(), "battery_voltage": voltage, "pv_power": pv_power}
    migrate.upgrade(db)
    store = Store(db, rollups=RollupSettings(ZONE, 30.0))
    try:
        for group in GROUPS:
            values = {r.name: served[r.name] for r in registers_of(group)}
            for k in reversed(range(5)):
                store.insert_sample(group, newest_ms - k * 1000, True, DEVICE, values)
    finally:
        store.close()


@dataclass
class Fleet:
    dir: Path
    influxd: object
    database: str
    state_url: str
    a: ApiServer
    b: ApiServer
    now_ms: int

    def env(self, **extra) -> dict:
        return clean_env(api_state_url=self.state_url, api_sources="cloud", store_path=self.dir / "unused.db",
                         **extra)

    def user(self, *args: str, stdin: str | None = None):
        """`kammthaar user ARGS` on the fleet's state; the completed process."""
        return kammthaar("user", *args, env=self.env(), stdin=stdin)


def start_fleet(directory: Path, influxd, postgres, api_servers) -> Fleet:
    now = now_ms()
    database = influxd.create_database()
    for site, (volts, watts) in MARKERS.items():
        db = directory / f"{site}.db"
        fill_site(db, now - (STALE_AGE_MS if site == "cabin-morvan" else 2_000), volts, watts)
        replicator = Replicator(Outbox(db), V1Writer(influxd.url, database=database), site=site)
        try:
            done = replicator.drain()
        finally:
            replicator.close()
        assert done.error is None and done.points > 0, done
    lines = [*heartbeat_lines("van-lisa", now - 1_000),
             *heartbeat_lines("cabin-morvan", now - STALE_AGE_MS, fresh=False),
             *heartbeat_lines("boat-ys", now - 1_000, backlog=5_000),
             *heartbeat_lines(QUIET, now - 1_000),
             alert_line("van-lisa", now - 60_000, rule="battery_low", severity="critical", state="firing", event_id=1),
             alert_line("boat-ys", now - 50_000, rule="pv_low", severity="warning", state="firing", event_id=2),
             alert_line("boat-ys", now - 40_000, rule="pv_low", severity="warning", state="resolved", event_id=3)]
    status, body = influxd.write_lines(database, "\n".join(lines))
    assert status == 204, body
    state_url = postgres.database()
    servers = {}
    fleet = Fleet(directory, influxd, database, state_url, None, None, now)  # type: ignore[arg-type]
    migrate.upgrade(state_url)
    users = Users(state_url)  # two users in-process, victor through the command a user would type
    try:
        users.add(INSTALLER, PASSWORD)
        users.add(NOBODY, PASSWORD, role="viewer")
    finally:
        users.close()
    done = fleet.user("add", VIEWER, "--role", "viewer", "--sites", HOME, stdin=PASSWORD + "\n")
    assert done.returncode == 0 and "viewer of van-lisa" in done.stdout, done.stderr
    for name in ("a", "b"):
        servers[name] = api_servers(directory, f"fleet-{name}", api_state_url=state_url, api_sources="cloud",
                                    store_path=directory / "unused.db", site_id=HOME, cloud_url=influxd.url,
                                    cloud_api="v1", cloud_database=database, modbus_interval_s=300,
                                    modbus_slow_interval_s=600, api_jwt_secret=SECRET, site_timezone=ZONE)
    fleet.a, fleet.b = servers["a"], servers["b"]
    return fleet


@pytest.fixture(scope="session")
def fleet(tmp_path_factory, influxd, postgres, api_servers) -> Fleet:
    return start_fleet(tmp_path_factory.mktemp("fleet"), influxd, postgres, api_servers)
