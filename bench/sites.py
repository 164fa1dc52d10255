"""Benchmark of /sites (the installer's fleet) with 10, 100 and 1,000 simulated sites in a real influxd.

Each simulated site has an hour of heartbeats (`edge_health`, one site point and one device point every
5 minutes, issue 14's shape), its newest live point (`batteryStatus`), and one site in twenty a firing
critical alert (`alerts`). /sites is asked of the real app (falcon.testing, in-process, its cloud source
on the influxd, an installer's token: every site), one request after the other; beside it the same
InfluxQL statements sent to influxd directly (the floor: what the database itself costs).

Run: .venv/bin/python bench/sites.py [--requests 30] [--sites 10,100,1000]
Target (issue 15): /sites p50 under 100 ms at 1,000 sites (the ceiling the ratio is against).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import Settings, create_app  # noqa: E402
from api.fleet import Scope, _statements  # noqa: E402
from api.sources import CloudSource, Sources  # noqa: E402
from api.users import Users  # noqa: E402
from edge_store import migrate  # noqa: E402
from edge_store.store import now_ms  # noqa: E402
from replicator.influxql import InfluxQLReader  # noqa: E402
from tests.fixtures_app import AppClient  # noqa: E402
from tests.fixtures_fleet import alert_line, heartbeat_lines, line  # noqa: E402
from tests.fixtures_influx import Influxd  # noqa: E402

SECRET = "bench-Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk"
USER, PASSWORD = "bench", "bench-password"
TARGET_MS = 100.0
BEATS, BEAT_MS = 12, 300_000


def fill(influxd: Influxd, database: str, n: int, now: int) -> int:
    """`n` sites' heartbeats, newest live points and a few alerts; the number of points written."""
    lines: list[str] = []
    for k in range(n):
        site = f"site-{k:04d}"
        for b in range(BEATS):
            lines += heartbeat_lines(site, now - b * BEAT_MS - 1000, backlog=(k * 37) % 500)
        lines.append(line("batteryStatus", {"site": site, "device": "epever"}, {"voltage": 12.5 + k % 10 / 10},
                          now - 2000 - k))
        if k % 20 == 0:
            lines.append(alert_line(site, now - 60_000, rule="battery_low", severity="critical", state="firing",
                                    event_id=k))
    for start in range(0, len(lines), 5000):
        status, body = influxd.write_lines(database, "\n".join(lines[start:start + 5000]))
        assert status == 204, body
    return len(lines)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def timed(fn, requests: int) -> list[float]:
    fn()  # warm: connections, compiled statements
    out = []
    for _ in range(requests):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--sites", default="10,100,1000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kammthaar-bench-sites-") as tmp:
        influxd = Influxd(Path(tmp) / "influxd").start()
        state = Path(tmp) / "state.db"
        migrate.upgrade(state)
        users = Users(state)
        users.add(USER, PASSWORD)
        try:
            print(f"{'sites':>6} {'points':>8} {'/sites p50':>11} {'p95':>8} {'influxd p50':>12} "
                  f"{'p50/target':>11}")
            for n in (int(x) for x in args.sites.split(",")):
                database = influxd.create_database()
                now = now_ms()
                points = fill(influxd, database, n, now)

                def reader(database=database):
                    return InfluxQLReader(influxd.url, database=database, timeout_s=10)

                cloud = CloudSource(reader, device="epever", timezone_name="Europe/Paris")
                settings = Settings(site="site-0000", device="epever", timezone="Europe/Paris", interval_s=300,
                                    slow_interval_s=600, jwt_secret=SECRET)
                client = AppClient(create_app(settings, Sources([cloud]), users))
                token = client.login(USER, PASSWORD)

                def sites(client=client, token=token, n=n):
                    resp = client.get("/sites", token=token)
                    assert resp.status == 200 and resp.json()["count"] == n, resp.body[:300]

                direct = reader()
                statements = _statements(Scope(None))
                api_ms = timed(sites, args.requests)
                db_ms = timed(lambda: direct.query_each(statements), args.requests)
                p50 = statistics.median(api_ms)
                print(f"{n:>6} {points:>8} {p50:>8.1f} ms {percentile(api_ms, 0.95):>5.1f} ms "
                      f"{statistics.median(db_ms):>9.1f} ms {p50 / TARGET_MS:>10.2f}x")
        finally:
            users.close()
            influxd.stop()


if __name__ == "__main__":
    main()
