"""Benchmark of the API over HTTP on loopback, beside influxd asked the same 24 h series directly.

A store holding a day of one-second live samples (86,400 rows, with their rollups, written through
Store as the collector writes them). First the 24 h 5-minute series in SQLite alone: from the minute
buckets, through the minute_buckets view, from the raw samples (issue 3). Then the store replicated to a temporary influxd by `kammthaar replicate --once`;
`kammthaar serve` (gunicorn, `--workers` workers) on it, answering from the store. Then, each over one
keep-alive connection, one request after the other (latency), and from `--clients` threads at once
(throughput):
- GET /batterie/realtime
- GET /batterie/last/24hVoltage (5-minute means of the day: 288 points from 1,440 minute buckets)
- GET /statistics/energy/7days
- influxd directly: the same series as InfluxQL `GROUP BY time(5m)` over `/query` (what the cloud
  source sends), the body read but not decoded, as for the API.

Run: .venv/bin/python bench/api.py [--requests 2000] [--clients 4] [--workers 2]
Targets (issue 5): the 24 h series p50 under 5 ms over HTTP from the local store, and at least twice
as fast as the direct influxd query.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store import migrate  # noqa: E402
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS  # noqa: E402
from edge_store.rollups import RollupSettings, bucket_means_sql  # noqa: E402
from edge_store.store import Store  # noqa: E402
from replicator.influxql import ident, literal  # noqa: E402
from tests.fixtures_influx import Influxd  # noqa: E402
from tests.support import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SITE, DEVICE, ZONE = "bench-van", "epever", "Europe/Paris"
SECRET = "bench-Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk"
USER, PASSWORD = "bench", "bench-password"
DAY_S = 86_400
SERIES_MS = 300_000

STATS_ROW = dict(maximum_pv_voltage_today=21.0, minimum_pv_voltage_today=0.0, maximum_battery_voltage_today=14.2,
                 minimum_battery_voltage_today=12.1, consumed_today=0.4, consumed_this_month=8.2,
                 consumed_this_year=68.6, total_consumed=1568.6, generated_today=1.1, generated_this_month=22.5,
                 generated_this_year=188.6, total_generated=1688.6)
SETTINGS_ROW = dict(rated_charging_current=40.0, rated_load_current=40.0, battery_type=2, battery_capacity=200,
                    temp_compensation_coefficient=3.0, over_voltage_disconnect=16.0, charging_limit_voltage=15.0,
                    over_voltage_reconnect=15.0, equalize_charging_voltage=14.4, boost_charging_voltage=14.4,
                    float_charging_voltage=13.8, boost_reconnect_voltage=13.2, low_voltage_reconnect=12.6,
                    under_voltage_recover=12.2, under_voltage_warning=12.0, low_voltage_disconnect=11.1,
                    discharging_limit_voltage=10.8, battery_rated_voltage=1, default_load_mode=0,
                    equalize_duration=120, boost_duration=120, battery_discharge=30, battery_charge=100,
                    charging_mode=0)


def live_row(i: int, start_ms: int) -> dict:
    """A plausible, varying live sample: a daily wave plus a little noise."""
    phase = (i % DAY_S) / DAY_S
    sun = max(0.0, 1 - abs(phase - 0.5) * 4)
    return {
        "ts_ms": start_ms + i * 1000, "ntp_synced": True, "device": DEVICE,
        "device_over_temperature": False, "night": sun == 0.0,
        "pv_voltage": round(17.0 + 3 * sun + (i % 7) / 100, 2), "pv_current": round(8 * sun, 2),
        "pv_power": round((17 + 3 * sun) * 8 * sun, 2), "battery_power": round(100 * sun, 2),
        "load_voltage": round(12.6 + (i % 50) / 100, 2), "load_current": round(1 + (i % 13) / 10, 2),
        "load_power": round((12.6 + (i % 50) / 100) * (1 + (i % 13) / 10), 2),
        "battery_temperature": round(18 + (i % 300) / 100, 2),
        "controller_temperature": round(25 + (i % 500) / 100, 2),
        "state_of_charge": 50 + (i // 3600) % 50, "remote_battery_temperature": None,
        "battery_real_rated_voltage": 12.0, "battery_status": 0,
        "charging_equipment_status": 9 if sun else 1, "discharging_equipment_status": 1,
        "battery_voltage": round(12.4 + sun + (i % 30) / 100, 2), "battery_current": round(8 * sun - 1.2, 2),
    }


def fill(db: Path) -> int:
    """A day of one-second live samples ending now, with rollups, plus the slow groups."""
    migrate.upgrade(db)
    now_ms = int(time.time() * 1000)
    start = now_ms - DAY_S * 1000
    with Store(db, rollups=RollupSettings(ZONE, 3.0)) as store:
        for k in range(0, DAY_S, 3600):
            store.insert_samples(LIVE, (live_row(i, start) for i in range(k, min(k + 3600, DAY_S))))
        store.insert_sample(STATS, now_ms, True, DEVICE, STATS_ROW)
        store.insert_sample(SETTINGS, now_ms, True, DEVICE, SETTINGS_ROW)
        store.insert_sample(CLOCK, now_ms, True, DEVICE, {"device_time": "2026-06-21 12:00:00"})
        return store.count(LIVE)


def env_for(db: Path, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    env.update({f"KAMMTHAAR_{k.upper()}": str(v) for k, v in settings.items()})
    env["KAMMTHAAR_STORE_PATH"] = str(db)
    return env


class Connection:
    """One keep-alive HTTP/1.1 connection; `get()` returns (status, body bytes)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, headers: dict) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return resp.status, body


def latency(port: int, path: str, headers: dict, n: int) -> dict:
    conn = Connection(port)
    for _ in range(50):  # warm-up: connections, caches, the workers' first requests
        status, body = conn.get(path, headers)
        assert status == 200, (path, status, body[:300])
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        status, body = conn.get(path, headers)
        times.append(time.perf_counter() - t0)
        assert status == 200, (path, status, body[:200])
        size = len(body)
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * times[int(len(times) * 0.99) - 1],
            "seq_rps": n / sum(times), "bytes": size}


def throughput(port: int, path: str, headers: dict, n: int, clients: int) -> float:
    per = n // clients
    errors = []

    def run():
        conn = Connection(port)
        for _ in range(per):
            status, _ = conn.get(path, headers)
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert not errors, errors[:5]
    return per * clients / elapsed


def print_sql_series(db: Path) -> None:
    """The 24 h 5-minute series in SQLite alone (issue 3): from the minute buckets, through the
    minute_buckets view, and aggregated from the day's raw samples, medians of repeated runs."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        end = conn.execute("SELECT max(ts_ms) FROM live_samples").fetchone()[0] + 1
        args = {"every_ms": 300_000, "device": "epever", "start_ms": end - 86_400_000, "end_ms": end}
        queries = {
            "minute buckets (the API's query)": bucket_means_sql("battery_voltage"),
            "the minute_buckets view": "SELECT minute_ms - minute_ms % :every_ms AS b, sum(battery_voltage_sum) / "
                                       "sum(samples) FROM minute_buckets WHERE device = :device AND minute_ms >= "
                                       ":start_ms AND minute_ms < :end_ms GROUP BY b ORDER BY b",
            "raw samples": "SELECT ts_ms - ts_ms % :every_ms AS b, avg(battery_voltage) FROM live_samples "
                           "WHERE device = :device AND ts_ms >= :start_ms AND ts_ms < :end_ms GROUP BY b ORDER BY b",
        }
        print("24 h 5-minute series in SQLite:", end="")
        for label, sql in queries.items():
            runs = []
            for _ in range(50 if label != "raw samples" else 10):
                t0 = time.perf_counter()
                points = len(conn.execute(sql, args).fetchall())
                runs.append(time.perf_counter() - t0)
            print(f" {label} {statistics.median(runs) * 1e3:.2f} ms ({points} points);", end="")
        print()
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kammthaar-bench-api-") as tmp:
        tmp = Path(tmp)
        db = tmp / "bench.db"
        t0 = time.perf_counter()
        rows = fill(db)
        print(f"store: {rows} one-second live samples (a day) with rollups in {time.perf_counter() - t0:.1f} s")
        print_sql_series(db)

        influxd = Influxd(tmp / "influxd").start()
        server = None
        try:
            database = influxd.create_database("bench")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "kammthaar.cli", "replicate", "--once"], cwd=REPO,
                                  env=env_for(db, site_id=SITE, cloud_url=influxd.url, cloud_api="v1",
                                              cloud_database=database), capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-2000:]
            print(f"influxd: replicated by `kammthaar replicate --once` in {time.perf_counter() - t0:.1f} s "
                  f"({done.stdout.strip()})")

            users = subprocess.run([sys.executable, "-m", "kammthaar.cli", "user", "add", USER], cwd=REPO,
                                   env=env_for(db), input=PASSWORD + "\n", capture_output=True, text=True)
            assert users.returncode == 0, users.stderr
            port = free_port()
            # A long poll interval: the day's newest sample counts as realtime for the whole run.
            server = subprocess.Popen(
                [sys.executable, "-m", "kammthaar.cli", "--log-level", "warning", "serve"], cwd=REPO,
                env=env_for(db, api_listen=f"127.0.0.1:{port}", api_workers=args.workers, api_jwt_secret=SECRET,
                            api_sources="local", site_id=SITE, site_timezone=ZONE, modbus_device=DEVICE,
                            modbus_interval_s=3600, modbus_slow_interval_s=3600),
                stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "w"))
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, (tmp / "serve.log").read_text()[-2000:]
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("POST", "/login", body=json.dumps({"username": USER, "password": PASSWORD}),
                                 headers={"Content-Type": "application/json"})
                    token = json.loads(conn.getresponse().read())["access_token"]
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the API did not start"
                    time.sleep(0.2)
            auth = {"Authorization": f"Bearer {token}"}

            now_ms = int(time.time() * 1000)
            current = now_ms - now_ms % SERIES_MS
            start, end = current - (DAY_S * 1000 // SERIES_MS - 1) * SERIES_MS, current + SERIES_MS
            where = (f"{ident('site')} = {literal(SITE)} AND {ident('device')} = {literal(DEVICE)} "
                     f"AND time >= {start}ms AND time < {end}ms")
            influxql = (f"SELECT mean({ident('voltage')}) FROM {ident('batteryStatus')} WHERE {where} "
                        f"GROUP BY time({SERIES_MS}ms) fill(none)")
            direct = "/query?" + urllib.parse.urlencode({"q": influxql, "db": database, "epoch": "ms"})

            cases = [
                ("API /batterie/realtime", port, "/batterie/realtime", auth),
                ("API /batterie/last/24hVoltage", port, "/batterie/last/24hVoltage", auth),
                ("API /statistics/energy/7days", port, "/statistics/energy/7days", auth),
                ("influxd /query, same 24 h series", influxd.port, direct, {"Accept": "application/json"}),
            ]
            points = len(json.loads(Connection(port).get("/batterie/last/24hVoltage", auth)[1]))
            influx_points = len(json.loads(Connection(influxd.port).get(direct, {})[1])["results"][0]["series"][0]
                                ["values"])
            print(f"24 h series: {points} points from the API, {influx_points} from influxd\n")
            print(f"{'':36} {'p50 ms':>8} {'p99 ms':>8} {'req/s 1 conn':>13} {f'req/s {args.clients} conns':>14} "
                  f"{'bytes':>8}")
            results = {}
            for label, p, path, headers in cases:
                r = latency(p, path, headers, args.requests)
                r["par_rps"] = throughput(p, path, headers, args.requests, args.clients)
                results[label] = r
                print(f"{label:36} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['seq_rps']:13.0f} {r['par_rps']:14.0f} "
                      f"{r['bytes']:8d}")
            api = results["API /batterie/last/24hVoltage"]["p50_ms"]
            influx = results["influxd /query, same 24 h series"]["p50_ms"]
            print(f"\n24 h series p50 over HTTP from the store: {api:.2f} ms (target < 5 ms): "
                  f"{'met' if api < 5 else 'MISSED'}")
            print(f"influxd direct p50 / API p50: {influx / api:.1f}x (target >= 2x): "
                  f"{'met' if influx / api >= 2 else 'MISSED'}")
        finally:
            if server is not None and server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
            influxd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
