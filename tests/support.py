"""What the tests share: the commands they run, one way to run a process in the background, free ports,
waiting, clean environments, reading a store file from outside.

- `KAMMTHAAR`, `simulator_command()`: the one place that says how kammthaar and its simulator are started.
- `kammthaar(*args, env=...)`: a command run to completion.
- `Process`: a command running in the background with its output in a log file: started, waited for
  (until a predicate holds or a line is logged), checked alive, stopped with SIGTERM then SIGKILL.
- `Processes`: the processes a fixture started, all stopped at its teardown (the `processes` fixture).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]

KAMMTHAAR = [sys.executable, "-m", "kammthaar.cli"]
SIMULATOR_READY = "listening on"  # logged once the simulator's port is open or its socket bound


def simulator_command(*args: str) -> list[str]:
    """The EPEVER simulator with `args` (--port DEV or --tcp HOST:PORT, --speed, faults...)."""
    return [*KAMMTHAAR, "simulate", *args]


def kammthaar(*args: str, env: dict, timeout_s: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `kammthaar ARGS` to completion, output captured as text."""
    return subprocess.run([*KAMMTHAAR, *args], env=env, cwd=REPO, input=stdin, capture_output=True, text=True,
                          timeout=timeout_s)


def free_port() -> int:
    """A TCP port nobody listens on right now (bind port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on `port`."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.02):
    """Poll `predicate` until it returns something true, and return that; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout_s}s")
        time.sleep(poll_s)


def clean_env(**settings) -> dict:
    """This process's environment without KAMMTHAAR_*, plus `settings` as KAMMTHAAR_SECTION_KEY.

    `[store] commit_window_s` is 0 and `[modbus] inter_request_ms` 1 unless given: test collectors poll
    every 0.05-0.1 s over a pty (no RS485 line to turn around) and wait for rows; the window and the
    silence have their own tests (test_collector_window.py, test_bus.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    defaults = {"store_commit_window_s": 0, "modbus_inter_request_ms": 1}
    env.update({f"KAMMTHAAR_{k.upper()}": str(v) for k, v in {**defaults, **settings}.items()})
    return env


def rows_in(db: Path | str, table: str, device: str | None = None) -> int:
    """Rows of a table (of one device if given), read-only; 0 while the file or the table does not exist yet."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if device is not None:
                return conn.execute(f"SELECT count(*) FROM {table} WHERE device = ?", (device,)).fetchone()[0]
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


class Process:
    """A command running in the background: stdout and stderr in `log_path` (stdout in `stdout_path`
    instead when given), started, waited for, checked alive, stopped."""

    def __init__(self, argv: list[str], log_path: Path | str, *, env: dict | None = None, cwd: Path | str = REPO,
                 stdout_path: Path | str | None = None):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.stdout_path = Path(stdout_path) if stdout_path is not None else None
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(self.argv[:4]))

    def start(self, *, ready: Callable[[], object] | None = None, ready_line: str | None = None,
              timeout_s: float = 30.0) -> "Process":
        """Start it; then wait until `ready_line` is logged and `ready()` is true (OSError counts as not yet),
        and check it is still alive."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        with open(self.log_path, "a") as log:
            out = open(self.stdout_path, "a") if self.stdout_path is not None else log
            try:
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=log if out is not log else subprocess.STDOUT)
            finally:
                if out is not log:
                    out.close()
        if ready_line is not None:
            self.wait_for(lambda: ready_line in self.log(), timeout_s, f"no {ready_line!r} in the log")
        if ready is not None:
            self.wait_for(ready, timeout_s, "not ready")
        if ready_line is not None or ready is not None:  # a command that runs to its end may be done already
            self.assert_alive()
        return self

    def wait_for(self, predicate: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.02):
        """Poll `predicate` (OSError counts as false) while checking the process stays alive; its value."""
        def check():
            self.assert_alive()
            try:
                return predicate()
            except OSError:
                return False

        return wait_until(check, timeout_s, f"{self.name}: {what}", poll_s)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self) -> str:
        """What it wrote on stdout (with `stdout_path`; else the log)."""
        if self.stdout_path is None:
            return self.log()
        return self.stdout_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def poll(self) -> int | None:
        return self.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"{self.name} exited with {self.returncode}:\n{self.log()[-3000:]}"

    def wait(self, timeout_s: float = 30.0) -> int:
        return self.proc.wait(timeout_s)

    def send_signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def freeze(self) -> None:
        """SIGSTOP: its sockets still accept connections, nothing answers."""
        self.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.send_signal(signal.SIGCONT)

    def kill(self) -> int | None:
        """SIGKILL (a frozen process too), and reap it."""
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        return None if self.proc is None else self.proc.wait(30)

    def interrupt(self, timeout_s: float = 30.0) -> int:
        """SIGINT, as Ctrl-C on a terminal, and its exit code; killed (and TimeoutExpired raised) if it hangs."""
        self.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (after SIGCONT: a frozen process too), then SIGKILL if it has not exited within `timeout_s`."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Processes:
    """Processes started for one fixture, each with its own log in `directory`, stopped together."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.started: list[Process] = []
        self._names: dict[str, int] = {}

    def start(self, argv: list[str], name: str, *, env: dict | None = None, stdout: bool = False,
              **wait) -> Process:
        """Start `argv` logging to DIRECTORY/NAME.log (stdout to NAME.out when `stdout`); `wait`: see Process.start."""
        n = self._names[name] = self._names.get(name, -1) + 1
        stem = name if n == 0 else f"{name}-{n}"
        proc = Process(argv, self.directory / f"{stem}.log", env=env,
                       stdout_path=self.directory / f"{stem}.out" if stdout else None)
        self.started.append(proc)
        return proc.start(**wait)

    def stop(self) -> None:
        """Every process still running: SIGTERM (then SIGKILL), the latest started first."""
        for proc in reversed(self.started):
            proc.stop()
