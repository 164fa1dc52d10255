"""Fixtures for real links: a socat pty pair standing in for the RS485 adapter, the simulator as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import stop_process, wait_until

SOCAT = shutil.which("socat") or "/usr/bin/socat"
REPO = Path(__file__).resolve().parents[1]
READY_LINE = "listening on"


class SerialPair:
    """Two ptys joined by socat: `device` is the simulator's end, `client` the collector's end."""

    def __init__(self, directory: Path):
        self.device = str(directory / "dev-sim")
        self.client = str(directory / "dev-collector")
        self.log_path = directory / "socat.log"
        self._proc: subprocess.Popen | None = None

    def plug(self) -> None:
        """Start socat and wait until both links exist."""
        if self._proc is not None:
            raise RuntimeError("the serial pair is already plugged in")
        with open(self.log_path, "a") as log:
            self._proc = subprocess.Popen(
                [SOCAT, "-d", "-d", f"pty,raw,echo=0,link={self.device}", f"pty,raw,echo=0,link={self.client}"],
                stdout=subprocess.DEVNULL, stderr=log,
            )

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise RuntimeError(f"socat exited with {self._proc.returncode}: {self.log_path.read_text()}")
            return os.path.exists(self.device) and os.path.exists(self.client)

        wait_until(ready, 5.0, "socat links did not appear")

    def unplug(self) -> None:
        """Kill socat: both ptys disappear, as when the adapter is pulled."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc, 5)
        for link in (self.device, self.client):
            if os.path.lexists(link):  # socat removes its links on SIGTERM; not on SIGKILL
                os.unlink(link)

    def replug(self) -> None:
        """Start socat again with the same link names (new ptys behind them)."""
        self.plug()


@pytest.fixture
def serial_pair(tmp_path):
    """A fresh socat pty pair for one test; socat is killed at teardown."""
    pair = SerialPair(tmp_path)
    pair.plug()
    yield pair
    pair.unplug()


@pytest.fixture
def start_simulator(tmp_path):
    """Factory: start_simulator(*args, ready=True, timeout_s=15) -> Popen of the simulator.

    Waits for the simulator's "listening on" line (it is logged once the port is
    open or the socket bound) and checks the process is alive. Its stderr goes
    to `proc.log_path`. Every process started is terminated, or killed, at teardown.
    """
    procs: list[subprocess.Popen] = []

    def start(*args: str, ready: bool = True, timeout_s: float = 15.0) -> subprocess.Popen:
        log_path = tmp_path / f"simulator-{len(procs)}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kammthaar.cli", "simulate", *args],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
            )
        proc.log_path = log_path
        procs.append(proc)
        if ready:
            def listening() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"the simulator exited with {proc.returncode}: {log_path.read_text()}")
                return READY_LINE in log_path.read_text()

            wait_until(listening, timeout_s, f"the simulator did not listen: {log_path}")
        assert proc.poll() is None
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
