"""Benchmark of the replicator against real servers, beside ceilings measured in the same run.

A backlog of `--days` days of live samples at one per second (default 7:
604,800 rows, 7 points each) in a fresh SQLite store, then:

v1, InfluxDB 1.x (`influxd`, temp config, loopback):
- ceiling: the same line protocol, rendered and gzip-compressed beforehand,
  POSTed to /write with the same batch size, one request after the other;
- the replicator: `Replicator.drain()` through `V1Writer` (reads the rows,
  renders, compresses, posts, moves the watermark per batch).
v2, victoria-metrics `/api/v2/write`:
- the replicator through `V2Writer` (influxdb-client, synchronous write API);
- influxdb-client's own batching writer (`WriteOptions` batching, same batch
  size, gzip on) fed the same points as `Point` objects, until it has flushed.

For each: wall seconds, points per second, CPU seconds of this process per
100k points, and the server's CPU seconds. Then where the replicator's time
goes: each phase of `--profile-rows` rows timed one batch after the other
(the replicator overlaps rendering the next batch with the request in
flight), cProfile of rendering, and the renderer beside
`Point.to_line_protocol()` on the same rows.

Run: .venv/bin/python bench/replicate.py [--days 7] [--batch-size 5000] [--rounds 2]
Targets (issue 4): v1 replicator >= 0.5x the ceiling; v2 replicator faster
than the batching writer.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import http.client
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store import migrate  # noqa: E402
from edge_store.outbox import BY_NAME, Outbox  # noqa: E402
from edge_store.registers import LIVE  # noqa: E402
from edge_store.store import Store  # noqa: E402
from replicator.points import LIVE_STREAM, Renderer  # noqa: E402
from replicator.replicator import Replicator  # noqa: E402
from replicator.influx_writer import GZIP_LEVEL, V1Writer, V2Writer  # noqa: E402
from tests.fixtures_influx import Influxd, VictoriaMetrics  # noqa: E402

START_MS = 1_764_000_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def live_row(i: int) -> dict:
    """A plausible, varying live sample: a slow daily wave plus a little noise."""
    phase = (i % 86_400) / 86_400
    sun = max(0.0, 1 - abs(phase - 0.5) * 4)
    return {
        "ts_ms": START_MS + i * 1000, "ntp_synced": True, "device": "epever",
        "device_over_temperature": False, "night": sun == 0.0,
        "pv_voltage": round(17.0 + 3 * sun + (i % 7) / 100, 2), "pv_current": round(8 * sun, 2),
        "pv_power": round((17 + 3 * sun) * 8 * sun, 2), "battery_power": round(100 * sun, 2),
        "load_voltage": round(12.6 + (i % 50) / 100, 2), "load_current": round(1 + (i % 13) / 10, 2),
        "load_power": round((12.6 + (i % 50) / 100) * (1 + (i % 13) / 10), 2),
        "battery_temperature": round(18 + (i % 300) / 100, 2), "controller_temperature": round(25 + (i % 500) / 100, 2),
        "state_of_charge": 50 + (i // 3600) % 50, "remote_battery_temperature": None,
        "battery_real_rated_voltage": 12.0, "battery_status": 0,
        "charging_equipment_status": 9 if sun else 1, "discharging_equipment_status": 1,
        "battery_voltage": round(12.4 + sun + (i % 30) / 100, 2), "battery_current": round(8 * sun - 1.2, 2),
    }


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Measure:
    """Wall and CPU seconds of this process (and of a server process) over a block."""

    def __init__(self, server_pid: int | None = None):
        self.server_pid = server_pid

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.s0 = cpu_of(self.server_pid) if self.server_pid else 0.0
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self.server_cpu = (cpu_of(self.server_pid) - self.s0) if self.server_pid else 0.0


def report(name: str, points: int, m: Measure, ceiling: float | None = None) -> float:
    rate = points / m.wall
    ratio = f"  {rate / ceiling:5.2f}x" if ceiling else ""
    print(f"  {name:<44} {points:>9} pts {m.wall:7.1f} s {rate:>9,.0f} pts/s  "
          f"{m.cpu / points * 1e5:6.2f} CPU s/100k  server {m.server_cpu:6.1f} CPU s{ratio}")
    return rate


def fill(db: Path, rows: int) -> None:
    migrate.upgrade(db)
    chunk = 20_000
    with Store(db) as store:
        for start in range(0, rows, chunk):
            store.insert_samples(LIVE, (live_row(i) for i in range(start, min(rows, start + chunk))))


def rendered(db: Path, site: str, batch_size: int) -> list[list[str]]:
    """Every batch the replicator would send, rendered beforehand."""
    renderer = Renderer(site)
    outbox = Outbox(db, readonly=True)
    stream = BY_NAME[LIVE_STREAM]
    per = max(1, batch_size // 7)
    batches, position = [], 0
    while True:
        rows = outbox.rows_after(stream, position, per)
        if not rows:
            break
        lines = []
        for row in rows:
            lines.extend(renderer.lines(LIVE_STREAM, row))
        batches.append(lines)
        position = rows[-1]["id"]
    outbox.close()
    return batches


def post_all(url: str, path: str, bodies: list[bytes], headers: dict) -> None:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    for body in bodies:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status // 100 != 2:
            raise RuntimeError(f"{path}: HTTP {resp.status}")
    conn.close()


def fresh_copy(src: Path, dst: Path) -> Path:
    """The backlog again, watermarks at zero (a byte copy of the filled database)."""
    import shutil
    import sqlite3

    conn = sqlite3.connect(src)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(src, dst)
    return dst


def where_the_time_goes(influxd, tmp: Path, rows: int, batch_size: int) -> None:
    """One batch after the other, no overlap: each phase's cost per point, then cProfile of rendering."""
    small = tmp / "profile.db"
    fill(small, rows)
    db = influxd.create_database("profile")
    outbox = Outbox(small)
    writer = V1Writer(influxd.url, database=db)
    renderer = Renderer("bench-profile")
    stream = BY_NAME[LIVE_STREAM]
    cost = dict.fromkeys(("read rows (SQLite)", "render (Renderer.lines)", "encode (join + gzip)",
                          "POST until 204 (wall)", "commit watermark"), 0.0)
    names = list(cost)
    position, n = 0, 0
    per = max(1, batch_size // 7)
    while True:
        t = time.process_time()
        batch = outbox.rows_after(stream, position, per)
        cost[names[0]] += time.process_time() - t
        if not batch:
            break
        t = time.process_time()
        lines = [line for row in batch for line in renderer.lines(LIVE_STREAM, row)]
        cost[names[1]] += time.process_time() - t
        t = time.process_time()
        body = writer.encode(lines)
        cost[names[2]] += time.process_time() - t
        t = time.perf_counter()
        writer.send(body)
        cost[names[3]] += time.perf_counter() - t
        t = time.process_time()
        position = batch[-1]["id"]
        outbox.commit(stream, position, points=len(lines), bytes_sent=len(body))
        cost[names[4]] += time.process_time() - t
        n += len(lines)
    writer.close()
    print(f"where the time goes, one batch after the other ({n} points, microseconds per point):")
    for name, seconds in cost.items():
        print(f"  {name:<28} {seconds / n * 1e6:6.2f}")
    sample = outbox.rows_after(stream, 0, rows)
    outbox.close()
    profiler = cProfile.Profile()
    profiler.enable()
    for row in sample:
        renderer.lines(LIVE_STREAM, row)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(6)
    print("  cProfile of rendering the same rows again (warm caches):")
    text = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(text) if line.strip().startswith("ncalls"))
    print("\n".join("    " + line.strip() for line in text[start:start + 7] if line.strip()))
    fresh = Renderer("bench-cold")
    with Measure() as m:
        got = sum(len(fresh.lines(LIVE_STREAM, r)) for r in sample)
    print(f"  Renderer.lines, cold caches:            {got / m.wall:>9,.0f} pts/s")
    with Measure() as m:
        got = sum(len([p.to_line_protocol() for p in fresh.points(LIVE_STREAM, r)]) for r in sample)
    print(f"  Point(...).to_line_protocol() per point: {got / m.wall:>9,.0f} pts/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--profile-rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1, help="v1: ceiling and replicator, alternating")
    parser.add_argument("--skip-v2", action="store_true")
    args = parser.parse_args()
    rows = int(args.days * 86_400)
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicate-"))
    influxd = Influxd(tmp / "influxd").start()
    victoria = None if args.skip_v2 else VictoriaMetrics(tmp / "victoria").start()
    try:
        t = time.perf_counter()
        base = tmp / "backlog.db"
        fill(base, rows)
        points = rows * 7
        print(f"backlog: {rows} live rows ({args.days:g} days at 1/s) -> {points} points, "
              f"batches of {args.batch_size} lines; filled in {time.perf_counter() - t:.0f} s; "
              f"{os.cpu_count()} CPUs")

        print("v1: InfluxDB 1.x influxd /write" + (f", {args.rounds} rounds, each a ceiling then the replicator"
                                                     if args.rounds > 1 else ""))
        batches = rendered(base, "bench-ceiling", args.batch_size)
        bodies = [gzip.compress("\n".join(b).encode(), compresslevel=GZIP_LEVEL) for b in batches]
        del batches
        ratios = []
        for n in range(args.rounds):
            db = influxd.create_database(f"ceiling{n}")
            with Measure(influxd.proc.pid) as m:
                post_all(influxd.url, f"/write?db={db}&precision=ms", bodies, {"Content-Encoding": "gzip"})
            ceiling = report("ceiling: pre-rendered, pre-gzipped, POST", points, m)

            db = influxd.create_database(f"replicator{n}")
            replicator = Replicator(Outbox(fresh_copy(base, tmp / f"v1-{n}.db")), V1Writer(influxd.url, database=db),
                                    site="bench-v1", batch_size=args.batch_size)
            with Measure(influxd.proc.pid) as m:
                done = replicator.drain()
            assert done.error is None and done.points == points, done
            replicator.close()
            ratios.append(report("replicator (V1Writer)", points, m, ceiling) / ceiling)
            got = influxd.query('SELECT count("voltage") FROM "batteryStatus"', db)["results"][0]["series"][0]["values"][0][1]
            assert got == rows, (got, rows)
            influxd.query(f'DROP DATABASE "ceiling{n}"')
            influxd.query(f'DROP DATABASE "replicator{n}"')
        del bodies
        if args.rounds > 1:
            print("  replicator / ceiling, per round: " + ", ".join(f"{r:.2f}x" for r in ratios))

        if victoria is not None:
            print("v2: victoria-metrics /api/v2/write")
            replicator = Replicator(Outbox(fresh_copy(base, tmp / "v2.db")),
                                    V2Writer(victoria.url, token="t", org="o", bucket="b"),
                                    site="bench-v2", batch_size=args.batch_size)
            with Measure(victoria.proc.pid) as m:
                done = replicator.drain()
            assert done.error is None and done.points == points, done
            replicator.close()
            rate_rep = report("replicator (V2Writer, synchronous API)", points, m)

            from influxdb_client import InfluxDBClient, WriteOptions
            renderer = Renderer("bench-v2-batching")
            outbox = Outbox(base, readonly=True)
            stream = BY_NAME[LIVE_STREAM]
            client = InfluxDBClient(url=victoria.url, token="t", org="o", enable_gzip=True, timeout=60_000)
            errors = []
            with Measure(victoria.proc.pid) as m:
                api = client.write_api(write_options=WriteOptions(batch_size=args.batch_size, flush_interval=1_000,
                                                                  max_retries=0),
                                       error_callback=lambda conf, data, exc: errors.append(exc))
                position = 0
                while True:
                    chunk = outbox.rows_after(stream, position, 10_000)
                    if not chunk:
                        break
                    api.write(bucket="b", org="o",
                              record=[p for row in chunk for p in renderer.points(LIVE_STREAM, row)])
                    position = chunk[-1]["id"]
                api.close()  # waits until every batch is flushed
            client.close()
            outbox.close()
            assert not errors, errors[:3]
            rate_batch = report("influxdb-client batching writer (Points)", points, m)
            print(f"  replicator / batching writer: {rate_rep / rate_batch:.2f}x")

        where_the_time_goes(influxd, tmp, min(rows, args.profile_rows), args.batch_size)
    finally:
        influxd.stop()
        if victoria is not None:
            victoria.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
