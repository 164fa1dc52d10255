"""notifier's commands: `kammthaar notify` (the sender) and `kammthaar alerts list|test`.

`register(subparsers)` adds them to the parser (kammthaar/cli.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal

from edge_store import config

log = logging.getLogger("kammthaar")


def build_notifier(cfg: config.Config):
    """The sender [notify] describes, on a migrated store."""
    from edge_store import migrate
    from edge_store.db import Database

    from .sender import Notifier

    migrate.ensure_schema(cfg.store.path)
    n = cfg.notify
    try:
        return Notifier(Database(cfg.store.path, synchronous=cfg.store.synchronous), n.urls, site=cfg.site.id,
                        timezone=cfg.site.timezone, command=n.command, command_severities=n.command_severities,
                        command_timeout_s=n.command_timeout_s, storm=n.storm, interval_s=n.interval_s,
                        retry_max_s=n.retry_max_s)
    except ValueError as exc:
        raise config.ConfigError(f"config: [notify] urls: {exc} is no URL apprise knows") from None


def cmd_notify(args) -> int:
    cfg = config.load(args.config)
    notifier = build_notifier(cfg)
    if not cfg.notify.urls:
        log.warning("no [notify] urls: notifications stay in the outbox (set [notify] urls)")
    if args.once:
        print(f"{notifier.pass_once()} notifications sent")
        return 0
    signal.signal(signal.SIGTERM, notifier.stop)
    signal.signal(signal.SIGINT, notifier.stop)
    notifier.run()
    return 0


def cmd_alerts_list(args) -> int:
    from edge_store import migrate
    from edge_store.alerts.events import list_events, read
    from edge_store.db import Database

    cfg = config.load(args.config)
    migrate.ensure_schema(cfg.store.path)
    with Database(cfg.store.path, readonly=True) as db:
        events = read(db, "alert events", list_events, firing_only=args.state == "firing", limit=args.limit)
    if args.json:
        print(json.dumps(events, indent=2))
    for e in [] if args.json else events:
        print(f"{e['since']}  {e['severity']:<8} {e['state']:<8} {e['rule']} on {e['device']}: {e['message']}")
    return 0


def cmd_alerts_test(args) -> int:
    """A test event of RULE in the outbox, then one pass of the sender: the site's wiring, end to end."""
    from edge_store.alerts.engine import write_test_event
    from edge_store.store import now_ms

    cfg = config.load(args.config)
    try:
        rule = cfg.alerts.rule(args.rule)
    except KeyError:
        raise config.ConfigError(f"alerts test: no rule {args.rule!r}; rules: "
                                 + ", ".join(r.name for r in cfg.alerts.rules)) from None
    device = args.device or cfg.default_device
    if device not in {d.name for d in cfg.devices}:
        raise config.ConfigError(f"alerts test: --device {device!r} is no configured device; devices: "
                                 + ", ".join(d.name for d in cfg.devices))
    notifier = build_notifier(cfg)  # on a migrated store
    with notifier.db.writing("could not write the test event") as conn:
        event_id = write_test_event(conn, rule, device, now_ms())
    print(f"test event {event_id} of {rule.name} written")
    if cfg.notify.urls:
        print(f"{notifier.pass_once()} notifications sent")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notify", help="send alert notifications from the outbox ([notify] urls)")
    p.add_argument("--once", action="store_true", help="send what is waiting, then exit")
    p.set_defaults(func=cmd_notify)
    p = sub.add_parser("alerts", help="alert events: list them, or fire a test event")
    asub = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    q = asub.add_parser("list", help="alert events, newest first")
    q.add_argument("--state", choices=["firing"], help="only the alerts active now")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_alerts_list)
    q = asub.add_parser("test", help="fire a test event of RULE end to end (outbox, hook, notification)")
    q.add_argument("rule", metavar="RULE")
    q.add_argument("--device", help="the device named in it (default: the first configured device)")
    q.set_defaults(func=cmd_alerts_test)
