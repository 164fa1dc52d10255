"""Cost of alert rule evaluation per live sample, beside the store's single commit (issue 13).

Stores N live samples three ways on real SQLite files in a temporary directory:
without alerts, with the built-in rules, and with the built-in rules plus 50
custom rules; prints the time per sample and the added cost as a share of the
plain commit (target: at most +10 %). Values stay on the ok side, as on most
samples (a transition writes one event row more, rarely).

    python bench/alerts.py [--samples 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store import migrate  # noqa: E402
from edge_store.alerts import Engine, load_alerts  # noqa: E402
from edge_store.registers import LIVE  # noqa: E402
from edge_store.store import Store  # noqa: E402
from tests.samples import LIVE_VALUES  # noqa: E402

FIELDS = ("battery.voltage", "battery.current", "solar.power", "load.power", "battery.state_of_charge")
CUSTOM = [{"name": f"custom_{i}", "field": FIELDS[i % len(FIELDS)], "above": 1e6, "clear_at": 1e5, "for_s": 30}
          for i in range(50)]


def run(directory: Path, name: str, engine: Engine | None, n: int) -> float:
    path = directory / f"{name}.db"
    if not path.exists():
        migrate.upgrade(path)
    store = Store(path, alerts=engine)
    values = {**LIVE_VALUES, "battery_temperature": 20.0}
    for i in range(50):  # warm-up
        store.insert_sample(LIVE, i, True, "epever", values)
    start = time.perf_counter()
    for i in range(n):
        store.insert_sample(LIVE, 1_000_000 + i * 5000, True, "epever", values)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed / n


def evaluation_only(config, n: int) -> float:
    """on_sample alone on a quiet sample (no transition, so no connection is touched): seconds per sample."""
    engine = Engine(config)
    engine.loaded = True  # the state a running collector has: read once at start
    row = {**LIVE_VALUES, "battery_temperature": 20.0}
    start = time.perf_counter()
    for i in range(n):
        engine.on_sample(None, LIVE, i, "epever", row)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    builtin = load_alerts({})
    custom = load_alerts({"rules": CUSTOM})
    best = {"plain": float("inf"), "builtin": float("inf"), "custom": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # Interleaved rounds, the best of each kept: a shared machine's noise only ever adds time.
        for _ in range(args.rounds):
            for name, config in (("plain", None), ("builtin", builtin), ("custom", custom)):
                engine = None if config is None else Engine(config)
                best[name] = min(best[name], run(d, name, engine, args.samples))
    plain, with_builtin, with_custom = best["plain"], best["builtin"], best["custom"]
    alone = min(evaluation_only(custom, 20 * args.samples) for _ in range(args.rounds))
    print(f"{args.samples} live samples per run, best of {args.rounds} interleaved rounds")
    print(f"store commit alone:               {plain * 1e6:8.1f} us/sample")
    print(f"+ {len(builtin.rules):2d} built-in rules:            {with_builtin * 1e6:8.1f} us/sample "
          f"({(with_builtin / plain - 1) * 100:+.1f} %)")
    print(f"+ {len(custom.rules):2d} rules (built-in + 50 custom): {with_custom * 1e6:8.1f} us/sample "
          f"({(with_custom / plain - 1) * 100:+.1f} %; target <= +10 %)")
    print(f"evaluation alone, {len(custom.rules)} rules:       {alone * 1e6:8.1f} us/sample "
          f"({alone / plain * 100:.1f} % of the commit; the difference of whole runs is noisier)")


if __name__ == "__main__":
    main()

