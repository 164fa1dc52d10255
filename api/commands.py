"""api's commands: serve (the REST API under gunicorn), user (the API's users) and token (machine tokens).

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


def _users(args):
    """The users of the configured store, migrated first."""
    from edge_store import migrate

    from .users import Users

    cfg = config.load(args.config)
    migrate.ensure_schema(cfg.store.path)
    return Users(cfg.store.path)


def _when(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def cmd_user(args) -> int:
    users = _users(args)
    try:
        if args.action == "list":
            for u in users.list():
                print(f"{u.username}\tpassword changed {_when(u.password_changed_ms)}")
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


def cmd_token(args) -> int:
    from .machine_tokens import MachineTokens

    users = _users(args)
    tokens = MachineTokens(users.engine)
    try:
        if args.action == "list":
            print("name\tscope\tcreated\tlast used")
            for t in tokens.list():
                print(f"{t.name}\t{t.scope}\t{_when(t.created_ms)}\t{_when(t.last_used_ms)}")
            return 0
        if not args.name:
            raise ConfigError(f"`kammthaar token {args.action}` needs a token NAME")
        if args.action == "create":
            if args.scope is None:
                raise ConfigError("`kammthaar token create NAME` needs --scope (metrics)")
            token = tokens.create(args.name, args.scope)
            print(token)
            print(f"token {args.name} ({args.scope}) created: it is shown only this once, keep it in a file "
                  f"only its reader can read", file=sys.stderr)
        else:
            tokens.revoke(args.name)
            print(f"token {args.name} revoked")
        return 0
    finally:
        users.close()


def register(sub) -> None:
    """Add `kammthaar serve`, `kammthaar user` and `kammthaar token` to `kammthaar`'s subparsers."""
    p = sub.add_parser("serve", help="the REST API under gunicorn ([api] section)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="users of the API: add NAME, passwd NAME, list, remove NAME")
    p.add_argument("action", choices=["add", "passwd", "list", "remove"])
    p.add_argument("name", nargs="?", help="the user name")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("token", help="machine tokens of the API (a Prometheus scraper's): "
                                     "create NAME --scope metrics, list, revoke NAME")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?", help="the token's name")
    p.add_argument("--scope", choices=["metrics"], help="what the token opens (metrics: /metrics and /health)")
    p.set_defaults(func=cmd_token)
