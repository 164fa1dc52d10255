"""replicator's commands (replicate, reconcile) and what they build from the config's [cloud] section.

`register(subparsers)` adds `kammthaar replicate` and `kammthaar reconcile` to the parser (kammthaar/cli.py).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime

from edge_store import config

log = logging.getLogger("kammthaar")

EXIT_FAILURE = 1
# After each day checked, while the store has a backlog, a pause of this many times the day's time, so
# that a pass beside a replicator draining it leaves it the CPU (bench/reconcile.py measures both).
PAUSE_FACTOR = 3.0
IDLE_REMINDER_S = 3600


def build_writer(cfg: config.Config):
    """The writer of the [cloud] section and the fingerprint of its credentials."""
    from .replicator import fingerprint
    from .influx_writer import V1Writer, V2Writer

    c = cfg.cloud
    if c.api == "v2":
        return (V2Writer(c.url, token=c.token, org=c.org, bucket=c.bucket, timeout_s=c.timeout_s),
                fingerprint(c.url, c.api, c.token, c.org))
    return (V1Writer(c.url, database=c.database, retention_policy=c.retention_policy, username=c.username,
                     password=c.password, timeout_s=c.timeout_s),
            fingerprint(c.url, c.api, c.username, c.password))


def build_reader(cfg: config.Config):
    """An InfluxQL reader on the database (v2: the bucket, through its DBRP mapping) the replicator writes."""
    from .influxql import reader_for

    return reader_for(cfg.cloud, max(cfg.cloud.timeout_s, 30.0))


def build_replicator(cfg: config.Config):
    """The replicator the [cloud] section describes, on a migrated store (needs [cloud] url)."""
    from edge_store import migrate
    from edge_store.outbox import Outbox

    from .replicator import Replicator

    cfg.require_cloud()
    c = cfg.cloud
    writer, credentials = build_writer(cfg)
    migrate.ensure_schema(cfg.store.path)
    outbox = Outbox(cfg.store.path, synchronous=cfg.store.synchronous)
    return Replicator(outbox, writer, site=cfg.site.id, batch_size=c.batch_size, interval_s=c.interval_s,
                      max_backlog_age_days=c.max_backlog_age_days, credentials=credentials,
                      models=cfg.device_models)


def build_reconciler(cfg: config.Config, replicator, pause_factor: float = PAUSE_FACTOR):
    """A reconciler on the replicator's outbox and delivery policy (the daemon's pauses between its own
    pieces: `pause_factor` 0)."""
    from .reconcile import Reconciler

    return Reconciler(replicator.outbox, build_reader(cfg), replicator.policy, site=cfg.site.id,
                      batch_size=cfg.cloud.batch_size, max_backlog_age_days=cfg.cloud.max_backlog_age_days,
                      pause_factor=pause_factor, models=cfg.device_models)


def build_heartbeat(cfg: config.Config, replicator):
    """The heartbeat, on its own writer (its own connection) and the replicator's stop event."""
    from .heartbeat import Heartbeat

    return Heartbeat(replicator.outbox, build_writer(cfg)[0], site=cfg.site.id, devices=cfg.devices,
                     every_s=cfg.cloud.heartbeat_s, commit_window_s=cfg.store.commit_window_s, stop_event=replicator.stop_event)


def idle(message: str) -> None:
    """Without [cloud] url: say so now and every hour, until SIGTERM/SIGINT (a unit that is
    enabled everywhere stays up, and its journal says why it does nothing)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.warning(message)
    while not stop.wait(IDLE_REMINDER_S):
        log.warning(message)


def cmd_replicate(args) -> int:
    cfg = config.load(args.config)
    if not cfg.cloud.url:
        message = ("no [cloud] url configured: the replicator has nothing to do and idles "
                   "(set [cloud] url, or KAMMTHAAR_CLOUD_URL)")
        if args.once:
            print(message)
        else:
            idle(message)
        return 0
    replicator = build_replicator(cfg)
    try:
        replicator.install_signal_handlers()
        if not args.once:
            from .reconcile_schedule import ReconcileSchedule

            replicator.reconcile = ReconcileSchedule(build_reconciler(cfg, replicator, pause_factor=0.0),
                                                     every_h=cfg.cloud.reconcile_every_h)
            heartbeat = build_heartbeat(cfg, replicator)
            thread = heartbeat.start()
            try:
                replicator.run()
            finally:
                replicator.stop()
                thread.join(timeout=cfg.cloud.timeout_s + 5)
                heartbeat.writer.close()
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


def _date(text: str) -> str:
    try:
        return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD (UTC)") from None


def day_line(f) -> str:
    """One day of `kammthaar reconcile`'s summary."""
    line = (f"{f.day}: checked {f.points_local} points, missing {f.points_missing} "
            f"({100 * f.completeness:.2f} % held)")
    if f.hours_differing:
        line += f"; {f.hours_differing} range(s) differed, {f.hours_repaired} repaired"
        if f.hours_still_differing:
            line += f", {f.hours_still_differing} STILL DIFFER"
        line += "".join(f"\n    re-sent {r}" for r in f.repaired)
    return line


def cmd_reconcile(args) -> int:
    from .influx_writer import WriteError
    from .influxql import QueryError
    from .reconcile import Unsupported

    cfg = config.load(args.config)
    if not cfg.cloud.url:
        print("no [cloud] url configured: nothing to reconcile (set [cloud] url, or KAMMTHAAR_CLOUD_URL)",
              file=sys.stderr)
        return EXIT_FAILURE
    if args.first and args.last and args.first > args.last:
        print("kammthaar: --from is after --to", file=sys.stderr)
        return 2
    replicator = build_replicator(cfg)
    reconciler = build_reconciler(cfg, replicator)
    try:
        replicator.install_signal_handlers()
        from tqdm import tqdm

        days = reconciler.days(args.first, args.last)
        findings = []
        with tqdm(total=len(days), unit="days", desc="reconciling", file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            for day in days:
                if replicator.stop_event.is_set():
                    return EXIT_FAILURE
                findings.append(reconciler.check_day(day))
                bar.write(day_line(findings[-1]), file=sys.stdout)
                bar.update(1)
        ok = all(f.hours_still_differing == 0 for f in findings)
        reconciler.log.record_pass(ok)
        local = sum(f.points_local for f in findings)
        held = sum(f.points_cloud for f in findings)
        print(f"{len(days)} day(s), {local} points checked, {local - held} missing, "
              f"{sum(f.hours_repaired for f in findings)} range(s) repaired"
              + ("" if ok else f", {sum(f.hours_still_differing for f in findings)} STILL DIFFER")
              + f" ({reconciler.statements} InfluxQL statements in {reconciler.requests} requests)")
        return 0 if ok else EXIT_FAILURE
    except Unsupported as exc:
        reconciler.log.record_unsupported(str(exc))
        print(f"reconciliation impossible: {exc}; replication does not need it and goes on", file=sys.stderr)
        return EXIT_FAILURE
    except (QueryError, WriteError) as exc:
        print(f"reconciliation failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        reconciler.reader.close()
        replicator.close()


def register(sub) -> None:
    """Add `kammthaar replicate` and `kammthaar reconcile` to `kammthaar`'s subparsers."""
    p = sub.add_parser("replicate", help="send the stored rows to InfluxDB ([cloud] section), forever")
    p.add_argument("--once", action="store_true", help="send the backlog with a progress bar, then exit")
    p.set_defaults(func=cmd_replicate)
    p = sub.add_parser("reconcile", help="check that the cloud holds every point the Pi sent; re-send what differs")
    p.add_argument("--from", dest="first", type=_date, metavar="DATE", help="first UTC day YYYY-MM-DD (default: the oldest held)")
    p.add_argument("--to", dest="last", type=_date, metavar="DATE", help="last UTC day YYYY-MM-DD (default: today)")
    p.set_defaults(func=cmd_reconcile)
