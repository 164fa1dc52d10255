"""Failed store writes, logged sparingly and told through `<store>-writes` (a clock passed in, no waiting)."""

from __future__ import annotations

import logging
import os

from edge_store.errors import StoreError
from edge_store.write_failures import STATE_BYTES, WriteFailures, read_state, state_path

FULL = StoreError("could not store live sample: database or disk is full", retryable=True)


class Clock:
    def __init__(self):
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


def test_a_failing_store_is_logged_once_then_once_a_minute_with_the_count(tmp_path, caplog):
    clock = Clock()
    failures = WriteFailures(str(tmp_path / "k.db"), monotonic=clock, clock_ms=lambda: int(clock.s * 1000))
    caplog.set_level(logging.INFO)
    for _ in range(2400):  # 16 a second for 150 s
        failures.failed(FULL)
        clock.s += 0.0625
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # at 0 s, 60 s and 120 s
    assert lines[0] == "could not store live sample: database or disk is full (further failed writes: one line a minute)"
    assert lines[1].startswith("960 writes failed in the last 60 s") and lines[1].count("could not store") == 1
    state = read_state(str(tmp_path / "k.db"))
    assert state["failing"] is True and state["episode_failures"] >= 2380  # rewritten at most once a second
    assert failures.succeeded() == 2400
    assert caplog.records[-1].getMessage() == "the store writes again after 2400 failed writes"
    assert read_state(str(tmp_path / "k.db"))["failing"] is False
    assert read_state(str(tmp_path / "k.db"))["failed_writes"] == 2400
    assert failures.succeeded() == 0  # nothing was failing
    failures.close()
    assert os.path.getsize(state_path(str(tmp_path / "k.db"))) == STATE_BYTES  # rewritten in place, never grown


def test_writes_that_fail_and_succeed_in_turn_stay_a_line_a_minute(tmp_path, caplog):
    clock = Clock()
    failures = WriteFailures(None, monotonic=clock)  # no side file: the log alone
    caplog.set_level(logging.INFO)
    for _ in range(1000):  # 50 s of flapping
        failures.failed(FULL)
        failures.succeeded()
        clock.s += 0.05
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]  # the first failure, its end
    failures.failed(FULL)  # a minute after the first line: the count of all that came between
    clock.s += 11
    failures.failed(FULL)
    assert caplog.records[-1].getMessage().startswith("1001 writes failed in the last 61 s")
    assert failures.total == 1002
    failures.succeeded()
    assert caplog.records[-1].getMessage() == "the store writes again after 2 failed writes"
    clock.s += 1
    failures.failed(FULL)  # within the minute: counted, no line
    failures.succeeded()
    assert caplog.records[-1].getMessage() == "the store writes again after 2 failed writes"
    failures.close()  # no count is left untold
    assert caplog.records[-1].getMessage() == ("1 failed writes not told yet; the last: "
                                               "could not store live sample: database or disk is full")
    assert len(caplog.records) == 5
