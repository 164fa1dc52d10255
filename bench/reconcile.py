"""Benchmark of reconciliation against a real influxd: a pass over `--days` days of one-second samples,
and how much a drain running beside it slows down.

`--days` days (default 3; issue 14 asks about 30, projected from the days measured: a pass costs the
same per day) of live samples at one per second and device statistics once a minute, in a fresh
SQLite store, replicated to influxd (temp config, loopback). Then:
- a pass (`Reconciler.run_pass`, nothing to repair): wall seconds, InfluxQL statements and requests,
  seconds per day, the projection to 30 days;
- a repair: one hour of one measurement deleted in influxd, the pass again;
- the drain alone: `Replicator.drain()` of a copy of the same backlog (watermarks at zero) into another
  database, points per second; then the same drain while another process runs passes over and over,
  pausing after each day as `kammthaar reconcile` does while its store has a backlog (here the backlog
  is in another copy: always). That is a technician running `kammthaar reconcile` by hand beside a
  daemon busy with a backlog; the daemon itself reconciles only once its backlog is sent. `--rounds`
  pairs, alternating; the ratio is the drain's speed beside reconciliation / alone, per pair.

Run: .venv/bin/python bench/reconcile.py [--days 3] [--drain-hours 12] [--rounds 3] [--pause-factor F]
Targets (issue 14): a pass over 30 days within a few minutes; the drain beside it >= 0.8x alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store import migrate  # noqa: E402
from edge_store.outbox import Outbox  # noqa: E402
from edge_store.registers import LIVE, STATS  # noqa: E402
from edge_store.store import Store  # noqa: E402
from replicator.influx_writer import V1Writer  # noqa: E402
from replicator.influxql import InfluxQLReader  # noqa: E402
from replicator.policy import Policy  # noqa: E402
from replicator.reconcile import Reconciler  # noqa: E402
from replicator.replicator import Replicator  # noqa: E402
from tests.fixtures_influx import Influxd  # noqa: E402
from tests.samples import STATS_VALUES  # noqa: E402
from bench.replicate import START_MS, fresh_copy, live_row  # noqa: E402
from replicator.commands import PAUSE_FACTOR  # noqa: E402

SITE = "bench"
REPO = Path(__file__).resolve().parents[1]


def fill(db: Path, days: float) -> int:
    migrate.upgrade(db)
    rows, chunk = int(days * 86_400), 20_000
    with Store(db) as store:
        for start in range(0, rows, chunk):
            store.insert_samples(LIVE, (live_row(i) for i in range(start, min(rows, start + chunk))))
        store.insert_samples(STATS, ({"ts_ms": START_MS + i * 60_000 + 7, "ntp_synced": True, "device": "epever",
                                      **STATS_VALUES} for i in range(rows // 60)))
    return rows


def drain(db: Path, url: str, database: str, stop_after_rows: int) -> tuple[int, float]:
    """(points, seconds) of a drain of the live backlog until `stop_after_rows` rows are sent."""
    rep = Replicator(Outbox(db), V1Writer(url, database=database), site=SITE, batch_size=5000)
    points = rows = 0
    t0 = time.perf_counter()
    while rows < stop_after_rows:
        result = rep.sync_once()
        if result.error is not None:
            raise RuntimeError(result.error)
        points, rows = points + result.points, rows + result.rows
        if not result.more:
            break
    elapsed = time.perf_counter() - t0
    rep.close()
    return points, elapsed


def passes_until_stopped(args) -> int:
    """Reconciliation passes over `args.beside` until SIGTERM; prints how many ran."""
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    outbox = Outbox(args.beside)
    writer = V1Writer(args.url, database=args.database)
    reconciler = Reconciler(outbox, InfluxQLReader(args.url, database=args.database, timeout_s=300), Policy(writer),
                            site=SITE, pause_factor=args.pause_factor, pause_always=True)
    print("ready", flush=True)
    done = 0
    while not stop:
        reconciler.run_pass()
        done += 1
    print(f"{done} passes ({reconciler.statements} statements, pause factor {args.pause_factor:g})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--drain-hours", type=float, default=12.0, help="backlog drained alone and beside")
    parser.add_argument("--rounds", type=int, default=3, help="drains alone and beside, alternating")
    parser.add_argument("--pause-factor", type=float, default=PAUSE_FACTOR,
                        help="the pause after each day of a pass beside the drain, x the day's time")
    parser.add_argument("--beside", help=argparse.SUPPRESS)  # internal: passes over this store until SIGTERM
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.beside:
        return passes_until_stopped(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    influxd = Influxd(tmp / "influxd").start()
    try:
        db = tmp / "k.db"
        t0 = time.perf_counter()
        rows = fill(db, args.days)
        pristine = fresh_copy(db, tmp / "pristine.db")
        print(f"store: {rows} live rows ({args.days:g} days at 1 s) + {rows // 60} statistics rows "
              f"in {time.perf_counter() - t0:.1f} s")
        database = influxd.create_database("data")
        t0 = time.perf_counter()
        rep = Replicator(Outbox(db), V1Writer(influxd.url, database=database), site=SITE, batch_size=5000)
        done = rep.drain()
        print(f"replicated: {done.points} points in {time.perf_counter() - t0:.1f} s")

        reader = InfluxQLReader(influxd.url, database=database, timeout_s=300)
        reconciler = Reconciler(rep.outbox, reader, Policy(rep.writer), site=SITE)
        t0 = time.perf_counter()
        findings = reconciler.run_pass()
        wall = time.perf_counter() - t0
        days = len(findings)
        checked = sum(f.points_local for f in findings)
        assert all(f.hours_differing == 0 for f in findings), [f.repaired for f in findings]
        print(f"pass: {days} days, {checked} points checked in {wall:.1f} s ({wall / days:.2f} s/day), "
              f"{reconciler.statements} InfluxQL statements in {reconciler.requests} requests")
        print(f"  projection to 30 days: {30 * wall / days:.0f} s, {30 * reconciler.statements // days} statements "
              f"in {30 * reconciler.requests // days} requests (target: a few minutes)")

        day = START_MS // 86_400_000 * 86_400_000 + 86_400_000
        influxd.query(f'DELETE FROM "batteryStatus" WHERE time >= {day + 5 * 3_600_000}ms '
                      f'AND time < {day + 6 * 3_600_000}ms', database)
        reconciler.statements = reconciler.requests = 0
        t0 = time.perf_counter()
        findings = reconciler.run_pass()
        repaired = [r for f in findings for r in f.repaired]
        print(f"pass with one hour deleted: {time.perf_counter() - t0:.1f} s, repaired {repaired}, "
              f"{reconciler.statements} statements in {reconciler.requests} requests")
        rep.close()
        reader.close()

        backlog = int(args.drain_hours * 3600)
        rates: dict[str, list[float]] = {"alone": [], "beside": []}
        for r in range(args.rounds):
            for mode in ("alone", "beside"):
                loop = None
                if mode == "beside":  # passes over and over in another process, as long as the drain runs
                    loop = subprocess.Popen([sys.executable, __file__, "--beside", str(db), "--url", influxd.url,
                                             "--database", database, "--pause-factor", str(args.pause_factor)],
                                            cwd=REPO, stdout=subprocess.PIPE, text=True)
                    assert loop.stdout.readline().startswith("ready")
                copy = fresh_copy(pristine, tmp / f"{mode}{r}.db")
                points, secs = drain(copy, influxd.url, influxd.create_database(f"{mode}{r}"), backlog)
                passes = ""
                if loop is not None:
                    loop.terminate()
                    passes = f", {loop.communicate(timeout=60)[0].strip()} beside it"
                rates[mode].append(points / secs)
                print(f"drain {mode}: {points} points in {secs:.1f} s, {points / secs:,.0f} points/s{passes}")
        ratios = sorted(b / a for a, b in zip(rates["alone"], rates["beside"]))
        print(f"  ratio beside / alone per round (each beside its own alone run): "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; median {ratios[len(ratios) // 2]:.2f}, best of each "
              f"{max(rates['beside']) / max(rates['alone']):.2f} (target >= 0.80; the machine is shared: noisy)")
    finally:
        influxd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
