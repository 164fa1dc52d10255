"""api's commands: serve (the REST API under gunicorn), user (the API's users) and token (machine tokens).

`register(subparsers)` adds them to `kammthaar`'s parser (kammthaar/cli.py).
How the app is built from the config is api/gunicorn_server.py's; the users live in
the database of `[api] state_url` (default: the store's file; api/users.py, api/access.py).
Falcon and gunicorn are imported by the handlers, so building the parser stays cheap.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime

from edge_store import config
from edge_store.errors import ConfigError


def state_target(cfg) -> str:
    """Where the API's state lives: `[api] state_url`, else the store's file."""
    return cfg.api.state_url or str(cfg.store.path)


def migrate_state(cfg) -> None:
    """The state database at head; the store too when it holds the state or the local source reads it."""
    from edge_store import migrate

    if not cfg.api.state_url or "local" in cfg.api.sources:
        migrate.ensure_schema(cfg.store.path)
    if cfg.api.state_url:
        migrate.ensure_schema(cfg.api.state_url)


def cmd_serve(args) -> int:
    from . import gunicorn_server

    cfg = config.load(args.config)
    cfg.require_serve()
    migrate_state(cfg)
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
    """The users of the configured state database, migrated first."""
    from .users import Users

    cfg = config.load(args.config)
    migrate_state(cfg)
    return Users(state_target(cfg))


def _when(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _grant_text(grant) -> str:
    return "installer (every site)" if grant.role == "installer" else f"viewer of {', '.join(grant.sites) or 'no site'}"


def cmd_user(args) -> int:
    from .access import INSTALLER, VIEWER, Access, check_role, parse_sites

    users = _users(args)
    access = Access(users.engine)
    try:
        if args.action == "list":
            grants = access.grants()
            for u in users.list():
                grant = grants.get(u.username)
                print(f"{u.username}\t{_grant_text(grant) if grant else '?'}\t"
                      f"password changed {_when(u.password_changed_ms)}")
            return 0
        if not args.name:
            raise ConfigError(f"`kammthaar user {args.action}` needs a user NAME")
        sites = parse_sites(args.sites)
        if args.action in ("grant", "revoke") and not sites and not (args.action == "grant" and args.role):
            raise ConfigError(f"`kammthaar user {args.action} NAME` needs --sites a,b"
                              + (" or --role" if args.action == "grant" else ""))
        if args.action == "add":
            role = check_role(args.role or INSTALLER)
            if role == INSTALLER and sites:
                raise ConfigError("--sites is for viewers (an installer sees every site): add --role viewer")
            users.add(args.name, read_password(), role=role, sites=sites)
            print(f"user {args.name} added: {_grant_text(access.grant_of(args.name))}")
        elif args.action == "grant":
            grant = access.change(args.name, role=check_role(args.role) if args.role else None, add=sites)
            print(f"user {args.name}: {_grant_text(grant)}")
        elif args.action == "revoke":
            if args.role:
                raise ConfigError("`kammthaar user revoke` takes --sites only (change a role with `user grant --role`)")
            grant = access.change(args.name, remove=sites)
            print(f"user {args.name}: {_grant_text(grant)}")
            if grant.role == VIEWER and not grant.sites:
                print(f"user {args.name} sees no site now", file=sys.stderr)
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

    p = sub.add_parser("user", help="users of the API: add NAME [--role viewer --sites a,b], passwd NAME, list, "
                                     "remove NAME, grant NAME --sites a,b [--role R], revoke NAME --sites a,b")
    p.add_argument("action", choices=["add", "passwd", "list", "remove", "grant", "revoke"])
    p.add_argument("name", nargs="?", help="the user name")
    p.add_argument("--role", choices=["installer", "viewer"],
                   help="installer: every site (the default of `add`); viewer: the sites of --sites")
    p.add_argument("--sites", help="comma-separated sites (`site` tags) a viewer sees: granted, or revoked")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("token", help="machine tokens of the API (a Prometheus scraper's): "
                                     "create NAME --scope metrics, list, revoke NAME")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?", help="the token's name")
    p.add_argument("--scope", choices=["metrics"], help="what the token opens (metrics: /metrics and /health)")
    p.set_defaults(func=cmd_token)
