"""`kammthaar`: the command line, assembled from the commands each package owns.

Each package registers its own subcommands (`register(subparsers)` in
edge_store/commands.py, replicator/commands.py, api/commands.py,
publisher/commands.py, notifier/commands.py, and the demo here), so edge_store imports none of them. This module
adds the common options, sets up logging, and turns our errors into one
clear line and an exit code: 2 for bad config or usage, 1 for a failure at
run time. No tracebacks for expected errors.
"""

from __future__ import annotations

import argparse
import logging
import sys

import api.commands
import edge_store.commands
import notifier.commands
import publisher.commands
import replicator.commands
from edge_store.errors import ConfigError, KammthaarError

from . import demo

COMMANDS = (edge_store.commands, replicator.commands, api.commands, publisher.commands,
            notifier.commands, demo)

EXIT_USAGE = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kammthaar", description="Kammthaar Edge: off-grid solar monitoring.")
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (default: $KAMMTHAAR_CONFIG, else embedded defaults)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for commands in COMMANDS:
        commands.register(sub)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
