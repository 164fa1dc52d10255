"""`kammthaar demo`: the simulator, the collector and the API together, on embedded defaults.

The simulator (when `[modbus] port` is a TCP one) and `kammthaar serve` run
as child processes; the collector runs in this process until Ctrl-C, then
the children are stopped. The API gets a generated secret unless the config
has a strong one, and the demo user a new password at every start. With
`--history DAYS`, the simulator's model of the past days is stored first
(edge_store/simulator/history.py), so charts and statistics show at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from edge_store import config
from edge_store.commands import build_collector
from edge_store.errors import ConfigError, KammthaarError
from edge_store.ports import SERIAL

EXIT_FAILURE = 1
SIMULATOR_START_S = 1.0
API_START_TIMEOUT_S = 30
DASHBOARD_DEV_ORIGIN = "http://localhost:4200"  # the dashboard's development server


def kammthaar_command(*args: str) -> list[str]:
    """`kammthaar ARGS` as a child process of this Python."""
    return [sys.executable, "-m", "kammthaar.cli", *args]


def cmd_demo(args) -> int:
    """Simulator + collector + API on embedded defaults, until Ctrl-C."""
    cfg = config.load(args.config)
    port = cfg.modbus.port
    sim = None
    if port.kind != SERIAL:
        sim = subprocess.Popen(kammthaar_command("simulate", "--tcp", str(port.address), "--framer", port.framer,
                                                 "--speed", str(args.speed)))
        time.sleep(SIMULATOR_START_S)
        if sim.poll() is not None:
            print(f"the simulator could not start on {port.address} (is the port in use?)", file=sys.stderr)
            return EXIT_FAILURE
    db = os.path.abspath(cfg.store.path)
    collector = None
    try:
        collector = build_collector(cfg)
        if args.history:
            fill_history(collector, cfg, args.history)
        api_proc, url, login = start_api(args, cfg)
    except BaseException:
        if collector is not None:
            collector.store.close()
        stop(sim)
        raise
    print(f"Kammthaar demo: simulated EPEVER on {port}, samples every {cfg.modbus.interval_s:g}s into {db}\n"
          f"  API:    {url}   docs: {url}/api/swagger-ui\n"
          f"  login:  user {login[0]!r}, password {login[1]!r} (shown once; new at every demo start)\n"
          f"          curl -s -X POST {url}/login -H 'Content-Type: application/json' "
          f"-d '{{\"username\": \"{login[0]}\", \"password\": \"{login[1]}\"}}'\n"
          f"  look:   sqlite3 {db} 'SELECT * FROM v_latest'\n"
          f"          kammthaar status\n"
          f"  stop:   Ctrl-C", flush=True)
    try:
        collector.install_signal_handlers()
        collector.run()
    finally:
        collector.store.close()
        stop(api_proc)
        stop(sim)
    return 0


def fill_history(collector, cfg: config.Config, days: int) -> None:
    """The model's past `days` into the collector's store, through its rollups, before it starts."""
    from edge_store.simulator import history

    if days > cfg.store.retention_days:
        raise ConfigError(f"--history {days}: at most [store] retention_days ({cfg.store.retention_days}) days, "
                          "older samples would be pruned at once")
    started = time.monotonic()
    counts = history.fill(collector.store, days, interval_s=cfg.modbus.interval_s,
                          slow_interval_s=cfg.modbus.slow_interval_s, device=cfg.default_device)
    print(f"history: {days} day{'' if days == 1 else 's'} of the simulator's model stored ({counts['live']} live samples) "
          f"in {time.monotonic() - started:.1f} s", flush=True)


def history_days(text: str) -> int:
    """--history: a whole number of days, 0 or more."""
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"a whole number of days (0 or more), not {text!r}")
    return days


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM a child, SIGKILL it if it has not exited within 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_api(args, cfg: config.Config) -> tuple[subprocess.Popen, str, tuple[str, str]]:
    """`kammthaar serve` for the demo: a generated secret unless the config has a strong one, the demo
    user with a new password; waits until /health answers. (process, URL, (user, password))."""
    from api.auth import generate_secret
    from api.users import Users, demo_login
    from edge_store import migrate

    migrate.ensure_schema(cfg.store.path)
    users = Users(cfg.store.path)
    try:
        login = demo_login(users)
    finally:
        users.close()
    env = dict(os.environ)
    if config.secret_problem(cfg.api.jwt_secret):
        env[config.ENV_PREFIX + "API_JWT_SECRET"] = generate_secret()
    if not cfg.api.cors_origins:
        env[config.ENV_PREFIX + "API_CORS_ORIGINS"] = DASHBOARD_DEV_ORIGIN
    command = kammthaar_command("--log-level", "warning")
    if args.config:
        command += ["-c", args.config]
    proc = subprocess.Popen([*command, "serve"], env=env)
    listen = cfg.api.listen
    url = f"http://{listen.url_host}:{listen.port}"
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise KammthaarError(f"the API could not start on {listen} (is the port in use?)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except urllib.error.HTTPError:
            break  # it answers (503 until the first sample)
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise KammthaarError(f"the API did not answer on {url} within {API_START_TIMEOUT_S} s")
            time.sleep(0.2)
    return proc, url, login


def register(sub) -> None:
    """Add `kammthaar demo` to `kammthaar`'s subparsers."""
    p = sub.add_parser("demo", help="run the simulator, the collector and the API on embedded defaults")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--history", type=history_days, default=0, metavar="DAYS",
                   help="first store the simulator's model of the past DAYS days (charts and statistics at once)")
    p.set_defaults(func=cmd_demo)
