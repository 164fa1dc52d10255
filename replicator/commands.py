"""replicator's command (replicate) and the replicator built from the config's [cloud] section.

`register(subparsers)` adds `kammthaar replicate` to the parser (kammthaar/cli.py).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from edge_store import config

log = logging.getLogger("kammthaar")

EXIT_FAILURE = 1
IDLE_REMINDER_S = 3600


def build_replicator(cfg: config.Config):
    """The replicator the [cloud] section describes, on a migrated store (needs [cloud] url)."""
    from edge_store import migrate
    from edge_store.outbox import Outbox

    from .replicator import Replicator, fingerprint
    from .influx_writer import V1Writer, V2Writer

    cfg.require_cloud()
    c = cfg.cloud
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
                      max_backlog_age_days=c.max_backlog_age_days, credentials=credentials,
                      models={d.name: d.model for d in cfg.devices})


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


def register(sub) -> None:
    """Add `kammthaar replicate` to `kammthaar`'s subparsers."""
    p = sub.add_parser("replicate", help="send the stored rows to InfluxDB ([cloud] section), forever")
    p.add_argument("--once", action="store_true", help="send the backlog with a progress bar, then exit")
    p.set_defaults(func=cmd_replicate)
