"""Benchmark of /sites (the installer's fleet) with 10, 100 and 1,000 simulated sites in a real influxd.

Each simulated site has an hour of heartbeats (`edge_health`, one site point and one device point every
5 minutes, issue 14's shape), its newest live point (`batteryStatus`), one site in twenty a firing
critical alert (`alerts`), and `--weeks` of history (a heartbeat and a live point a week: one shard a
week, as InfluxDB's default retention policy cuts them). One site in twenty-five was last seen 10 days
ago (outside the list's window: looked up beyond it, api/fleet.py `Beyond`).

/sites is asked of the real app (falcon.testing, in-process, its cloud source on the influxd, an
installer's token: every site), one request after the other:
- cold: a new app each time (nothing kept: the stale sites are looked up beyond the window),
- warm: one app (the stale sites' newest points kept for `BEYOND_TTL_S`).
Beside it, where the time goes: each statement of the list alone, sent to influxd directly, the list's
statements in one request and in the two requests side by side the API sends (the floor: what the database
itself costs), and the look-up beyond the window.

Run: .venv/bin/python bench/sites.py [--requests 20] [--sites 10,100,1000] [--weeks 26]
Target (issue 15): /sites p50 under 100 ms at 1,000 sites (the ceiling the ratios are against).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import Settings, create_app  # noqa: E402
from api.fleet import NAMES, Beyond, Scope, ask, list_statements  # noqa: E402
from api.sources import CloudSource, Sources  # noqa: E402
from api.users import Users  # noqa: E402
from bench.replicate import cpu_of  # noqa: E402
from edge_store import migrate  # noqa: E402
from edge_store.store import now_ms  # noqa: E402
from replicator.influxql import InfluxQLReader  # noqa: E402
from tests.fixtures_app import AppClient  # noqa: E402
from tests.fixtures_fleet import alert_line, heartbeat_lines, line  # noqa: E402
from tests.fixtures_influx import Influxd  # noqa: E402

SECRET = "bench-Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk"
USER, PASSWORD = "bench", "bench-password"
TARGET_MS = 100.0
BEATS, BEAT_MS, WEEK_MS, STALE_MS = 12, 300_000, 7 * 86_400_000, 10 * 86_400_000
COLD = 5  # cold requests (a new app each)


def is_stale(k: int) -> bool:
    return k % 25 == 7


def fill(influxd: Influxd, database: str, n: int, now: int, weeks: int = 0) -> int:
    """`n` sites' heartbeats, newest live points, a few alerts and `weeks` of history; the points written."""
    lines: list[str] = []
    for k in range(n):
        site = f"site-{k:04d}"
        newest = now - (STALE_MS if is_stale(k) else 0)
        for b in range(BEATS):
            lines += heartbeat_lines(site, newest - b * BEAT_MS - 1000, backlog=(k * 37) % 500)
        for w in range(1, weeks + 1):
            lines += heartbeat_lines(site, newest - w * WEEK_MS)
            lines.append(line("batteryStatus", {"site": site, "device": "epever"}, {"voltage": 12.4},
                              newest - w * WEEK_MS))
        lines.append(line("batteryStatus", {"site": site, "device": "epever"}, {"voltage": 12.5 + k % 10 / 10},
                          newest - 2000 - k))
        if k % 20 == 0:
            lines.append(alert_line(site, now - 60_000, rule="battery_low", severity="critical", state="firing",
                                    event_id=k))
    for start in range(0, len(lines), 5000):
        status, body = influxd.write_lines(database, "\n".join(lines[start:start + 5000]))
        assert status == 204, body
    return len(lines)


def timed(fn, requests: int, warm: bool = True) -> list[float]:
    if warm:
        fn()  # connections, compiled statements
    out = []
    for _ in range(requests):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def cpu_per_request(fn, requests: int, influxd_pid: int) -> tuple[float, float]:
    """(this process's, influxd's) CPU ms per call of `fn`: what the machine's load does not change."""
    fn()
    api, db = time.process_time(), cpu_of(influxd_pid)
    for _ in range(requests):
        fn()
    return ((time.process_time() - api) * 1000 / requests, (cpu_of(influxd_pid) - db) * 1000 / requests)


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--sites", default="10,100,1000")
    parser.add_argument("--weeks", type=int, default=26, help="weeks of history (one shard a week)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kammthaar-bench-sites-") as tmp:
        influxd = Influxd(Path(tmp) / "influxd").start()
        state = Path(tmp) / "state.db"
        migrate.upgrade(state)
        users = Users(state)
        users.add(USER, PASSWORD)
        try:
            print(f"{args.weeks} weeks of history; medians; target {TARGET_MS:g} ms at 1,000 sites; "
                  f"machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            for n in (int(x) for x in args.sites.split(",")):
                database = influxd.create_database()
                now = now_ms()
                points = fill(influxd, database, n, now, args.weeks)

                def reader(database=database):
                    return InfluxQLReader(influxd.url, database=database, timeout_s=10)

                def client():
                    cloud = CloudSource(reader, device="epever", timezone_name="Europe/Paris")
                    settings = Settings(site="site-0000", device="epever", timezone="Europe/Paris", interval_s=300,
                                        slow_interval_s=600, jwt_secret=SECRET)
                    app = AppClient(create_app(settings, Sources([cloud]), users))
                    gc.freeze()  # as a server's worker does once its app is built (api/gunicorn_server.py)
                    return app, app.login(USER, PASSWORD)

                def sites(app, token):
                    resp = app.get("/sites", token=token)  # the server's time: the body is checked after
                    assert resp.status == 200, resp.body[:300]
                    return resp

                cold = []
                for _ in range(COLD):
                    app, token = client()
                    cold += timed(lambda: sites(app, token), 1, warm=False)
                app, token = client()
                warm = timed(lambda: sites(app, token), args.requests)
                assert sites(app, token).json()["count"] == n
                direct = reader()
                statements = list_statements(Scope(None), now_ms())
                whole = timed(lambda: direct.query_each(statements), args.requests)
                paired = timed(lambda: ask(direct, statements), args.requests)
                each = {name: p50(timed(lambda s=s: direct.query(s), args.requests))
                        for name, s in zip(NAMES, statements)}
                stale = {f"site-{k:04d}" for k in range(n) if is_stale(k)}
                far = timed(lambda: Beyond(ttl_s=0).answers(direct, stale, now_ms()), max(3, args.requests // 4))
                api_cpu, db_cpu = cpu_per_request(lambda: sites(app, token), args.requests, influxd.proc.pid)
                p95 = sorted(warm)[int(0.95 * len(warm))]
                print(f"{n:>5} sites ({points} points): /sites cold {p50(cold):.1f} ms ({p50(cold) / TARGET_MS:.2f}x), "
                      f"warm {p50(warm):.1f} ms ({p50(warm) / TARGET_MS:.2f}x, p95 {p95:.1f})"
                      f"; CPU per warm request: API {api_cpu:.1f} + influxd {db_cpu:.1f} = {api_cpu + db_cpu:.1f} ms")
                print(f"      influxd alone: the list's two requests side by side {p50(paired):.1f} ms; in one request "
                      f"{p50(whole):.1f} ms = " + " + ".join(f"{k} {v:.1f}" for k, v in each.items())
                      + f"; beyond the window ({len(stale)} sites, cold only) {p50(far):.1f} ms")
        finally:
            users.close()
            influxd.stop()


if __name__ == "__main__":
    main()
