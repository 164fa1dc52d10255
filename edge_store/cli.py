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

    from .rollups.rebuild import ensure_built

    migrate.ensure_schema(cfg.store.path)
    settings = rollup_settings(cfg)
    store = Store(cfg.store.path, synchronous=cfg.store.synchronous, rollups=settings)
    # Rollups built in another zone (or before they existed) are rebuilt before the first sample.
    rebuilt = ensure_built(store, settings)
    if rebuilt is not None:
        log.info("rollups rebuilt for %s: %d days, %d months (%d days left as they were: samples pruned)",
                 settings.timezone, rebuilt.days, rebuilt.months, len(rebuilt.skipped_days))
    m = cfg.modbus
    reader = Reader(m.port, unit=m.unit, baudrate=m.baudrate, timeout_s=m.timeout_s, retries=m.retries)
    return Collector(store, reader, device=m.device, interval_s=m.interval_s,
                     slow_interval_s=m.slow_interval_s, retention_days=cfg.store.retention_days,
                     max_size_mb=cfg.store.max_size_mb, replicating=bool(cfg.cloud.url))


def rollup_settings(cfg: config_mod.Config):
    """The rollups' zone and longest integrated gap, from the config."""
    from .rollups import RollupSettings

    return RollupSettings(cfg.site.timezone, cfg.rollups.gap_factor * cfg.modbus.interval_s)


def cmd_rollups(args) -> int:
    from . import migrate
    from .rollups.rebuild import rebuild
    from .store import Store

    cfg = _load_config(args)
    migrate.ensure_schema(cfg.store.path)
    with Store(cfg.store.path, synchronous=cfg.store.synchronous) as store:
        result = rebuild(store, rollup_settings(cfg), from_day=args.from_day, to_day=args.to_day, progress=True)
    print(f"{cfg.store.path}: rebuilt {result.days} days and {result.months} months in {result.timezone}"
          + (f"; {len(result.skipped_days)} days kept as they were (their samples were pruned)"
             if result.skipped_days else ""))
    return 0


def _day_arg(value: str) -> str:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


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
    migrate.ensure_schema(path)
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
    try:
        api_proc, url, login = _start_demo_api(args, cfg)
    except KammthaarError:
        _stop(sim)
        raise
    print(f"Kammthaar demo: simulated EPEVER on {port}, samples every {cfg.modbus.interval_s:g}s into {db}\n"
          f"  API:    {url}   docs: {url}/api/swagger-ui\n"
          f"  login:  user {login[0]!r}, password {login[1]!r} (shown once; new at every demo start)\n"
          f"          curl -s -X POST {url}/login -H 'Content-Type: application/json' "
          f"-d '{{\"username\": \"{login[0]}\", \"password\": \"{login[1]}\"}}'\n"
          f"  look:   sqlite3 {db} 'SELECT * FROM v_latest'\n"
          f"          kammthaar status\n"
          f"  stop:   Ctrl-C", flush=True)
    collector = build_collector(cfg)
    try:
        collector.install_signal_handlers()
        collector.run()
    finally:
        collector.store.close()
        _stop(api_proc)
        _stop(sim)
    return 0


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _start_demo_api(args, cfg: config_mod.Config) -> tuple[subprocess.Popen, str, tuple[str, str]]:
    """`kammthaar serve` for the demo: a generated secret unless the config has a strong one, the demo
    user with a new password; waits until /health answers. (process, URL, (user, password))."""
    import urllib.error
    import urllib.request

    from api.auth import generate_secret, secret_problem
    from api.users import Users, demo_login

    from . import migrate

    migrate.ensure_schema(cfg.store.path)
    users = Users(cfg.store.path)
    try:
        login = demo_login(users)
    finally:
        users.close()
    env = dict(os.environ)
    if secret_problem(cfg.api.jwt_secret):
        env[config_mod.ENV_PREFIX + "API_JWT_SECRET"] = generate_secret()
    if not cfg.api.cors_origins:
        env[config_mod.ENV_PREFIX + "API_CORS_ORIGINS"] = "http://localhost:4200"  # the dashboard's dev server
    command = [sys.executable, "-m", "edge_store.cli", "--log-level", "warning"]
    if args.config:
        command += ["-c", args.config]
    proc = subprocess.Popen([*command, "serve"], env=env)
    host, _, listen_port = cfg.api.listen.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '[::]') else host}:{listen_port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise KammthaarError(f"the API could not start on {cfg.api.listen} (is the port in use?)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except urllib.error.HTTPError:
            break  # it answers (503 until the first sample)
        except OSError:
            if time.monotonic() > deadline:
                _stop(proc)
                raise KammthaarError(f"the API did not answer on {url} within 30 s")
            time.sleep(0.2)
    return proc, url, login


def build_replicator(cfg: config_mod.Config):
    """The replicator the [cloud] section describes, on a migrated store (needs [cloud] url)."""
    from replicator.replicator import Replicator, fingerprint
    from replicator.writer import V1Writer, V2Writer

    from . import migrate
    from .outbox import Outbox

    c = cfg.cloud
    needed = ("bucket",) if c.api == "v2" else ("database",)
    for key in needed:
        if not getattr(c, key):
            raise ConfigError(f"config: [cloud] {key} is required with api = \"{c.api}\" "
                              f"(or KAMMTHAAR_CLOUD_{key.upper()})")
    if c.api == "v2":
        writer = V2Writer(c.url, token=c.token, org=c.org, bucket=c.bucket, timeout_s=c.timeout_s)
        credentials = fingerprint(c.url, c.api, c.token, c.org)
    else:
        writer = V1Writer(c.url, database=c.database, retention_policy=c.retention_policy,
                          username=c.username, password=c.password, timeout_s=c.timeout_s)
        credentials = fingerprint(c.url, c.api, c.username, c.password)
    migrate.ensure_schema(cfg.store.path)
    outbox = Outbox(cfg.store.path, synchronous=cfg.store.synchronous)
    return Replicator(outbox, writer, site=cfg.site.id, batch_size=c.batch_size, interval_s=c.interval_s,
                      max_backlog_age_days=c.max_backlog_age_days, credentials=credentials)


def cmd_replicate(args) -> int:
    import signal
    import threading

    cfg = _load_config(args)
    if not cfg.cloud.url:
        message = ("no [cloud] url configured: the replicator has nothing to do and idles "
                   "(set [cloud] url, or KAMMTHAAR_CLOUD_URL)")
        if args.once:
            print(message)
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.warning(message)
        while not stop.wait(3600):
            log.warning(message)
        return 0
    replicator = build_replicator(cfg)
    try:
        replicator.install_signal_handlers()
        if not args.once:
            replicator.run()
            return 0
        from tqdm import tqdm

        backlog = replicator.outbox.summary()["backlog_rows"]
        with tqdm(total=backlog, unit="rows", desc="replicating", mininterval=0.5, file=sys.stderr) as bar:
            done = replicator.drain(progress=bar.update)
        print(f"{done.rows} rows, {done.points} points, {done.bytes} bytes sent to {replicator.writer.url}"
              + (f"; {done.dead} points refused (see v_dead_letters)" if done.dead else ""))
        if done.blocked:
            print(f"replication stopped: {replicator.outbox.state()['blocked']}", file=sys.stderr)
            return EXIT_FAILURE
        if done.error is not None:
            print(f"replication failed: {done.error}", file=sys.stderr)
            return EXIT_FAILURE
        return 0
    finally:
        replicator.close()


def cmd_serve(args) -> int:
    from api import server

    from . import migrate

    cfg = _load_config(args)
    server.check(cfg)
    migrate.ensure_schema(cfg.store.path)  # the users live in the store's file, local source or not
    server.serve(cfg)
    return 0


def _read_password(prompt: str = "password: ") -> str:
    """Twice with getpass on a terminal (they must match), else one line of stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_user(args) -> int:
    from datetime import datetime

    from api.users import Users

    from . import migrate

    cfg = _load_config(args)
    migrate.ensure_schema(cfg.store.path)
    users = Users(cfg.store.path)
    try:
        if args.action == "list":
            for u in users.list():
                changed = datetime.fromtimestamp(u.password_changed_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
                print(f"{u.username}\tpassword changed {changed}")
            return 0
        if not args.name:
            raise ConfigError(f"`kammthaar user {args.action}` needs a user NAME")
        if args.action == "add":
            users.add(args.name, _read_password())
            print(f"user {args.name} added")
        elif args.action == "passwd":
            users.set_password(args.name, _read_password("new password: "))
            print(f"password of {args.name} changed: tokens issued before no longer work")
        else:
            users.remove(args.name)
            print(f"user {args.name} removed")
        return 0
    finally:
        users.close()


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

    p = sub.add_parser("replicate", help="send the stored rows to InfluxDB ([cloud] section), forever")
    p.add_argument("--once", action="store_true", help="send the backlog with a progress bar, then exit")
    p.set_defaults(func=cmd_replicate)

    p = sub.add_parser("rollups", help="daily and monthly statistics and minute buckets")
    p.add_argument("action", choices=["rebuild"], help="rebuild: recompute them from the raw samples")
    p.add_argument("--from", dest="from_day", type=_day_arg, metavar="DATE", help="first local day (YYYY-MM-DD)")
    p.add_argument("--to", dest="to_day", type=_day_arg, metavar="DATE", help="last local day (YYYY-MM-DD), inclusive")
    p.set_defaults(func=cmd_rollups)

    p = sub.add_parser("serve", help="the REST API under gunicorn ([api] section)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="users of the API: add NAME, passwd NAME, list, remove NAME")
    p.add_argument("action", choices=["add", "passwd", "list", "remove"])
    p.add_argument("name", nargs="?", help="the user name")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("demo", help="run the simulator, the collector and the API on embedded defaults")
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
