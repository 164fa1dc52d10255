"""The simulated devices' behaviour on the bus: the pymodbus slaves, their hooks and the injected faults.

A `Bus` serves one or more units (`Slave`s), each a device model (model.py,
rover.py) read through its register table (edge_store/catalogue/). What each
register holds is the model's; this module decides what a request gets,
through pymodbus 3.16's documented hooks and its non-deprecated simulator API
(`SimDevice`/`SimData`, one per unit):

- `SimDevice.action` refreshes the served words from the model on every read
  (`encode(reg, snapshot[reg.name])`, the snapshot cached for 50 ms);
- `trace_pdu` judges each received request before pymodbus does: a request
  for a unit not served, to a silent unit or a dropped one gets no answer; an injected
  exception, an address outside the map or a strict gap, an unsupported
  function code is answered with an exception. The judged request travels on
  as an `_Answer` PDU, which also applies the unit's delay (slow). Judging here, not in
  pymodbus's address table, is what makes gaps exact for discrete inputs
  (pymodbus validates bits 16 at a time) and keeps one rule for every table;
- `trace_packet` breaks outgoing frames for `--corrupt`. An answer delayed
  past the master's timeout (`--slow`) still goes out late, as on a real bus;
- `trace_connect` tells when the serial port went away (socat or a USB
  adapter unplugged), so serving.py reopens it.

Served addresses are the contiguous blocks `plan_blocks` makes from the
register map (the blocks the spec recommends); addresses inside a block with
no register answer 0, or exception 2 with `strict_gaps`, as some firmware does.
Two values sharing a register (the Rover's bytes) are merged into its word.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerRTU
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.simulator import DataType, SimData, SimDevice

from ..catalogue import MODELS, Catalogue
from ..registers import DISCRETE, HOLDING, INPUT, Register, encode, plan_blocks
from .model import SolarDay
from .options import SimOptions, UnitOptions

log = logging.getLogger("edge_store.simulator")

TABLE_OF_FUNCTION = {2: DISCRETE, 3: HOLDING, 4: INPUT}
MAX_COUNT = {DISCRETE: 2000, HOLDING: 125, INPUT: 125}
SNAPSHOT_TTL_S = 0.05
BYTE_KINDS = ("u8hi", "u8lo", "sm8hi", "sm8lo")


class RegisterImage:
    """The words the device serves, per table, encoded from one model snapshot."""

    def __init__(self, model: SolarDay, registers: tuple[Register, ...],
                 overrides: dict[str, float | int | bool] | None = None,
                 ttl_s: float = SNAPSHOT_TTL_S, clock=time.monotonic):
        self.model = model
        self.overrides = dict(overrides or {})
        self.registers = registers
        self.ttl_s = ttl_s
        self._clock = clock
        self._taken = float("-inf")
        self._words: dict[str, dict[int, int]] = {}

    def words(self, table: str) -> dict[int, int]:
        """Address -> word for one table, from a snapshot at most ttl_s old."""
        now = self._clock()
        if now - self._taken >= self.ttl_s:
            snapshot = self.model.snapshot()
            snapshot.update(self.overrides)
            words: dict[str, dict[int, int]] = {INPUT: {}, HOLDING: {}, DISCRETE: {}}
            for reg in self.registers:
                served = words[reg.table]
                for offset, word in enumerate(encode(reg, snapshot[reg.name])):
                    if reg.kind in BYTE_KINDS:  # one byte of a register shared with another value
                        served[reg.address + offset] = served.get(reg.address + offset, 0) | word
                    else:
                        served[reg.address + offset] = word
            self._words, self._taken = words, now
        return self._words[table]


class AddressMap:
    """Which addresses answer, and what a request gets instead of data."""

    def __init__(self, options: SimOptions, registers: tuple[Register, ...], max_gap: int):
        self.exceptions = dict(options.exceptions)
        self.blocks = plan_blocks(registers, max_gap)
        self.served: dict[str, set[int]] = {INPUT: set(), HOLDING: set(), DISCRETE: set()}
        if options.strict_gaps:
            for reg in registers:
                self.served[reg.table].update(range(reg.address, reg.address + reg.width))
        else:
            for block in self.blocks:
                self.served[block.table].update(range(block.start, block.start + block.count))

    def refusal(self, function_code: int, address: int, count: int) -> int | None:
        """The exception code a read gets, or None when it is answered with data."""
        table = TABLE_OF_FUNCTION.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not 1 <= count <= MAX_COUNT[table]:
            return ExcCodes.ILLEGAL_VALUE
        covered = range(address, address + count)
        for injected, code in self.exceptions.items():
            if injected in covered:
                return code
        served = self.served[table]
        if any(a not in served for a in covered):
            return ExcCodes.ILLEGAL_ADDRESS
        return None


class _Answer(ModbusPDU):
    """A received request carrying its verdict; pymodbus awaits datastore_update to answer it."""

    def __init__(self, request: ModbusPDU, code: int | None, delay_s: float):
        super().__init__(dev_id=request.dev_id, transaction_id=request.transaction_id,
                         address=request.address, count=request.count)
        self.function_code = request.function_code
        self.request = request
        self.code = code
        self.delay_s = delay_s

    async def datastore_update(self, context, device_id: int) -> ModbusPDU:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.code:
            response = ExceptionResponse(self.function_code, self.code, device_id=device_id)
        else:
            response = await self.request.datastore_update(context, device_id)
        # pymodbus stamps an answer with the ids of the request it received last: after a
        # delay, another one's. `Bus.trace_pdu` puts back those of the request it answers.
        response.answers = self.request
        return response


class _Silence:
    """What an unanswered request gives pymodbus: falsy, so nothing is sent."""

    transaction_id = dev_id = 0

    def __bool__(self) -> bool:
        return False


class _Ignored(ModbusPDU):
    """A request no unit answers (another unit's, a silent one's, a dropped one).

    Given to pymodbus rather than None: None would also erase the request a late
    answer still needs (pymodbus keeps only the last one received).
    """

    def __init__(self, request: ModbusPDU):
        super().__init__(dev_id=request.dev_id, transaction_id=request.transaction_id)
        self.function_code = request.function_code

    async def datastore_update(self, context, device_id: int) -> _Silence:
        return _Silence()


class Slave:
    """One served unit: its pymodbus device, the words its model gives, and its faults."""

    def __init__(self, options: SimOptions, unit: UnitOptions, model: SolarDay):
        self.unit = unit
        self.catalogue: Catalogue = MODELS[unit.model]
        registers = self.catalogue.registers
        names = {r.name for r in registers}
        self.image = RegisterImage(model, registers, overrides={k: v for k, v in options.overrides.items() if k in names})
        self.addresses = AddressMap(options, registers, self.catalogue.max_gap)

    def device(self) -> SimDevice:
        """A SimDevice whose layout covers every block; `trace_pdu` decides what is served."""
        holding, inputs, discrete = [], [], []
        for block in self.addresses.blocks:
            if block.table == DISCRETE:
                discrete += [SimData(r.address, values=[False], datatype=DataType.BITS) for r in block.registers]
            else:
                entry = SimData(block.start, count=block.count, values=0, datatype=DataType.REGISTERS)
                (holding if block.table == HOLDING else inputs).append(entry)
        # pymodbus wants every table; one the model lacks (coils, the Rover's FC 2 and 4) is unreachable:
        # `trace_pdu` refuses it.
        coils = [SimData(0, values=[False], datatype=DataType.BITS)]
        discrete = discrete or coils
        holding = holding or [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
        inputs = inputs or [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
        return SimDevice(id=self.unit.unit, simdata=(coils, discrete, holding, inputs),
                         use_bit_addressing=True, action=self._refresh)

    async def _refresh(self, function_code, start, address, count, registers, values):
        """SimDevice action: copy the model's current words into pymodbus's table."""
        table = TABLE_OF_FUNCTION[function_code]
        words = self.image.words(table)
        if table == DISCRETE:
            # `start` and `registers` are 16-bit words of packed bits here.
            packed = [0] * len(registers)
            for bit_address, word in words.items():
                index = bit_address - start * 16
                if word and 0 <= index < 16 * len(packed):
                    packed[index // 16] |= 1 << (index % 16)
            registers[:] = packed
        else:
            for a in range(address, address + count):
                registers[a - start] = words.get(a, 0)
        return None


class Bus:
    """Every served unit on one port, and the hooks pymodbus calls for all of them."""

    def __init__(self, options: SimOptions, models: dict[int, SolarDay]):
        self.options = options
        self.slaves = {unit.unit: Slave(options, unit, models[unit.unit]) for unit in options.units}
        # Faults are seeded too, so a failing test run can be replayed.
        self._rng = random.Random(f"faults-{options.seed}")
        self.lost = asyncio.Event()
        self.silenced = True  # the units marked silent keep silent; SIGUSR1 toggles it (serving.py)

    def toggle_silent(self) -> None:
        """The units marked silent start answering, or fall silent again: a unit coming back, at run time."""
        self.silenced = not self.silenced
        units = ", ".join(str(u) for u, s in self.slaves.items() if s.unit.silent) or "none"
        log.info("silent units (%s) %s", units, "silent again" if self.silenced else "answer now")

    def devices(self) -> list[SimDevice]:
        return [slave.device() for slave in self.slaves.values()]

    def trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """Judge a received request: `_Ignored` gets no answer, an `_Answer` carries the verdict.

        An answer going out gets the unit id (and transaction id) of the request it answers."""
        if sending:
            request = getattr(pdu, "answers", None)
            if request is not None:
                pdu.dev_id, pdu.transaction_id = request.dev_id, request.transaction_id
            return pdu
        slave = self.slaves.get(pdu.dev_id)
        if slave is None or (slave.unit.silent and self.silenced):
            return _Ignored(pdu)  # another unit on the bus, or one that does not answer (now)
        if self.options.drop and self._rng.random() < self.options.drop:
            return _Ignored(pdu)
        code = slave.addresses.refusal(pdu.function_code, pdu.address, pdu.count)
        return _Answer(pdu, code, slave.unit.slow or 0.0)

    def trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Break a share (--corrupt) of the outgoing frames."""
        if not sending or not data or not self.options.corrupt or self._rng.random() >= self.options.corrupt:
            return data
        if self.options.framer == "rtu":
            body = data[:-2]
            crc = FramerRTU.compute_CRC(body) ^ 0xA55A  # a CRC that is certainly wrong
            return body + crc.to_bytes(2, "big")
        # Socket framing has no checksum: garble the PDU so it cannot be decoded.
        return data[:7] + bytes(b ^ 0x5A for b in data[7:])

    def trace_connect(self, connected: bool) -> None:
        """Note that the serial port went away, so `serve` reopens it."""
        if not connected and self.options.port is not None:
            self.lost.set()
