"""The Modbus reader against the real simulator: what reaches the store is the answer to the request asked."""

from __future__ import annotations

import pytest

from edge_store.errors import ModbusError
from edge_store.modbus_reader import Reader
from edge_store.registers import Block, LIVE, plan_blocks, registers_of
from tests.samples import FROZEN
from tests.support import free_port


def block_at(start: int) -> Block:
    return next(b for b in plan_blocks(registers_of(LIVE)) if b.start == start)


def test_a_late_tcp_answer_is_never_taken_for_the_next_request(start_simulator):
    port = free_port()
    # Every answer comes 0.3 s after its request, later than the reader waits.
    start_simulator("--tcp", f"127.0.0.1:{port}", "--framer", "rtu", "--slow", "0.3", *FROZEN)
    reader = Reader(f"rtu+tcp://127.0.0.1:{port}", timeout_s=0.25, retries=0)
    status, battery = block_at(0x3200), block_at(0x331A)
    assert status.count == battery.count == 3  # same function, same size: only the request tells them apart
    try:
        with pytest.raises(ModbusError):
            reader.read_block(status)
        # The status words arrive while this request waits: they must not become battery values.
        with pytest.raises(ModbusError):
            reader.read_block(battery)
    finally:
        reader.close()
