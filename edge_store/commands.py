"""edge_store's commands (collect, simulate, scan, status, db, config, rollups) and its objects built from the config.

`register(subparsers)` adds them to `kammthaar`'s parser (kammthaar/cli.py);
each handler takes the parsed arguments, calls one function of the library
and returns an exit code. Our errors travel up to kammthaar/cli.py, which
turns them into one line and an exit code. Imports are inside the handlers,
so `kammthaar config show` does not load SQLAlchemy (the simulator's options,
which the parser needs, load pymodbus's constants).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from datetime import date
from pathlib import Path

from . import config

log = logging.getLogger("kammthaar")

EXIT_FAILURE = 1


def build_collector(cfg: config.Config):
    """The collector the config describes, on a migrated store with its rollups built."""
    from . import migrate
    from .alerts import Engine
    from .bus import DevicePoller
    from .catalogue import MODELS
    from .collector import Collector
    from .devices import buses
    from .link import Link
    from .modbus_reader import Reader
    from .rollups.rebuild import ensure_built
    from .store import Store

    migrate.ensure_schema(cfg.store.path)
    settings = rollup_settings(cfg)
    # The alert rules, each device with its own model's binding of them.
    alerts = Engine(cfg.alerts, cfg.device_models)
    store = Store(cfg.store.path, synchronous=cfg.store.synchronous, rollups=settings, alerts=alerts)
    # Rollups built in another zone (or before they existed) are rebuilt before the first sample.
    rebuilt = ensure_built(store, settings)
    if rebuilt is not None:
        log.info("rollups rebuilt for %s: %d days, %d months (%d days left as they were: samples pruned)",
                 settings.timezone, rebuilt.days, rebuilt.months, len(rebuilt.skipped_days))
    m = cfg.modbus
    pollers = []
    for group in buses(cfg.devices).values():
        # One link per port: the devices on it share its client and its silence between requests.
        link = Link(group[0].port, baudrate=group[0].baudrate, timeout_s=m.timeout_s,
                    inter_request_s=m.inter_request_ms / 1000)
        for d in group:
            reader = Reader(link=link, unit=d.unit, retries=d.retries, model=MODELS[d.model])
            pollers.append(DevicePoller(d.name, reader, interval_s=d.interval_s, slow_interval_s=d.slow_interval_s,
                                        probe_max_s=m.probe_max_s))
    return Collector(store, devices=pollers, retention_days=cfg.store.retention_days,
                     max_size_mb=cfg.store.max_size_mb, min_free_mb=cfg.store.min_free_mb,
                     replicating=bool(cfg.cloud.url), write_state=True, commit_window_s=cfg.store.commit_window_s)


def rollup_settings(cfg: config.Config):
    """The rollups' zone and longest integrated gap (gap_factor × the longest interval_s of the devices)."""
    from .rollups import RollupSettings

    # One longest gap for every device: the slowest device's, so none of its intervals is left out.
    return RollupSettings(cfg.site.timezone, cfg.rollups.gap_factor * max(d.interval_s for d in cfg.devices))


# -- handlers ----------------------------------------------------------------------

def cmd_config_show(args) -> int:
    sys.stdout.write(config.load(args.config).show())
    return 0


def cmd_db(args) -> int:
    from . import migrate

    path = config.load(args.config).store.path
    if args.action == "upgrade":
        migrate.upgrade(path, args.revision or "head")
        print(f"{path}: at revision {migrate.current(path)}")
    elif args.action == "downgrade":
        migrate.downgrade(path, args.revision or "base")
        print(f"{path}: at revision {migrate.current(path) or 'base (empty)'}")
    else:
        print(f"{path}: at revision {migrate.current(path) or 'base (empty)'}; code head is {migrate.head()}")
    return 0


def cmd_collect(args) -> int:
    collector = build_collector(config.load(args.config))
    try:
        if args.once:
            results = collector.poll_all_once()
            for (device, group), row_id in results.items():
                print(f"{device} {group}: " + (f"stored row {row_id}" if row_id else "read failed (see `kammthaar status`)"))
            return 0 if all(results.values()) else EXIT_FAILURE
        collector.install_signal_handlers()
        collector.run()
        return EXIT_FAILURE if collector.failed else 0
    finally:
        for device in collector.devices:
            device.reader.close()
        collector.store.close()


def cmd_simulate(args, parser: argparse.ArgumentParser) -> int:
    from .simulator.options import options_from_args
    from .simulator.serving import serve

    options = options_from_args(args, parser)
    # pymodbus logs every request it refuses; the simulator says what matters itself.
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    serve(options)
    return 0


def cmd_scan(args) -> int:
    from .scan import devices_toml, parse_units, scan

    units = parse_units(args.units)
    found = scan(args.port, baudrate=args.baudrate, units=units, timeout_s=args.timeout_s,
                 progress=_progress_bar if sys.stderr.isatty() else _progress_count)
    answering = ", ".join(f"{f.unit} ({f.model or 'unknown model'})" for f in found) or "none"
    print(f"# kammthaar scan of {args.port} at {args.baudrate} baud: {len(found)} of {len(units)} unit ids "
          f"answered: {answering}")
    if not found:
        print(f"kammthaar: no unit answered on {args.port} at {args.baudrate} baud "
              "(wiring, A/B swapped, another baud rate?)", file=sys.stderr)
        return EXIT_FAILURE
    print(devices_toml(found, port=args.port, baudrate=args.baudrate), end="")
    return 0


def _progress_bar(done: int, total: int, unit: int, width: int = 30) -> None:
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} unit {unit:<3}"
                     + ("\n" if done == total else ""))
    sys.stderr.flush()


def _progress_count(done: int, total: int, unit: int) -> None:
    print(f"probed {done}/{total} (unit {unit})", file=sys.stderr, flush=True)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


def cmd_status(args) -> int:
    from . import migrate
    from .status_report import report
    from .store import Store

    cfg = config.load(args.config)
    path = cfg.store.path
    if not Path(path).exists():
        print(f"no database at {path} yet: run `kammthaar collect` or `kammthaar demo`")
        return EXIT_FAILURE
    migrate.ensure_schema(path)
    with Store(path, readonly=True) as store:
        print(report(store, cfg))
    return 0


def cmd_rollups(args) -> int:
    from . import migrate
    from .rollups.rebuild import rebuild
    from .store import Store

    cfg = config.load(args.config)
    migrate.ensure_schema(cfg.store.path)
    with Store(cfg.store.path, synchronous=cfg.store.synchronous) as store:
        result = rebuild(store, rollup_settings(cfg), from_day=args.from_day, to_day=args.to_day, progress=True)
    print(f"{cfg.store.path}: rebuilt {result.days} days and {result.months} months in {result.timezone}"
          + (f"; {len(result.skipped_days)} days kept as they were (their samples were pruned)"
             if result.skipped_days else ""))
    return 0


def _day_arg(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


# -- parser ------------------------------------------------------------------------

def register(sub) -> None:
    """Add edge_store's subcommands to `kammthaar`'s subparsers."""
    from .simulator.options import add_arguments

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

    p = sub.add_parser("simulate", help="simulated controllers (EPEVER Tracer, Renogy Rover) on a serial port or TCP")
    add_arguments(p)
    # The parser goes along so that a bad flag value ends in its usage line, naming the flag.
    p.set_defaults(func=functools.partial(cmd_simulate, parser=p))

    from .scan import DEFAULT_TIMEOUT_S, DEFAULT_UNITS

    p = sub.add_parser("scan", help="find the controllers on a bus and print the [[devices]] block to paste")
    p.add_argument("--port", required=True, help="serial device (or tcp://, rtu+tcp:// as [modbus] port)")
    p.add_argument("--baudrate", type=int, default=115200, help="bus speed (default 115200; a Renogy Rover: 9600)")
    p.add_argument("--units", default=DEFAULT_UNITS, help=f"unit ids to probe, e.g. 1-16 or 1,16,17,255 "
                   f"(default {DEFAULT_UNITS})")
    p.add_argument("--timeout-s", type=_positive, default=DEFAULT_TIMEOUT_S,
                   help=f"wait for an answer this long; each silent unit costs it once (default {DEFAULT_TIMEOUT_S})")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("status", help="a human-readable summary of the store and the collector")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("rollups", help="daily and monthly statistics and minute buckets")
    p.add_argument("action", choices=["rebuild"], help="rebuild: recompute them from the raw samples")
    p.add_argument("--from", dest="from_day", type=_day_arg, metavar="DATE", help="first local day (YYYY-MM-DD)")
    p.add_argument("--to", dest="to_day", type=_day_arg, metavar="DATE", help="last local day (YYYY-MM-DD), inclusive")
    p.set_defaults(func=cmd_rollups)

