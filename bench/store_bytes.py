"""Where the bytes go (issue 12): what the collector's store writes to the card per sample.

A store with a day of history (so its b-trees have their real depth) takes
`--hours` more at the default intervals (live every 5 s, rollups on,
synchronous NORMAL), through Store.write_round as the collector calls it:
once per poll round, then with the commit window (`[store] commit_window_s`,
default 30 s). Twice: live samples only (the run of bench/store.py that gave
the issue's 6.8 KB), and with the slow groups every 60 s. Printed per run:
- bytes handed to write() per live sample and per stored row (/proc/self/io
  `wchar`: WAL frames, checkpoints), beside the ceiling of the same run: raw
  sqlite3 committing one live row per commit into a table with no index;
- from the WAL itself (auto-checkpoint off for that run): commits, frames
  per commit and per live sample, and with `--pages` the b-tree (dbstat) of
  every frame's page;
- checkpoints: how many, the distinct pages each copies into the file.
Target (issue 12): <= 2,300 bytes per live sample at the defaults.

Run: .venv/bin/python bench/store_bytes.py [--hours 2] [--window 30] [--pages]
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import statistics
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store import migrate  # noqa: E402
from edge_store.db import WAL_AUTOCHECKPOINT_PAGES  # noqa: E402
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS, registers_of  # noqa: E402
from edge_store.rollups import RollupSettings  # noqa: E402
from edge_store.store import Store  # noqa: E402
from bench.store import io_counters  # noqa: E402
from tests.samples import expected_values  # noqa: E402

LIVE_MS, SLOW_MS, HOUR_MS = 5_000, 60_000, 3_600_000
T0 = 1_764_000_000_000
DEVICE = "epever"
WAL_HEADER, FRAME_HEADER = 32, 24
TARGET_BYTES = 2300


class Samples:
    """The samples of the default intervals from `start_ms`, in time order: (ts_ms, group, row)."""

    def __init__(self, slow: bool = True):
        self.slow = slow
        served = expected_values()
        self.values = {g: {r.name: served[r.name] for r in registers_of(g)} for g in (LIVE, STATS, SETTINGS, CLOCK)}

    def between(self, start_ms: int, end_ms: int):
        for i, ts in enumerate(range(start_ms, end_ms, LIVE_MS)):
            live = dict(self.values[LIVE], battery_voltage=12.0 + (i % 250) / 100, pv_power=(i * 0.37) % 400)
            yield ts, LIVE, live
            if self.slow and ts % SLOW_MS == 0:
                for group in (STATS, SETTINGS, CLOCK):
                    yield ts, group, self.values[group]


def history(path: Path, samples: Samples, settings: RollupSettings, end_ms: int) -> Store:
    """A migrated store holding a day of samples before `end_ms`, one hour per transaction."""
    migrate.upgrade(path)
    store = Store(path, rollups=settings)
    for hour in range(end_ms - 24 * HOUR_MS, end_ms, HOUR_MS):
        by_group = collections.defaultdict(list)
        for ts, group, values in samples.between(hour, hour + HOUR_MS):
            by_group[group].append({"ts_ms": ts, "ntp_synced": True, "device": DEVICE, **values})
        for group, rows in by_group.items():
            store.insert_samples(group, rows)
    with store.db.writing("checkpoint"):  # the thread's writer connection, which the checkpoint goes through
        pass
    store.db.query("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return store


def store_hour(store: Store, samples: Samples, start_ms: int, hours: float, window_ms: int) -> tuple[int, int]:
    """The collector's writes for `hours` from `start_ms`: one transaction per poll round, or, with a
    window, as the collector commits (`Collector.commit_due`): when holding on until the next poll
    would keep the oldest sample held longer than the window."""
    live = rows = 0
    held: list = []
    rounds = collections.defaultdict(list)
    for ts, group, values in samples.between(start_ms, start_ms + int(hours * HOUR_MS)):
        rounds[ts].append((group, {"ts_ms": ts, "ntp_synced": True, "device": DEVICE, **values}))
    for ts, batch in rounds.items():
        live += 1
        rows += len(batch)
        held += batch
        if ts + LIVE_MS - held[0][1]["ts_ms"] > window_ms:
            store.write_round(held)
            held = []
    if held:
        store.write_round(held)
    return live, rows


def wal_commits(wal: Path) -> list[list[int]]:
    """The pages of each committed transaction in a WAL file (frames of the current salt only)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits, pages = [], []
    at = WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(data):
        pgno, size_after = struct.unpack(">II", data[at:at + 8])
        if data[at + 8:at + 16] != salts:
            break
        pages.append(pgno)
        if size_after:
            commits.append(pages)
            pages = []
        at += FRAME_HEADER + page_size
    return commits


def btree_of_pages(path: Path) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        return {pgno: f"{name} ({kind})" for name, pgno, kind in conn.execute(
            "SELECT name, pageno, CASE WHEN pagetype = 'leaf' THEN 'leaf' ELSE 'interior' END FROM dbstat")}
    finally:
        conn.close()


def raw_ceiling(path: Path, samples: Samples, start_ms: int, hours: float) -> float:
    """Bytes per sample of raw sqlite3 committing only the live row in a table with no index."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size=1024")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    cols = ["ts_ms", "ntp_synced", "device", *samples.values[LIVE]]
    conn.execute(f"CREATE TABLE live ({', '.join(cols)})")
    sql = f"INSERT INTO live VALUES ({', '.join('?' * len(cols))})"
    rows = [(ts, 1, DEVICE, *v.values()) for ts, g, v in samples.between(start_ms - HOUR_MS, start_ms) if g == LIVE]
    conn.executemany(sql, rows)
    n = 0
    w0 = io_counters()["wchar"]
    for ts, group, values in samples.between(start_ms, start_ms + int(hours * HOUR_MS)):
        if group == LIVE:
            conn.execute(sql, (ts, 1, DEVICE, *values.values()))
            n += 1
    w1 = io_counters()["wchar"]
    conn.close()
    return (w1 - w0) / n


def measure(tmp: Path, name: str, samples: Samples, hours: float, window_s: float) -> dict:
    settings = RollupSettings("Europe/Paris", 15.0)
    start = T0 + 24 * HOUR_MS
    # Run 1: as the collector runs, auto-checkpoints included: what write() is handed.
    store = history(tmp / f"{name}-io.db", samples, settings, start)
    w0 = io_counters()["wchar"]
    live, rows = store_hour(store, samples, start, hours, int(window_s * 1000))
    w1 = io_counters()["wchar"]
    store.close()
    # Run 2: the same writes with auto-checkpoint off, so the WAL keeps every frame to attribute.
    path = tmp / f"{name}-wal.db"
    store = history(path, samples, settings, start)
    with store.db.writing("bench") as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    store_hour(store, samples, start, hours, int(window_s * 1000))
    commits = wal_commits(Path(str(path) + "-wal"))
    owners = btree_of_pages(path)
    store.close()
    frames = [p for c in commits for p in c]
    by_tree = collections.Counter(owners.get(p, "free list or header") for p in frames)
    # A checkpoint copies each distinct page of the WAL once, every WAL_AUTOCHECKPOINT_PAGES frames.
    n = WAL_AUTOCHECKPOINT_PAGES
    chunks = [frames[i:i + n] for i in range(0, len(frames), n)]
    distinct = statistics.fmean(len(set(c)) for c in chunks)
    return {"wchar": (w1 - w0) / live, "live": live, "rows": rows, "commits": len(commits), "frames": len(frames),
            "by_tree": by_tree, "cycles": len(frames) / n, "distinct_per_cycle": distinct}


def report(name: str, r: dict, ceiling: float, base: dict | None, pages: bool) -> None:
    live = r["live"]
    cut = f", {base['wchar'] / r['wchar']:.1f}x less than one transaction per poll" if base else ""
    print(f"  {name}: {r['wchar']:,.0f} bytes handed to write() per live sample, {r['wchar'] * live / r['rows']:,.0f} "
          f"per stored row ({r['wchar'] / ceiling:.1f}x the ceiling{cut})")
    print(f"    {r['commits']} commits, {r['frames'] / r['commits']:.2f} WAL frames (1,048 bytes) per commit, "
          f"{r['frames'] / live:.2f} per live sample; about {r['cycles']:.1f} checkpoints, each copying "
          f"~{r['distinct_per_cycle']:.0f} distinct pages (~{r['distinct_per_cycle'] * 1024 * r['cycles'] / live:,.0f} "
          f"bytes per live sample)")
    if pages:
        for tree, n in r["by_tree"].most_common():
            print(f"      {n / live:5.2f} frames per live sample  {tree}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=30.0, help="the commit window ([store] commit_window_s)")
    ap.add_argument("--pages", action="store_true", help="the b-tree of every frame")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kammthaar-bytes-") as tmpdir:
        tmp = Path(tmpdir)
        ceiling = raw_ceiling(tmp / "raw.db", Samples(), T0 + 24 * HOUR_MS, args.hours)
        print(f"store bytes: {args.hours:g} h at live 5 s after a day of history, rollups on, NORMAL, WAL "
              f"auto-checkpoint {WAL_AUTOCHECKPOINT_PAGES} pages; ceiling (raw sqlite3, one live row per commit, "
              f"no index): {ceiling:,.0f} bytes per sample")
        for slow in (False, True):
            samples = Samples(slow)
            print("live samples only (bench/store.py's rollups run; the issue's 6.8 KB)" if not slow else
                  "with the slow groups every 60 s (statistics, settings, clock: 3 rows a minute)")
            base = measure(tmp, f"poll-{slow}", samples, args.hours, 0)
            report("one transaction per poll round", base, ceiling, None, args.pages)
            r = measure(tmp, f"window-{slow}", samples, args.hours, args.window)
            report(f"commit window {args.window:g} s", r, ceiling, base, args.pages)
            print(f"    target <= {TARGET_BYTES:,} bytes per live sample: {'ok' if r['wchar'] <= TARGET_BYTES else 'MISSED'}")


if __name__ == "__main__":
    main()
