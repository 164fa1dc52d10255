"""The simulator: the real slave read by a real pymodbus client, its faults and its options."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from edge_store.errors import ConfigError
from edge_store.catalogue.epever_tracer import REGISTERS as EPEVER_TRACER
from edge_store.registers import DISCRETE, HOLDING, INPUT, decode_block, encode, plan_blocks
from edge_store.simulator.options import SimOptions, add_arguments, options_from_args
from edge_store.simulator.serving import serve
from edge_store.simulator.model import SolarDay

from .support import free_port

START = "2024-06-21T10:00:00+00:00"
ZONE = "Europe/Berlin"
FROZEN = ["--speed", "0", "--start", START, "--timezone", ZONE, "--seed", "1"]
TIMEOUT_S = 0.3


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
