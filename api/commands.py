"""api's commands: serve (the REST API under gunicorn) and user (the API's users).

`register(subparsers)` adds them to `kammthaar`'s parser (kammthaar/cli.py).
How the app is built from the config is api/gunicorn_server.py's; the users live in
the store's file (api/users.py). Falcon and gunicorn are imported by the
handlers, so building the parser stays cheap.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime

from edge_store import config
from edge_store.errors import ConfigError


def cmd_serve(args) -> int:
    from edge_store import migrate

    from . import gunicorn_server

    cfg = config.load(args.config)
    cfg.require_serve()
    migrate.ensure_schema(cfg.store.path)  # the users live in the store's file, local source or not
    gunicorn_server.serve(cfg)
    return 0


def read_password(prompt: str = "password: ") -> str:
    """Twice with getpass on a terminal (they must match), else one line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_user(args) -> int:
    from edge_store import migrate

    from .users import Users

    cfg = config.load(args.config)
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
            users.add(args.name, read_password())
            print(f"user {args.name} added")
        elif args.action == "passwd":
            users.set_password(args.name, read_password("new password: "))
            print(f"password of {args.name} changed: tokens issued before no longer work")
        else:
            users.remove(args.name)
            print(f"user {args.name} removed")
        return 0
    finally:
        users.close()


def register(sub) -> None:
    """Add `kammthaar serve` and `kammthaar user` to `kammthaar`'s subparsers."""
    p = sub.add_parser("serve", help="the REST API under gunicorn ([api] section)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="users of the API: add NAME, passwd NAME, list, remove NAME")
    p.add_argument("action", choices=["add", "passwd", "list", "remove"])
    p.add_argument("name", nargs="?", help="the user name")
    p.set_defaults(func=cmd_user)
