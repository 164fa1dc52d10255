"""`kammthaar`: the command line, a thin layer over the library.

Each subcommand parses its arguments, calls one function, and turns our
errors into one clear line and an exit code (2 for bad config or usage,
1 for a failure at run time). No tracebacks for expected errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from . import config as config_mod
from .errors import ConfigError, KammthaarError

log = logging.getLogger("kammthaar")

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load_config(args) -> config_mod.Config:
    return config_mod.load(args.config)


# -- subcommands ---------------------------------------------------------------

def cmd_config_show(args) -> int:
    sys.stdout.write(_load_config(args).show())
    return 0


def cmd_db(args) -> int:
    from . import migrate

    cfg = _load_config(args)
    path = cfg.store.path
    if args.action == "upgrade":
        migrate.upgrade(path, args.revision or "head")
        print(f"{path}: at revision {migrate.current(path)}")
    elif args.action == "downgrade":
        migrate.downgrade(path, args.revision or "base")
        print(f"{path}: at revision {migrate.current(path) or 'base (empty)'}")
    else:
        print(f"{path}: at revision {migrate.current(path) or 'base (empty)'}; code head is {migrate.head()}")
    return 0


def build_collector(cfg: config_mod.Config):
    """The collector the config describes, on a migrated store."""
    from . import migrate
    from .collector import Collector
    from .reader import Reader
    from .store import Store

    migrate.upgrade(cfg.store.path)
    store = Store(cfg.store.path, synchronous=cfg.store.synchronous)
    m = cfg.modbus
    reader = Reader(m.port, unit=m.unit, baudrate=m.baudrate, timeout_s=m.timeout_s, retries=m.retries)
    return Collector(store, reader, device=m.device, interval_s=m.interval_s,
                     slow_interval_s=m.slow_interval_s, retention_days=cfg.store.retention_days)


def cmd_collect(args) -> int:
    cfg = _load_config(args)
    collector = build_collector(cfg)
    try:
        if args.once:
            results = collector.poll_all_once()
            for group, row_id in results.items():
                print(f"{group}: " + (f"stored row {row_id}" if row_id else "read failed (see `kammthaar status`)"))
            return 0 if all(results.values()) else EXIT_FAILURE
        collector.install_signal_handlers()
        collector.run()
        return 0
    finally:
        collector.reader.close()
        collector.store.close()


def cmd_simulate(args) -> int:
    from .simulator import server

    server.serve(server.options_from_args(args))
    return 0


def cmd_status(args) -> int:
    from . import migrate
    from .status_report import report
    from .store import Store

    cfg = _load_config(args)
    path = cfg.store.path
    if not Path(path).exists():
        print(f"no database at {path} yet: run `kammthaar collect` or `kammthaar demo`")
        return EXIT_FAILURE
    migrate.upgrade(path)
    with Store(path, readonly=True) as store:
        print(report(store, cfg))
    return 0


def cmd_demo(args) -> int:
    """Simulator + collector on embedded defaults, until Ctrl-C."""
    cfg = _load_config(args)
    port = cfg.modbus.port
    sim = None
    if port.startswith(("tcp://", "rtu+tcp://")):
        scheme, hostport = port.split("://", 1)
        framer = "rtu" if scheme == "rtu+tcp" else "socket"
        sim = subprocess.Popen([sys.executable, "-m", "edge_store.cli", "simulate", "--tcp", hostport,
                                "--framer", framer, "--speed", str(args.speed)])
        time.sleep(1.0)
        if sim.poll() is not None:
            print(f"the simulator could not start on {hostport} (is the port in use?)", file=sys.stderr)
            return EXIT_FAILURE
    db = os.path.abspath(cfg.store.path)
    print(f"Kammthaar demo: simulated EPEVER on {port}, samples every {cfg.modbus.interval_s:g}s into {db}\n"
          f"  look:   sqlite3 {db} 'SELECT * FROM v_latest'\n"
          f"          kammthaar status\n"
          f"  stop:   Ctrl-C", flush=True)
    collector = build_collector(cfg)
    try:
        collector.install_signal_handlers()
        collector.run()
    finally:
        collector.store.close()
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(5)
            except subprocess.TimeoutExpired:
                sim.kill()
    return 0


# -- parser --------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kammthaar", description="Kammthaar Edge: off-grid solar monitoring.")
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (default: $KAMMTHAAR_CONFIG, else embedded defaults)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("config", help="show the effective configuration")
    p.add_argument("action", choices=["show"])
    p.set_defaults(func=cmd_config_show)

    p = sub.add_parser("db", help="database migrations")
    p.add_argument("action", choices=["upgrade", "downgrade", "current"])
    p.add_argument("revision", nargs="?", help="target revision (upgrade: head; downgrade: base)")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("collect", help="poll the controller and store every sample")
    p.add_argument("--once", action="store_true", help="one poll of every group, live and slow, then exit")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("simulate", help="an EPEVER Tracer simulator on a serial port or TCP")
    try:
        from .simulator import server
    except ImportError:  # pragma: no cover - the simulator ships with the package
        server = None
    if server is not None:
        server.add_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("status", help="a human-readable summary of the store and the collector")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("demo", help="run the simulator and the collector on embedded defaults")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"kammthaar: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KammthaarError as exc:
        print(f"kammthaar: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
