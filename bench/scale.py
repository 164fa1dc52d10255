"""Benchmark (issue 17): the same cost on day 1 and in year 10.

One store grows through the real Store path (rollups in the same transactions)
at the default intervals (live every 5 s, the slow groups every 60 s): after 1,
30 and 90 days it prints the p50 of `/health`, `/metrics`, `/statistics/monthly`,
`/statistics/daily` and a 24 h series (the in-process Falcon app, the app's
clock at the newest sample), `kammthaar status` (its report, in-process), the
replicator's pending check and the backlog summary, with nothing replicated and
with the cloud caught up, and an hourly prune pass. A second store holds 10
years of daily rows (the rebuild's own statement) and one day of samples: the
monthly figures against day 1. Then the 90-day store is pruned to 30 days (a
retention lowered), one chunk per step: the longest step is the longest the
write lock was held.

The ceiling is the 1-day figure of the same run: targets are each within 1.5x
at 90 days (monthly ones also at 10 years), /health p50 < 5 ms and /metrics
< 10 ms at 90 days, no prune step over 0.5 s.

Run: .venv/bin/python bench/scale.py [--days 1,30,90] [--reps 25] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import falcon.testing  # noqa: E402

from api.app import Settings, create_app  # noqa: E402
from api.sources import LocalSource, Sources  # noqa: E402
from api.users import Users  # noqa: E402
from edge_store import config, migrate  # noqa: E402
from edge_store.outbox import BY_NAME, Outbox  # noqa: E402
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS, registers_of  # noqa: E402
from edge_store.rollups import Periods, RollupSettings, max_version, sql as rollup_sql  # noqa: E402
from edge_store.status_report import report  # noqa: E402
from edge_store.store import Store  # noqa: E402
from tests.samples import expected_values  # noqa: E402

ZONE, SITE, DEVICE = "Europe/Paris", "bench", "epever"
LIVE_MS, SLOW_MS = 5_000, 60_000
DAY_MS = 86_400_000
USER, PASSWORD, SECRET = "bench", "bench-password-1", "bench-secret-" + "x" * 40
TARGET = 1.5


def p50(fn, reps: int) -> float:
    fn()  # warm: connections, caches
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


class Filler:
    """Samples at the default intervals through Store.insert_samples, one hour per transaction."""

    def __init__(self, store: Store, start_ms: int):
        served = expected_values()
        self.values = {g: {r.name: served[r.name] for r in registers_of(g)} for g in (LIVE, STATS, SETTINGS, CLOCK)}
        self.store = store
        self.next_ms = start_ms

    def until(self, end_ms: int) -> None:
        while self.next_ms < end_ms:
            hour_end = min(end_ms, self.next_ms + 3_600_000)
            live = []
            for i, ts in enumerate(range(self.next_ms, hour_end, LIVE_MS)):
                row = {"ts_ms": ts, "ntp_synced": True, "device": DEVICE, **self.values[LIVE]}
                row["pv_power"] = 50.0 + (ts // LIVE_MS) % 40  # energy that is not constant
                live.append(row)
            self.store.insert_samples(LIVE, live)
            first_slow = self.next_ms + (-self.next_ms) % SLOW_MS
            for group in (STATS, SETTINGS, CLOCK):
                self.store.insert_samples(group, [{"ts_ms": ts, "ntp_synced": True, "device": DEVICE,
                                                   **self.values[group]}
                                                  for ts in range(first_slow, hour_end, SLOW_MS)])
            self.next_ms = hour_end


class Probe:
    """The operations measured on one store file, at a clock."""

    def __init__(self, path: Path, clock_ms: int):
        self.path = path
        self.clock_ms = clock_ms
        self.local = LocalSource(str(path), site=SITE, device=DEVICE)
        settings = Settings(site=SITE, device=DEVICE, timezone=ZONE, interval_s=5.0, slow_interval_s=60.0,
                            jwt_secret=SECRET, cookie_secure=False, store_path=str(path),
                            access_ttl_s=400 * 86_400)  # the app's clock is the data's, days behind PyJWT's
        self.users = Users(path)
        if self.users.get(USER) is None:
            self.users.add(USER, PASSWORD)
        self.client = falcon.testing.TestClient(create_app(settings, Sources([self.local]), self.users,
                                                           clock_ms=lambda: self.clock_ms))
        resp = self.client.simulate_post("/login", json={"username": USER, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        self.headers = {"Authorization": f"Bearer {resp.json['access_token']}"}
        os.environ.update(KAMMTHAAR_STORE_PATH=str(path), KAMMTHAAR_SITE_TIMEZONE=ZONE, KAMMTHAAR_SITE_ID=SITE)
        self.cfg = config.load(None)
        self.store = Store(path, readonly=True)
        self.outbox = Outbox(path)

    def get(self, path: str) -> None:
        resp = self.client.simulate_get(path, headers=self.headers)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])

    def ops(self) -> dict:
        # The newest day and month alone: the same rows returned whatever the store holds (the defaults,
        # 30 days and 12 months, return as many rows as there are, up to those).
        day = Periods(ZONE).day(self.clock_ms - 1)[0]
        month = day[:7]
        return {
            "/health": lambda: self.get("/health"),
            "/metrics": lambda: self.get("/metrics"),
            "/statistics/monthly": lambda: self.get("/statistics/monthly"),
            "/statistics/monthly, newest month": lambda: self.get(f"/statistics/monthly?from={month}&to={month}"),
            "/statistics/daily": lambda: self.get("/statistics/daily"),
            "/statistics/daily, newest day": lambda: self.get(f"/statistics/daily?from={day}&to={day}"),
            "24 h series": lambda: self.get("/battery/last/24h/voltage"),
            "kammthaar status": lambda: report(self.store, self.cfg),
            "pending check": self.outbox.pending,
            "backlog summary": self.outbox.summary,
            "monthly batch read": lambda: self.outbox.rows_after(
                BY_NAME["rollup_monthly"], self.outbox.watermarks()["rollup_monthly"], 100),
        }

    def catch_up(self) -> None:
        """The cloud has everything: every watermark at its stream's head."""
        for name, (_, head) in self.outbox.pending().items():
            self.outbox.commit(BY_NAME[name], head, points=0, bytes_sent=0)

    def close(self) -> None:
        self.store.close()
        self.outbox.close()
        self.users.close()
        self.local.db.close()


def measure(path: Path, clock_ms: int, reps: int, names: list[str] | None = None,
            prefixes: tuple[str, ...] = ()) -> dict[str, float]:
    probe = Probe(path, clock_ms)
    try:
        out = {}
        ops = {name: fn for name, fn in probe.ops().items()
               if names is None or name in names or name.startswith(prefixes or ("\0",))}
        for name, fn in ops.items():
            out[f"{name} (nothing sent)"] = p50(fn, reps if "status" not in name else max(5, reps // 5))
        probe.catch_up()
        for name, fn in ops.items():
            out[f"{name} (caught up)"] = p50(fn, reps if "status" not in name else max(5, reps // 5))
        return out
    finally:
        probe.close()


def prune_pass(store: Store, oldest_ms: int, reps: int = 3) -> tuple[float, int]:
    """The hourly prune at steady state: the oldest hour goes, `reps` times. (median ms, rows each)."""
    times, rows = [], 0
    for k in range(1, reps + 1):
        t = time.perf_counter()
        rows = store.prune(oldest_ms + k * 3_600_000)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, rows


def ten_years(path: Path, days: int, end_ms: int) -> int:
    """`days` daily rows ending the day before `end_ms`'s, through the rebuild's DAILY_REPLACE, then one
    day of samples through the Store; the clock for the probe."""
    store = Store(path, rollups=RollupSettings(ZONE, 15.0))
    periods = Periods(ZONE)
    last = date.fromisoformat(periods.day(end_ms - DAY_MS)[0])
    with store.db.writing("bench: daily rows") as db:
        top = max_version(db)
        for k in range(days, 0, -1):
            d = last - timedelta(days=k - 1)
            start, end = periods.day_bounds(d)
            ms, me = periods.month(d.isoformat()[:7])
            top += 1
            db.execute(rollup_sql.DAILY_REPLACE, {
                "device": DEVICE, "day": d.isoformat(), "timezone": ZONE, "start_ms": start, "end_ms": end,
                "battery_voltage_min": 12.1, "battery_voltage_max": 14.2, "pv_voltage_min": 0.0,
                "pv_voltage_max": 19.0, "soc_min": 40, "soc_max": 100, "battery_temperature_min": 5.0,
                "battery_temperature_max": 20.0, "energy_generated_kwh": 1.2, "energy_consumed_kwh": 0.8,
                "battery_charge_ah": 40.0, "battery_discharge_ah": 35.0, "battery_charge_kwh": 0.5,
                "battery_discharge_kwh": 0.45, "samples": 17280, "first_ts_ms": start,
                "last_ts_ms": end - LIVE_MS, "covered_ms": end - start - LIVE_MS, "device_generated_kwh": 1.25,
                "device_consumed_kwh": 0.82, "device_stats_ts_ms": end - SLOW_MS,
                "device_month_generated_kwh": 1.25 * d.day, "device_month_consumed_kwh": 0.82 * d.day,
                "month_start_ms": ms, "month_end_ms": me, "version": top})
    Filler(store, periods.day_bounds(last + timedelta(days=1))[0]).until(end_ms)
    store.close()
    return end_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", default="1,30,90", help="store sizes to measure, in days")
    ap.add_argument("--years", type=int, default=10, help="years of daily rows in the second store")
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the files go (default: in memory, as the issue measured)")
    args = ap.parse_args()
    stages = sorted(int(d) for d in args.days.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="kammthaar-scale-", dir=args.dir))
    try:
        run(tmp, stages, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, stages: list[int], args) -> None:
    now = int(time.time() * 1000)
    t0 = now - now % 3_600_000 - stages[-1] * DAY_MS
    path = tmp / "scale.db"
    migrate.upgrade(path)
    store = Store(path, rollups=RollupSettings(ZONE, 15.0))
    filler = Filler(store, t0)
    results: dict[str, dict[str, float]] = {}
    prunes: dict[str, tuple[float, int]] = {}
    oldest = t0
    for days in stages:
        t = time.perf_counter()
        filler.until(t0 + days * DAY_MS)
        fill_s = time.perf_counter() - t
        live = store.rows_kept(LIVE)
        print(f"{days} d: {live} live rows, file {os.path.getsize(path) / 1e6:.0f} MB "
              f"({os.path.getsize(path) / live:.0f} bytes per live sample), filled in {fill_s:.0f} s", flush=True)
        # Each stage starts with nothing replicated: the watermarks of the stage before go back to 0.
        with store.db.writing("bench: watermarks back") as db:
            db.execute("DELETE FROM replication_watermarks")
        results[f"{days} d"] = measure(path, filler.next_ms, args.reps)
        prunes[f"{days} d"] = prune_pass(store, oldest)
        oldest += 3 * 3_600_000
    label = f"{args.years} y"
    ypath = tmp / "years.db"
    migrate.upgrade(ypath)
    clock = ten_years(ypath, args.years * 365, filler.next_ms)
    results[label] = measure(ypath, clock, args.reps, ["/health", "/metrics", "pending check", "backlog summary",
                                                       "monthly batch read"], prefixes=("/statistics/",))

    first = f"{stages[0]} d"
    cols = [f"{d} d" for d in stages] + [label]
    print(f"\np50 in ms (ratio: largest store / {first}; target <= {TARGET}x)")
    print(f"{'operation':42}" + "".join(f"{c:>10}" for c in cols) + f"{'ratio':>8}{'10y ratio':>10}")
    for op in results[first]:
        row = [results[c].get(op) for c in cols]
        ratio = row[-2] / row[0]
        yr = row[-1] / row[0] if row[-1] is not None else None
        print(f"{op:42}" + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in row)
              + f"{ratio:7.2f}x" + (f"{yr:9.2f}x" if yr is not None else ""))
    big = results[f"{stages[-1]} d"]
    print(f"\n/health p50 at {stages[-1]} d: {big['/health (nothing sent)']:.2f} ms nothing sent, "
          f"{big['/health (caught up)']:.2f} ms caught up (target < 5 ms)")
    print(f"/metrics p50 at {stages[-1]} d: {big['/metrics (nothing sent)']:.2f} ms nothing sent, "
          f"{big['/metrics (caught up)']:.2f} ms caught up (target < 10 ms)")
    print("hourly prune pass (the oldest hour): " + ", ".join(f"{k} {v[0]:.1f} ms ({v[1]} rows)"
                                                               for k, v in prunes.items()))

    # A retention lowered: the 90-day store pruned to 30 days, one chunk per step.
    cut = filler.next_ms - 30 * DAY_MS
    steps, total, done = [], 0, False
    while not done:
        t = time.perf_counter()
        n, done = store.prune_step(cut, budget_s=0)
        steps.append(time.perf_counter() - t)
        total += n
    print(f"prune to 30 days: {total} rows in {len(steps)} steps of at most one chunk, {sum(steps):.1f} s; "
          f"longest step {max(steps) * 1000:.0f} ms, median {statistics.median(steps) * 1000:.0f} ms "
          f"(target: no transaction over 500 ms)")
    size = os.path.getsize(path)
    with store.db.reading("bench: free pages") as db:
        free = db.execute("PRAGMA freelist_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    print(f"after it: file {size / 1e6:.0f} MB, {free / 1e6:.0f} MB of it free pages (reused by the next samples)")
    store.close()


if __name__ == "__main__":
    main()
