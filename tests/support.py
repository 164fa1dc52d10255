"""Small helpers the test fixtures share: free ports, waiting, clean environments, stopping processes."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now (bind port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    """Poll `predicate` until it is true; TimeoutError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout_s}s")
        time.sleep(poll_s)


def clean_env(**settings) -> dict:
    """This process's environment without KAMMTHAAR_*, plus `settings` as KAMMTHAAR_SECTION_KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    env.update({f"KAMMTHAAR_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def rows_in(db: Path | str, table: str) -> int:
    """Rows of a table, read-only; 0 while the file or the table does not exist yet."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def stop_process(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
