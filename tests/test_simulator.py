"""The simulator: the model over simulated days, and the real slave read by a real pymodbus client."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from edge_store.errors import ConfigError
from edge_store.catalogue.epever_tracer import REGISTERS as EPEVER_TRACER
from edge_store.registers import DISCRETE, HOLDING, INPUT, decode_block, encode, plan_blocks
from edge_store.simulator.options import SimOptions, add_arguments, options_from_args
from edge_store.simulator.serving import serve
from edge_store.simulator.model import BOOST, FLOAT, NO_CHARGING, SolarDay

from .support import free_port

START = "2024-06-21T10:00:00+00:00"
ZONE = "Europe/Berlin"
FROZEN = ["--speed", "0", "--start", START, "--timezone", ZONE, "--seed", "1"]
TIMEOUT_S = 0.3


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def model_at(start: datetime, tz: str = "UTC", seed: int = 1) -> tuple[SolarDay, FakeClock]:
    clock = FakeClock()
    return SolarDay(seed=seed, start=start, speed=1.0, tz=ZoneInfo(tz), clock=clock), clock


def local_moment(model: SolarDay, clock: FakeClock, when: datetime) -> dict:
    """The snapshot at a device-local wall-clock time (naive `when` in the model's zone)."""
    clock.now = (when.replace(tzinfo=model.tz) - model.start).total_seconds()
    return model.snapshot()


def expected_words(block, snapshot: dict) -> list:
    """What the device serves for a block: encoded registers, 0 in the gaps."""
    words = [0] * block.count
    for reg in block.registers:
        for i, word in enumerate(encode(reg, snapshot[reg.name])):
            words[reg.address - block.start + i] = word
    return [bool(w) for w in words] if block.table == DISCRETE else words


def frozen_snapshot() -> dict:
    return SolarDay(seed=1, start=datetime.fromisoformat(START), speed=0, tz=ZoneInfo(ZONE)).snapshot()


def read(client, block):
    call = {INPUT: client.read_input_registers, HOLDING: client.read_holding_registers,
            DISCRETE: client.read_discrete_inputs}[block.table]
    response = call(block.start, count=block.count, device_id=1)
    assert not response.isError(), (block.label, response)
    return response.bits[:block.count] if block.table == DISCRETE else response.registers


@pytest.fixture
def rtu_client(serial_pair):
    client = ModbusSerialClient(serial_pair.client, baudrate=115200, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    yield client
    client.close()


# -- the model -------------------------------------------------------------------


@pytest.mark.parametrize("start, tz", [
    (datetime(2024, 6, 18, tzinfo=timezone.utc), "Europe/Berlin"),
    (datetime(2024, 12, 28, tzinfo=timezone.utc), "America/New_York"),
    (datetime(2025, 3, 28, tzinfo=timezone.utc), "Europe/Berlin"),  # across a DST change
])
def test_model_values_are_encodable_and_inside_register_bounds_for_days(start, tz):
    model, clock = model_at(start, tz)
    for minute in range(0, 6 * 24 * 60, 7):
        clock.now = minute * 60.0
        snap = model.snapshot()
        assert set(snap) >= {r.name for r in EPEVER_TRACER}
        for reg in EPEVER_TRACER:
            value = snap[reg.name]
            encode(reg, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert reg.low is None or value >= reg.low, (reg.name, value)
                assert reg.high is None or value <= reg.high, (reg.name, value)
        assert snap["battery_power"] >= 0
        assert snap["consumed_today"] <= snap["consumed_this_month"] <= snap["total_consumed"]
        assert snap["generated_today"] <= snap["generated_this_year"] <= snap["total_generated"]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), zone=st.sampled_from(["UTC", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]),
       start=st.datetimes(datetime(2001, 1, 1), datetime(2098, 12, 1), timezones=st.just(timezone.utc)))
def test_any_seed_start_and_zone_stays_encodable_and_in_bounds(seed, zone, start):
    model, clock = model_at(start, zone, seed)
    for minute in range(0, 2 * 24 * 60, 23):
        clock.now = minute * 60.0
        snap = model.snapshot()
        for reg in EPEVER_TRACER:
            value = snap[reg.name]
            encode(reg, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert (reg.low is None or value >= reg.low) and (reg.high is None or value <= reg.high), reg.name


def test_pv_current_is_zero_at_night_and_positive_at_noon():
    model, clock = model_at(datetime(2024, 6, 18, tzinfo=timezone.utc), ZONE)
    for day in (18, 19, 20):
        night = local_moment(model, clock, datetime(2024, 6, day, 1, 30))
        assert night["pv_current"] == 0 and night["pv_power"] == 0
        assert night["night"] is True
        assert (night["charging_equipment_status"] >> 2) & 3 == NO_CHARGING
        assert night["charging_equipment_status"] >> 14 == 1  # NO_INPUT_POWER
        assert night["battery_current"] < 0  # the load runs on the battery
        noon = local_moment(model, clock, datetime(2024, 6, day, 13, 0))
        assert noon["pv_current"] > 0 and noon["pv_voltage"] > noon["battery_voltage"]
        assert noon["night"] is False
        assert (noon["charging_equipment_status"] >> 2) & 3 in (BOOST, FLOAT)
        assert noon["charging_equipment_status"] & 1 == 1


def test_soc_rises_by_day_and_falls_at_night():
    model, clock = model_at(datetime(2024, 6, 20, tzinfo=timezone.utc))
    morning = local_moment(model, clock, datetime(2024, 6, 20, 5, 0))
    midday = local_moment(model, clock, datetime(2024, 6, 20, 11, 0))
    assert midday["state_of_charge"] > morning["state_of_charge"]
    assert midday["battery_current"] > 0
    evening = local_moment(model, clock, datetime(2024, 6, 20, 21, 0))
    dawn = local_moment(model, clock, datetime(2024, 6, 21, 3, 30))
    assert dawn["state_of_charge"] < evening["state_of_charge"]
    assert dawn["battery_voltage"] < midday["battery_voltage"]


def test_battery_nearly_full_floats_and_a_drained_one_reports_under_voltage():
    seen_float = seen_low = False
    model, clock = model_at(datetime(2024, 6, 20, tzinfo=timezone.utc))
    for hour in range(24 * 3):
        clock.now = hour * 3600.0
        snap = model.snapshot()
        seen_float |= (snap["charging_equipment_status"] >> 2) & 3 == FLOAT and snap["state_of_charge"] >= 97
    model, clock = model_at(datetime(2024, 12, 1, tzinfo=timezone.utc), seed=1)
    for hour in range(24 * 30):
        clock.now = hour * 3600.0
        snap = model.snapshot()
        if snap["battery_status"] & 0xF in (2, 3):  # UNDER_VOLTAGE, OVER_DISCHARGE
            seen_low = True
            assert snap["battery_voltage"] < 12.0
    assert seen_float and seen_low


def test_energy_counters_and_daily_extremes_reset_at_the_device_midnight():
    # New York is UTC-4 in June: UTC midnight is 20:00 on the device and must not reset anything.
    model, clock = model_at(datetime(2024, 6, 20, 12, tzinfo=timezone.utc), "America/New_York")
    before_utc = local_moment(model, clock, datetime(2024, 6, 20, 19, 50))
    after_utc = local_moment(model, clock, datetime(2024, 6, 20, 20, 10))
    assert after_utc["consumed_today"] > before_utc["consumed_today"] > 0
    late = local_moment(model, clock, datetime(2024, 6, 20, 23, 59))
    early = local_moment(model, clock, datetime(2024, 6, 21, 0, 1))
    assert late["consumed_today"] > 0.2 and late["generated_today"] > 0.2
    assert early["consumed_today"] < 0.01 and early["generated_today"] == 0
    assert early["maximum_pv_voltage_today"] == 0 and late["maximum_pv_voltage_today"] > 15
    assert early["consumed_this_month"] >= late["consumed_this_month"]  # same month: keeps counting
    assert early["device_time"] == datetime(2024, 6, 21, 0, 1)


def test_month_and_year_counters_reset_at_the_device_new_year():
    model, clock = model_at(datetime(2024, 12, 31, 12, tzinfo=timezone.utc), ZONE)
    old = local_moment(model, clock, datetime(2024, 12, 31, 23, 58))
    new = local_moment(model, clock, datetime(2025, 1, 1, 0, 2))
    assert old["generated_this_year"] > 300 and old["consumed_this_month"] > 10
    for name in ("consumed_this_month", "consumed_this_year", "generated_this_month", "generated_this_year"):
        assert new[name] < 0.01, name
    assert new["total_consumed"] > old["total_consumed"]
    assert new["total_generated"] >= old["total_generated"]


def test_model_is_deterministic_for_a_seed_whatever_the_polling():
    start = datetime(2024, 4, 2, 6, tzinfo=timezone.utc)
    often, often_clock = model_at(start, ZONE, seed=5)
    once, once_clock = model_at(start, ZONE, seed=5)
    other, other_clock = model_at(start, ZONE, seed=6)
    for second in range(0, 2 * 86400, 137):
        often_clock.now = second
        often.snapshot()
    for clock in (often_clock, once_clock, other_clock):
        clock.now = 2 * 86400 + 0.5
    assert often.snapshot() == once.snapshot()
    assert other.snapshot() != once.snapshot()
    assert once.sim_time == start + timedelta(days=2, seconds=0.5)


def test_speed_zero_freezes_every_value():
    clock = FakeClock()
    model = SolarDay(seed=2, start=datetime.fromisoformat(START), speed=0, tz=ZoneInfo(ZONE), clock=clock)
    first = model.snapshot()
    clock.now = 5000.0
    assert model.snapshot() == first
    assert first["device_time"] == datetime(2024, 6, 21, 12, 0)  # 10:00 UTC is noon in Berlin


def test_speed_scales_simulated_time():
    clock = FakeClock()
    model = SolarDay(start=datetime.fromisoformat(START), speed=600, clock=clock)
    clock.now = 6.0
    assert model.sim_time == datetime.fromisoformat(START) + timedelta(hours=1)
    assert model.snapshot()["device_time"] == datetime(2024, 6, 21, 11, 0)


# -- the slave over a socat pty pair and TCP --------------------------------------


def test_serial_slave_serves_every_block_as_the_frozen_model_encodes_it(serial_pair, start_simulator, rtu_client):
    start_simulator("--port", serial_pair.device, *FROZEN)
    snapshot = frozen_snapshot()
    for block in plan_blocks(EPEVER_TRACER):
        words = read(rtu_client, block)
        assert words == expected_words(block, snapshot), block.label
        decoded = decode_block(block, words)
        assert decoded.keys() == {r.name for r in block.registers}
    live = next(b for b in plan_blocks(EPEVER_TRACER) if b.start == 0x3100)
    assert decode_block(live, read(rtu_client, live))["pv_voltage"] > 0  # noon in June
    assert rtu_client.read_input_registers(0x3104, count=1, device_id=1).registers == [0]  # a gap answers 0
    outside = rtu_client.read_input_registers(0x3112, count=1, device_id=1)
    assert outside.isError() and outside.exception_code == 2
    with pytest.raises(ModbusIOException):  # another unit on the bus: silence
        rtu_client.read_input_registers(0x3100, count=18, device_id=2)


def test_tcp_slave_with_socket_framing(start_simulator):
    port = free_port()
    start_simulator("--tcp", f"127.0.0.1:{port}", *FROZEN)
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    try:
        snapshot = frozen_snapshot()
        for block in plan_blocks(EPEVER_TRACER):
            assert read(client, block) == expected_words(block, snapshot), block.label
    finally:
        client.close()


def test_serve_in_process_stops_when_the_event_is_set():
    port = free_port()
    options = SimOptions(tcp=f"127.0.0.1:{port}", speed=0, start=datetime.fromisoformat(START),
                                timezone=ZONE, overrides={"battery_voltage": 150})
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(options, stop))
    thread.start()
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
    try:
        deadline = time.monotonic() + 5
        while not client.connect():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.read_input_registers(0x331A, count=1, device_id=1).registers == [15000]
    finally:
        client.close()
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_drop_all_gives_a_timeout(serial_pair, start_simulator, rtu_client):
    start_simulator("--port", serial_pair.device, *FROZEN, "--drop", "1.0")
    with pytest.raises(ModbusIOException):
        rtu_client.read_input_registers(0x3100, count=18, device_id=1)


def test_corrupt_all_gives_an_error_not_data(serial_pair, start_simulator):
    start_simulator("--port", serial_pair.device, *FROZEN, "--corrupt", "1.0")
    received = []

    def trace(sending: bool, data: bytes) -> bytes:
        if not sending:
            received.append(data)
        return data

    client = ModbusSerialClient(serial_pair.client, baudrate=115200, timeout=TIMEOUT_S, retries=0,
                                trace_packet=trace)
    assert client.connect()
    try:
        with pytest.raises(ModbusIOException):
            client.read_input_registers(0x3100, count=18, device_id=1)
    finally:
        client.close()
    assert len(b"".join(received)) == 3 + 36 + 2  # a whole answer came back, with a bad CRC


def test_corrupt_all_on_socket_framing_gives_an_error(start_simulator):
    port = free_port()
    start_simulator("--tcp", f"127.0.0.1:{port}", *FROZEN, "--corrupt", "1.0")
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    try:
        with pytest.raises(ModbusIOException):
            client.read_input_registers(0x3100, count=18, device_id=1)
    finally:
        client.close()


def test_injected_exception_answers_reads_covering_its_address(serial_pair, start_simulator, rtu_client):
    start_simulator("--port", serial_pair.device, *FROZEN, "--exception", "0x3300=4")
    failed = rtu_client.read_input_registers(0x3300, count=20, device_id=1)
    assert failed.isError() and failed.exception_code == 4
    assert not rtu_client.read_input_registers(0x3301, count=3, device_id=1).isError()
    assert not rtu_client.read_input_registers(0x3100, count=18, device_id=1).isError()


def test_strict_gaps_refuse_blocks_spanning_holes_but_answer_single_registers(
        serial_pair, start_simulator, rtu_client):
    start_simulator("--port", serial_pair.device, *FROZEN, "--strict-gaps")
    spanning = rtu_client.read_input_registers(0x3100, count=18, device_id=1)
    assert spanning.isError() and spanning.exception_code == 2  # spans 0x3104
    snapshot = frozen_snapshot()
    for reg in EPEVER_TRACER:
        call = {INPUT: rtu_client.read_input_registers, HOLDING: rtu_client.read_holding_registers,
                DISCRETE: rtu_client.read_discrete_inputs}[reg.table]
        response = call(reg.address, count=reg.width, device_id=1)
        assert not response.isError(), reg.name
        got = response.bits[:1] if reg.table == DISCRETE else response.registers
        assert got == ([bool(w) for w in encode(reg, snapshot[reg.name])] if reg.table == DISCRETE
                       else encode(reg, snapshot[reg.name])), reg.name
    assert rtu_client.read_input_registers(0x3104, count=1, device_id=1).exception_code == 2
    assert rtu_client.read_discrete_inputs(0x2000, count=13, device_id=1).exception_code == 2


def test_slow_delays_each_answer(serial_pair, start_simulator):
    start_simulator("--port", serial_pair.device, *FROZEN, "--slow", "0.25")
    client = ModbusSerialClient(serial_pair.client, baudrate=115200, timeout=1.5, retries=0)
    assert client.connect()
    try:
        began = time.monotonic()
        assert not client.read_input_registers(0x3100, count=18, device_id=1).isError()
        assert time.monotonic() - began >= 0.25
    finally:
        client.close()


def test_values_move_when_time_runs(serial_pair, start_simulator, rtu_client):
    start_simulator("--port", serial_pair.device, "--speed", "3600", "--start", START)
    first = rtu_client.read_holding_registers(0x9013, count=3, device_id=1).registers
    time.sleep(0.3)
    second = rtu_client.read_holding_registers(0x9013, count=3, device_id=1).registers
    assert second != first  # the device clock runs an hour per second


def test_slave_reopens_its_port_after_unplug_and_replug(serial_pair, start_simulator):
    sim = start_simulator("--port", serial_pair.device, *FROZEN)
    serial_pair.unplug()
    time.sleep(0.3)
    serial_pair.replug()
    client = ModbusSerialClient(serial_pair.client, baudrate=115200, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    try:
        deadline = time.monotonic() + 5
        answered = False
        while not answered:
            assert time.monotonic() < deadline, sim.log_path.read_text()
            try:
                answered = not client.read_input_registers(0x3100, count=18, device_id=1).isError()
            except ModbusIOException:
                pass  # the simulator has not reopened its end yet
    finally:
        client.close()
    assert sim.poll() is None


def test_sigterm_exits_0_and_says_so(serial_pair, start_simulator):
    sim = start_simulator("--port", serial_pair.device, *FROZEN)
    sim.send_signal(signal.SIGTERM)
    assert sim.wait(5) == 0
    assert "stopped" in sim.log_path.read_text()


@pytest.mark.parametrize("flags, named", [
    (["--drop", "1.5"], "--drop"),
    (["--corrupt", "x"], "--corrupt"),
    (["--exception", "0x3300"], "--exception"),
    (["--exception", "0x3300=9"], "--exception"),
    (["--timezone", "Mars/Olympus"], "--timezone"),
    (["--start", "noon"], "--start"),
    (["--unit", "0"], "--unit"),
    (["--set", "battery_voltage=1000"], "--set"),
])
def test_bad_flag_values_end_in_a_parser_error_naming_the_flag(flags, named, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        options_from_args(parser.parse_args(["--port", "/dev/null", *flags]), parser)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_options_need_exactly_one_of_port_and_tcp():
    with pytest.raises(ConfigError, match="--port"):
        SimOptions()
    with pytest.raises(ConfigError, match="--port"):
        SimOptions(port="/dev/null", tcp="127.0.0.1:1")
    assert SimOptions(port="/dev/null").framer == "rtu"
    assert SimOptions(tcp="127.0.0.1:1502").framer == "socket"
