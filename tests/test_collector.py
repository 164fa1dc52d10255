"""The real collector reading the real simulator over Modbus RTU through a socat pty pair."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from edge_store.registers import LIVE, STATS
from edge_store.store import Store
from tests.fixtures_serial import assert_rows_equal_served, collector_env, counters, wait_for_rows
from tests.samples import FROZEN, GROUPS, SEED, expected_values


def test_collect_once_stores_every_group_as_served(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN)
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", "--once", env=collector_env(db, serial_pair.client))
    assert proc.wait(60) == 0, proc.log()[-3000:]
    with Store(db, readonly=True) as store:
        assert [store.count(g) for g in GROUPS] == [1, 1, 1, 1]
        assert assert_rows_equal_served(store, expected_values()) == 4
        live = store.latest(LIVE)
        assert abs(live["ts_ms"] - time.time() * 1000) < 120_000  # the poll's own UTC time
        assert live["ntp_synced"] in (True, False)
        assert store.counters() == {}


def test_collector_polls_until_sigterm_then_exits_0(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, "--speed", "600", "--seed", SEED)
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    wait_for_rows(db, "live_samples", 10, proc)
    wait_for_rows(db, "device_clock", 2, proc)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    assert "collector stopped" in err
    stored = [int(line.split("id=")[1].split()[0]) for line in err.splitlines() if "stored live id=" in line]
    with Store(db, readonly=True) as store:
        ids = {r["id"] for r in store.rows(LIVE)}
        # The write in hand when SIGTERM came was finished: every logged id is there.
        assert set(stored) <= ids and len(ids) == len(stored)
        rows = store.rows(LIVE)
        assert all(b["ts_ms"] > a["ts_ms"] for a, b in zip(rows, rows[1:]))
        # The simulated day moves: values change from poll to poll.
        assert len({r["pv_power"] for r in rows} | {r["battery_voltage"] for r in rows}) > 1


@pytest.mark.parametrize("fault", [["--drop", "0.2"], ["--corrupt", "0.2"]], ids=["drop20", "corrupt20"])
def test_collector_keeps_going_and_stores_no_bad_row_under_faults(serial_pair, start_simulator, tmp_path, fault,
                                                                   start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, *fault)
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    wait_for_rows(db, "live_samples", 25, proc)
    wait_for_rows(db, "device_statistics", 2, proc)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    with Store(db, readonly=True) as store:
        counted = store.counters()
        kind = "timeout" if fault[0] == "--drop" else "crc"
        assert counted.get(f"modbus_errors.{kind}", 0) > 0, counted
        assert assert_rows_equal_served(store, expected_values()) >= 27
        assert {e["kind"] for e in store.errors(limit=10_000)} <= {"timeout", "crc"}


def test_block_answering_an_exception_gives_no_row_for_its_group(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, "--exception", "0x3300=4")
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    wait_for_rows(db, "live_samples", 10, proc)
    wait_for_rows(db, "device_clock", 2, proc)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    with Store(db, readonly=True) as store:
        assert store.count(STATS) == 0  # the statistics block always fails: never a made-up row
        assert store.counters().get("modbus_errors.exception", 0) >= 2
        assert {e["block"] for e in store.errors(limit=1000)} == {"input:0x3300+20"}
        assert assert_rows_equal_served(store, expected_values()) >= 12


def test_firmware_rejecting_blocks_with_gaps_is_read_register_by_register(serial_pair, start_simulator, tmp_path,
                                                                          start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, "--strict-gaps")
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    wait_for_rows(db, "live_samples", 10, proc)
    wait_for_rows(db, "device_settings", 2, proc)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    with Store(db, readonly=True) as store:
        assert assert_rows_equal_served(store, expected_values()) >= 14
        rejected = [e["block"] for e in store.errors(limit=1000)]
        # Each gapped block was refused once, then remembered and read per register.
        assert len(rejected) == len(set(rejected))
        assert "input:0x3100+18" in rejected and "holding:0x9067+10" in rejected
        assert "register by register" in err


def test_device_that_never_answers_costs_no_row_and_no_crash(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, "--drop", "1.0")
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    deadline = time.monotonic() + 30
    timeouts = 0
    while time.monotonic() < deadline and timeouts < 8:
        time.sleep(0.2)
        timeouts = counters(db).get("modbus_errors.timeout", 0)
    assert proc.poll() is None
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    with Store(db, readonly=True) as store:
        assert [store.count(g) for g in GROUPS] == [0, 0, 0, 0]
        assert store.counters()["modbus_errors.timeout"] >= 8


def test_adapter_unplugged_and_plugged_back(serial_pair, start_simulator, tmp_path, start_kammthaar):
    sim = start_simulator("--port", serial_pair.device, *FROZEN)
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    before = wait_for_rows(db, "live_samples", 5, proc)
    serial_pair.unplug()
    sim.stop(10)
    deadline = time.monotonic() + 30
    port_errors = 0
    while time.monotonic() < deadline and port_errors == 0:
        time.sleep(0.2)
        port_errors = counters(db).get("modbus_errors.port", 0)
    assert port_errors > 0, counters(db)
    assert proc.poll() is None
    serial_pair.replug()
    start_simulator("--port", serial_pair.device, *FROZEN)
    with Store(db, readonly=True) as store:
        gone = store.count(LIVE)
    wait_for_rows(db, "live_samples", gone + 5, proc, limit_s=90)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    assert gone >= before
    assert err.count(f"opened {serial_pair.client}") >= 2  # the port was reopened when it came back
    with Store(db, readonly=True) as store:
        assert assert_rows_equal_served(store, expected_values()) >= gone + 5


def test_physically_impossible_values_are_rejected_and_counted(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN, "--set", "battery_voltage=150", "--set", "state_of_charge=101")
    db = tmp_path / "k.db"
    proc = start_kammthaar("collect", env=collector_env(db, serial_pair.client))
    wait_for_rows(db, "device_statistics", 2, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and counters(db).get("modbus_errors.out_of_range", 0) < 5:
        time.sleep(0.2)
    code, err = proc.stop(30), proc.log()
    assert code == 0, err[-3000:]
    with Store(db, readonly=True) as store:
        assert store.count(LIVE) == 0
        assert store.counters()["modbus_errors.out_of_range"] >= 5
        assert any("battery_voltage=150" in e["detail"] for e in store.errors())


def test_ts_is_utc_milliseconds_of_the_poll(serial_pair, start_simulator, tmp_path, start_kammthaar):
    start_simulator("--port", serial_pair.device, *FROZEN)
    db = tmp_path / "k.db"
    before = int(datetime.now(timezone.utc).timestamp() * 1000)
    proc = start_kammthaar("collect", "--once", env=collector_env(db, serial_pair.client))
    proc.wait(60)
    after = int(datetime.now(timezone.utc).timestamp() * 1000)
    with Store(db, readonly=True) as store:
        ts = store.latest(LIVE)["ts_ms"]
    assert before <= ts <= after and isinstance(ts, int)
