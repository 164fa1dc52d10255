"""Benchmark (issue 12): several devices on one simulated RS485 bus, and what the store writes per sample.

The bus: two pty pairs joined by a relay in this process that passes each
frame on once its last byte would have crossed the wire at the baud rate
(10 bits per byte, 8N1, one shared half-duplex line; a plain socat pty pair
passes bytes at memory speed, which would make 9600 baud look like 115200).
On one end `kammthaar simulate --device unit=N,model=epever-tracer ...`
serves the units (the dead one `silent`), on the other the real
`kammthaar collect` polls the config's `[[devices]]`.

Per case (baud, interval_s, devices, one of them dead), over a window that
starts once the collector runs (and the dead device's breaker has opened):
- the achieved interval per alive device (from the stored rows' times), its
  cadence (interval_s / achieved; target with one dead: >= 90 %), beside the
  floor the link sets: per device and live poll, each request and answer at
  that baud plus the 3.5-character gaps plus `[modbus] inter_request_ms`,
  times the devices on the bus (none of it can go faster);
- the collector's CPU time (user + system, /proc) per stored sample, for
  projecting a Raspberry Pi (this machine's speed is printed beside it).
Cadence runs use `[store] commit_window_s = 0` (each pass its own commit,
counted in the CPU) and `timeout_s` 0.3, `retries` 1 so a dead device's
breaker opens within seconds (`--full`: the defaults, 1 s and 2).
Alongside, one collector at the default settings (one device, 5 s, slow groups
every 60 s, commit window 30 s) for the whole run: bytes it hands to write()
per stored live sample (/proc/PID/io wchar; target <= 2,300).

Run: .venv/bin/python bench/bus.py [--full]   (--quick, the default, stays under 2 minutes)
"""

from __future__ import annotations

import argparse
import math
import os
import select
import sqlite3
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_store import config  # noqa: E402
from edge_store.catalogue import MODELS  # noqa: E402
from edge_store.registers import LIVE, plan_blocks, registers_of  # noqa: E402
from bench.replicate import cpu_of  # noqa: E402
from bench.store import io_counters  # noqa: E402
from tests.support import KAMMTHAAR, SIMULATOR_READY, Process, rows_in  # noqa: E402

MODEL = "epever-tracer"
INTER_REQUEST_MS = config.load(None, environ={}).modbus.inter_request_ms  # the default; the bench keeps it
TARGET_CADENCE, TARGET_BYTES = 0.90, 2300
GROUP_TABLES = ("live_samples", "device_statistics", "device_settings", "device_clock")


class PacedBus:
    """Two pty pairs and a relay thread pacing frames at `baud`: `collector` and `simulator` are the paths."""

    def __init__(self, baud: int):
        self.baud = baud
        self._pairs = [os.openpty(), os.openpty()]
        for master, slave in self._pairs:
            tty.setraw(slave)
        self.collector, self.simulator = (os.ttyname(slave) for _, slave in self._pairs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        (a, _), (b, _) = self._pairs
        other = {a: b, b: a}
        line_free = 0.0
        pending: list[tuple[float, int, bytes]] = []
        while not self._stop.is_set():
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, dst, data = pending.pop(0)
                os.write(dst, data)
            timeout = 0.05 if not pending else max(0.0, pending[0][0] - now)
            try:
                ready, _, _ = select.select([a, b], [], [], timeout)
            except OSError:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the other side not open yet
                    time.sleep(0.01)
                    continue
                # The line is shared: a frame starts when the previous one has left the wire.
                line_free = max(time.monotonic(), line_free) + len(data) * 10 / self.baud
                pending.append((line_free, other[fd], data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for master, slave in self._pairs:
            os.close(master)
            os.close(slave)


def gap_s(baud: int) -> float:
    """The Modbus RTU silence between frames: 3.5 characters, 1.75 ms above 19200 baud."""
    return 1.75e-3 if baud > 19200 else 3.5 * 11 / baud


def link_floor_s(baud: int, inter_request_ms: float = INTER_REQUEST_MS) -> float:
    """Seconds the link needs for one live poll of one device: each block's request (8 bytes) and answer
    (5 + 2 per register), at `baud`, the gap after each frame, and the silence before each request."""
    catalogue = MODELS[MODEL]
    blocks = plan_blocks(registers_of(LIVE, catalogue.registers), catalogue.max_gap)
    total = 0.0
    for block in blocks:
        answer = 5 + (math.ceil(block.count / 8) if block.table in ("coil", "discrete") else 2 * block.count)
        total += (8 + answer) * 10 / baud + 2 * gap_s(baud) + inter_request_ms / 1000
    return total


def start(args: list[str], log: Path, ready_line: str | None = None) -> Process:
    """`kammthaar ARGS` at the defaults (no KAMMTHAAR_* variables, not even the tests' clean_env defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    return Process([*KAMMTHAAR, *args], log, env=env).start(ready_line=ready_line, timeout_s=20)


def write_config(path: Path, db: Path, port: str, baud: int, interval_s: float, devices: int, *,
                 window_s: float | None, timeout_s: float | None, retries: int | None) -> None:
    lines = ['[site]', 'id = "bench"', 'timezone = "UTC"', '[store]', f'path = "{db}"']
    if window_s is not None:
        lines.append(f"commit_window_s = {window_s}")
    lines += ["[modbus]", f'port = "{port}"', f"baudrate = {baud}", f"interval_s = {interval_s}"]
    if timeout_s is not None:
        lines += [f"timeout_s = {timeout_s}", f"retries = {retries}"]
    for unit in range(1, devices + 1):
        lines += ["[[devices]]", f'name = "d{unit}"', f'model = "{MODEL}"', f"unit = {unit}"]
    path.write_text("\n".join(lines) + "\n")


def simulator_args(port: str, baud: int, devices: int, dead: bool) -> list[str]:
    args = ["simulate", "--port", port, "--baudrate", str(baud), "--speed", "0"]
    for unit in range(1, devices + 1):
        args += ["--device", f"unit={unit},model={MODEL}" + (",silent" if dead and unit == devices else "")]
    return args


def live_times(db: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, list[int]] = {}
        for device, ts in conn.execute("SELECT device, ts_ms FROM live_samples ORDER BY ts_ms"):
            out.setdefault(device, []).append(ts)
        return out
    finally:
        conn.close()


def stored_rows(db: Path, since_ms: int, until_ms: int) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sum(conn.execute(f"SELECT count(*) FROM {t} WHERE ts_ms >= ? AND ts_ms < ?", (since_ms, until_ms))
                   .fetchone()[0] for t in GROUP_TABLES)
    finally:
        conn.close()


def run_case(tmp: Path, baud: int, interval_s: float, devices: int, dead: bool, seconds: float, full: bool) -> dict:
    name = f"{baud}-{interval_s:g}-{devices}{'-dead' if dead else ''}"
    bus = PacedBus(baud)
    db, cfg = tmp / f"{name}.db", tmp / f"{name}.toml"
    write_config(cfg, db, bus.collector, baud, interval_s, devices, window_s=0,
                 timeout_s=None if full else 0.3, retries=None if full else 1)
    sim = start(simulator_args(bus.simulator, baud, devices, dead), tmp / f"{name}-sim.log", SIMULATOR_READY)
    col = start(["--config", str(cfg), "collect"], tmp / f"{name}-collect.log")
    try:
        # The window starts once the collector stores (and the dead device is backed off).
        col.wait_for(lambda: rows_in(db, "live_samples") and (not dead or "is silent" in col.log()), 60,
                     "no live sample stored, or the dead device not backed off", poll_s=0.1)
        t0_ms, cpu0 = time.time_ns() // 1_000_000, cpu_of(col.pid)
        time.sleep(seconds)
        t1_ms, cpu1 = time.time_ns() // 1_000_000, cpu_of(col.pid)
    finally:
        col.stop(30)
        sim.stop(30)
        bus.close()
    times = live_times(db)
    alive = [f"d{u}" for u in range(1, devices + 1) if not (dead and u == devices)]
    achieved = {}
    for d in alive:
        window = [t for t in times.get(d, []) if t0_ms <= t < t1_ms]
        achieved[d] = (t1_ms - t0_ms) / 1000 / len(window) if window else math.inf
    rows = stored_rows(db, t0_ms, t1_ms)
    return {"achieved": achieved, "cpu_ms_per_sample": (cpu1 - cpu0) * 1000 / rows if rows else math.nan}


class DefaultsRun:
    """One collector at the default settings on its own 115200-baud bus for the whole benchmark. A watcher
    notes the collector's wchar each time a commit shows (its rows appear): the figure is the bytes between
    the first commit (migrations, the rollups' build, the state file are behind it) and the last one seen,
    over the rows those commits added."""

    def __init__(self, tmp: Path):
        self.bus = PacedBus(115200)
        self.db, cfg = tmp / "defaults.db", tmp / "defaults.toml"
        write_config(cfg, self.db, self.bus.collector, 115200, 5.0, 1, window_s=None, timeout_s=None, retries=None)
        self.sim = start(simulator_args(self.bus.simulator, 115200, 1, False), tmp / "defaults-sim.log",
                         SIMULATOR_READY)
        self.log = tmp / "defaults-collect.log"
        self.col = start(["--config", str(cfg), "collect"], self.log)
        self.commits: list[tuple[float, int, int, int]] = []  # (time, wchar, live rows, rows) after each commit
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        last = 0
        while not self._stop.wait(0.1):
            live, rows = counts(self.db)
            if live != last:
                self.commits.append((time.monotonic(), io_counters(self.col.pid)["wchar"], live, rows))
                last = live

    def finish(self) -> dict:
        self._stop.set()
        self._watcher.join()
        self.col.stop(30)
        self.sim.stop(30)
        self.bus.close()
        if len(self.commits) < 2:
            return {"commits": len(self.commits)}
        (t0, w0, l0, r0), (t1, w1, l1, r1) = self.commits[0], self.commits[-1]
        return {"commits": len(self.commits) - 1, "seconds": t1 - t0, "bytes": w1 - w0, "live": l1 - l0,
                "rows": r1 - r0}


def counts(db: Path) -> tuple[int, int]:
    """Live rows and rows of every group (0 while the file or a table does not exist)."""
    rows = [rows_in(db, t) for t in GROUP_TABLES]
    return rows[0], sum(rows)


def cases(full: bool) -> list[tuple[int, float, int, bool]]:
    if not full:
        return [(9600, 0.5, 1, False), (9600, 0.5, 4, False), (9600, 0.5, 4, True), (115200, 0.5, 4, False),
                (115200, 0.5, 4, True)]
    out = []
    for baud in (115200, 9600):
        for interval_s in (0.5, 5.0):
            for devices in (1, 2, 4):
                out += [(baud, interval_s, devices, False)] + ([(baud, interval_s, devices, True)] if devices > 1 else [])
    return out


def machine_speed() -> float:
    """Loop iterations per µs of this Python: a Pi's figure over this one scales the CPU times."""
    t = time.perf_counter()
    n = 0
    while n < 2_000_000:
        n += 1
    return 2.0 / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few cases, about 10 s each (the default)")
    mode.add_argument("--full", action="store_true", help="1, 2 and 4 devices at 115200 and 9600 baud, 0.5 and 5 s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kammthaar-bus-") as tmpdir:
        tmp = Path(tmpdir)
        print(f"bus benchmark ({'full' if args.full else 'quick'}), {MODEL} units, inter_request_ms "
              f"{INTER_REQUEST_MS:g}; this machine: {machine_speed():.0f} Python loop iterations per µs")
        defaults = DefaultsRun(tmp)
        print(f"{'baud':>6} {'interval':>8} {'devices':>7} {'dead':>4} | {'link floor':>10} {'floor':>6} | "
              f"{'achieved per alive device (s)':<30} {'of floor':>8} {'of all alive':>12} | {'CPU/sample':>10}")
        results = {}
        for baud, interval_s, devices, dead in cases(args.full):
            seconds = (60.0 if interval_s >= 5 else 15.0) if args.full else 10.0
            r = results[baud, interval_s, devices, dead] = run_case(tmp, baud, interval_s, devices, dead, seconds,
                                                                   args.full)
            floor = max(interval_s, (devices - dead) * link_floor_s(baud))
            got = list(r["achieved"].values())
            of_floor = floor / max(got)
            # With one dead: each alive device's cadence against the same bus with every device alive.
            alive = results.get((baud, interval_s, devices, False)) if dead else None
            if alive:
                ratio = min(alive["achieved"][d] / a for d, a in r["achieved"].items())
                vs = f"{ratio:>6.0%} {'ok' if ratio >= TARGET_CADENCE else 'MISSED':<5}"
            else:
                vs = f"{'':>12}"
            print(f"{baud:>6} {interval_s:>7g}s {devices:>7} {'yes' if dead else 'no':>4} | "
                  f"{devices * link_floor_s(baud) * 1000:>8.0f}ms {floor:>5.2f}s | "
                  f"{' '.join(f'{a:.3f}' for a in got):<30} {of_floor:>8.0%} {vs} | "
                  f"{r['cpu_ms_per_sample']:>7.2f} ms")
        d = defaults.finish()
        if d["commits"] < 1:
            print("defaults: fewer than two commits seen (a run under 30 s): no bytes figure")
            return
        per_live = d["bytes"] / d["live"]
        print(f"defaults (1 device, 5 s, slow groups 60 s, commit window 30 s): {d['commits']} window commits in "
              f"{d['seconds']:.0f} s, {d['bytes']:,} bytes handed to write() for {d['live']} live samples "
              f"({d['rows']} rows): {per_live:,.0f} per live sample, {d['bytes'] / d['rows']:,.0f} per stored row "
              f"(target <= {TARGET_BYTES:,}: {'ok' if per_live <= TARGET_BYTES else 'MISSED'}; no checkpoint in a "
              f"run this short: bench/store_bytes.py measures the steady state with them)")


if __name__ == "__main__":
    main()
