"""The simulated EPEVER Tracer as a Modbus slave, on a serial port or TCP, with fault injection.

Built on pymodbus 3.16's own server and its non-deprecated simulator API
(`SimDevice`/`SimData`), through its documented hooks:

- `SimDevice.action` refreshes the served words from the model on every read
  (`encode(reg, snapshot[reg.name])`, the snapshot cached for 50 ms);
- `trace_pdu` judges each received request before pymodbus does: a request
  for another unit or a dropped one is discarded (no answer); an injected
  exception, an address outside the map or a strict gap, an unsupported
  function code is answered with an exception. The judged request travels on
  as an `_Answer` PDU, which also applies `--slow`. Judging here, not in
  pymodbus's address table, is what makes gaps exact for discrete inputs
  (pymodbus validates bits 16 at a time) and keeps one rule for every table;
- `trace_packet` breaks outgoing frames for `--corrupt`. An answer delayed
  past the master's timeout (`--slow`) still goes out late, as on a real bus;
- `trace_connect` tells when the serial port went away (socat or a USB
  adapter unplugged): pymodbus's serial server never reopens a lost port, so
  `serve` recreates the server once the device path is back.

`--set NAME=VALUE` serves a fixed value for one register, even one outside
its physical bounds, so the collector's range checks can be exercised.

Served addresses are the contiguous blocks `plan_blocks` makes from the
register map (the blocks the spec recommends); addresses inside a block with
no register answer 0, or exception 2 with `strict_gaps`, as some firmware does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ..errors import ConfigError, KammthaarError
from ..registers import DISCRETE, EPEVER_TRACER, HOLDING, INPUT, Register, encode, plan_blocks
from .model import SolarDay

log = logging.getLogger(__name__)

TABLE_OF_FUNCTION = {2: DISCRETE, 3: HOLDING, 4: INPUT}
MAX_COUNT = {DISCRETE: 2000, HOLDING: 125, INPUT: 125}
EXCEPTION_CODES = frozenset(int(code) for code in ExcCodes)
SNAPSHOT_TTL_S = 0.05
POLL_S = 0.1


@dataclass
class SimOptions:
    """Everything `serve` needs; validated on construction (ConfigError names the flag)."""

    port: str | None = None
    tcp: str | None = None  # "HOST:PORT"
    framer: str | None = None  # "rtu" or "socket"; None: rtu on a serial port, socket on TCP
    baudrate: int = 115200
    unit: int = 1
    speed: float = 1.0
    seed: int = 1
    start: datetime | None = None  # naive: local time of the device (timezone)
    timezone: str | None = None
    drop: float = 0.0
    corrupt: float = 0.0
    slow: float = 0.0
    exceptions: dict[int, int] = field(default_factory=dict)
    strict_gaps: bool = False
    overrides: dict[str, float | int | bool] = field(default_factory=dict)  # register name -> value served

    def __post_init__(self):
        if (self.port is None) == (self.tcp is None):
            raise ConfigError("exactly one of --port and --tcp is required")
        if self.tcp is not None:
            _split_host_port(self.tcp)
        if self.framer is None:
            self.framer = "rtu" if self.port is not None else "socket"
        if self.framer not in ("rtu", "socket"):
            raise ConfigError(f"--framer must be rtu or socket, not {self.framer!r}")
        if self.baudrate <= 0:
            raise ConfigError(f"--baudrate must be positive, not {self.baudrate}")
        if not 1 <= self.unit <= 247:
            raise ConfigError(f"--unit must be 1..247, not {self.unit}")
        if self.speed < 0:
            raise ConfigError(f"--speed must be >= 0, not {self.speed}")
        for flag, value in (("--drop", self.drop), ("--corrupt", self.corrupt)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{flag} must be a fraction between 0 and 1, not {value}")
        if self.slow < 0:
            raise ConfigError(f"--slow must be >= 0 seconds, not {self.slow}")
        for address, code in self.exceptions.items():
            if not 0 <= address <= 0xFFFF:
                raise ConfigError(f"--exception address 0x{address:X} is outside 0..0xFFFF")
            if code not in EXCEPTION_CODES:
                raise ConfigError(f"--exception code {code} is not a Modbus exception code "
                                  f"({sorted(EXCEPTION_CODES)})")
        if self.timezone is not None:
            _zone(self.timezone)
        for name, value in self.overrides.items():
            _check_override(name, value)

    @property
    def zone(self) -> ZoneInfo:
        """The device's local zone (UTC unless --timezone)."""
        return _zone(self.timezone or "UTC")

    @property
    def start_utc(self) -> datetime | None:
        """--start as an aware datetime; a naive one is the device's local time."""
        if self.start is None or self.start.tzinfo is not None:
            return self.start
        return self.start.replace(tzinfo=self.zone)

    @property
    def where(self) -> str:
        """Where the slave listens, for log lines."""
        return f"serial {self.port}" if self.port is not None else f"tcp {self.tcp}"


class RegisterImage:
    """The words the device serves, per table, encoded from one model snapshot."""

    def __init__(self, model: SolarDay, registers: tuple[Register, ...] = EPEVER_TRACER,
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
                for offset, word in enumerate(encode(reg, snapshot[reg.name])):
                    words[reg.table][reg.address + offset] = word
            self._words, self._taken = words, now
        return self._words[table]


class AddressMap:
    """Which addresses answer, and what a request gets instead of data."""

    def __init__(self, options: SimOptions, registers: tuple[Register, ...] = EPEVER_TRACER):
        self.exceptions = dict(options.exceptions)
        self.blocks = plan_blocks(registers)
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
            return ExceptionResponse(self.function_code, self.code, device_id=device_id)
        return await self.request.datastore_update(context, device_id)


class Slave:
    """The pymodbus device and hooks serving one model with the configured faults."""

    def __init__(self, options: SimOptions, model: SolarDay):
        self.options = options
        self.image = RegisterImage(model, overrides=options.overrides)
        self.addresses = AddressMap(options)
        # Faults are seeded too, so a failing test run can be replayed.
        self._rng = random.Random(f"faults-{options.seed}")
        self.lost = asyncio.Event()

    def device(self) -> SimDevice:
        """A SimDevice whose layout covers every block; `trace_pdu` decides what is served."""
        holding, inputs, discrete = [], [], []
        for block in self.addresses.blocks:
            if block.table == DISCRETE:
                discrete += [SimData(r.address, values=[False], datatype=DataType.BITS) for r in block.registers]
            else:
                entry = SimData(block.start, count=block.count, values=0, datatype=DataType.REGISTERS)
                (holding if block.table == HOLDING else inputs).append(entry)
        # pymodbus wants a coil table too; it is unreachable (FC 1 is refused).
        coils = [SimData(0, values=[False], datatype=DataType.BITS)]
        return SimDevice(id=self.options.unit, simdata=(coils, discrete, holding, inputs),
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

    def trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        """Judge a received request: None is no answer, else an `_Answer` carrying the verdict."""
        if sending:
            return pdu
        if pdu.dev_id != self.options.unit:
            return None  # another unit on the bus: not ours to answer
        if self.options.drop and self._rng.random() < self.options.drop:
            return None
        code = self.addresses.refusal(pdu.function_code, pdu.address, pdu.count)
        return _Answer(pdu, code, self.options.slow)

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


def serve(options: SimOptions, stop: threading.Event | None = None) -> None:
    """Serve the simulator until SIGTERM/SIGINT or until `stop` is set."""
    asyncio.run(_serve(options, stop))


async def _serve(options: SimOptions, stop: threading.Event | None) -> None:
    model = SolarDay(seed=options.seed, start=options.start_utc, speed=options.speed, tz=options.zone)
    slave = Slave(options, model)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
    for signum in signals:
        loop.add_signal_handler(signum, done.set)
    watcher = asyncio.create_task(_watch_stop(stop, done)) if stop is not None else None
    try:
        if options.port is not None:
            await _serve_serial(options, slave, done)
        else:
            await _serve_tcp(options, slave, done)
    finally:
        if watcher is not None:
            watcher.cancel()
        for signum in signals:
            loop.remove_signal_handler(signum)
    log.info("simulator on %s stopped", options.where)


async def _watch_stop(stop: threading.Event, done: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(POLL_S)
    done.set()


def _describe(options: SimOptions, where: str) -> str:
    return (f"EPEVER simulator listening on {where} ({options.framer}, unit {options.unit}, "
            f"speed {options.speed:g}, seed {options.seed}, timezone {options.zone.key})")


async def _serve_serial(options: SimOptions, slave: Slave, done: asyncio.Event) -> None:
    announced = waiting = False
    while not done.is_set():
        if not os.path.exists(options.port):
            if not announced and not waiting:
                log.info("waiting for serial port %s to appear", options.port)
                waiting = True
            await _wait(done, POLL_S)
            continue
        server = ModbusSerialServer(
            slave.device(), framer=FramerType(options.framer), port=options.port, baudrate=options.baudrate,
            trace_pdu=slave.trace_pdu, trace_packet=slave.trace_packet, trace_connect=slave.trace_connect,
            reconnect_delay=0,
        )
        slave.lost.clear()
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            # The path exists but cannot be opened yet (socat still setting up, permissions).
            await server.shutdown()
            await _wait(done, POLL_S)
            continue
        if not announced:
            log.info(_describe(options, f"serial {options.port} at {options.baudrate} baud"))
            announced = True
        else:
            log.info("serial port %s is back", options.port)
        lost = asyncio.create_task(slave.lost.wait())
        finished = asyncio.create_task(done.wait())
        await asyncio.wait({lost, finished}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        finished.cancel()
        await server.shutdown()
        if slave.lost.is_set() and not done.is_set():
            log.warning("serial port %s went away; waiting for it to come back", options.port)


async def _serve_tcp(options: SimOptions, slave: Slave, done: asyncio.Event) -> None:
    host, port = _split_host_port(options.tcp)
    server = ModbusTcpServer(
        slave.device(), framer=FramerType(options.framer), address=(host, port),
        trace_pdu=slave.trace_pdu, trace_packet=slave.trace_packet,
    )
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:  # pymodbus's word for "could not bind"
        await server.shutdown()
        raise KammthaarError(f"cannot listen on tcp {options.tcp}: is the port in use?") from exc
    try:
        bound = server.transport.sockets[0].getsockname()  # the real port when asked for 0
        log.info(_describe(options, f"tcp {bound[0]}:{bound[1]}"))
        await done.wait()
    finally:
        await server.shutdown()


async def _wait(done: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except asyncio.TimeoutError:
        pass


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--timezone {name!r} is not a known IANA zone") from exc


def _split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--tcp must be HOST:PORT, not {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


REGISTERS_BY_NAME = {reg.name: reg for reg in EPEVER_TRACER}
_RAW_RANGE = {"u16": (0, 0xFFFF), "bits": (0, 0xFFFF), "enum": (0, 0xFFFF), "s16": (-0x8000, 0x7FFF),
              "u32": (0, 0xFFFFFFFF), "s32": (-0x80000000, 0x7FFFFFFF), "bool": (0, 1)}


def _check_override(name: str, value) -> None:
    """A forced value must name a register and fit its encoding; its physical bounds are not checked."""
    reg = REGISTERS_BY_NAME.get(name)
    if reg is None or reg.kind == "clock":
        raise ConfigError(f"--set {name}: not a numeric register of the map")
    low, high = _RAW_RANGE[reg.kind]
    try:
        fits = low <= round(value * reg.divisor) <= high
    except (OverflowError, ValueError):
        fits = False
    if not fits:
        raise ConfigError(f"--set {name}={value} does not fit a {reg.kind}")


# -- command line -------------------------------------------------------------
# Each flag is checked by its argparse type, so a bad value ends in parser.error
# naming the flag; SimOptions checks the same again for callers without a parser.

def _checked(convert):
    """An argparse type from a converter raising ValueError or ConfigError."""
    def parse(text: str):
        try:
            return convert(text)
        except (ValueError, ConfigError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = convert.__name__.strip("_")
    return parse


def _number(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{text} is not {what}")
    return value


def _integer(text: str, low: int, high: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{text} is not in {low}..{high}")
    return value


def _fraction(text: str) -> float:
    return _number(text, 0.0, 1.0, "a fraction between 0 and 1")


def _speed(text: str) -> float:
    return _number(text, 0.0, 1e6, "between 0 and 1000000")


def _seconds(text: str) -> float:
    return _number(text, 0.0, 3600.0, "between 0 and 3600 seconds")


def _baudrate(text: str) -> int:
    return _integer(text, 1, 10_000_000)


def _unit(text: str) -> int:
    return _integer(text, 1, 247)


def _iso8601(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time") from None


def _timezone(text: str) -> str:
    return _zone(text).key


def _host_port(text: str) -> str:
    _split_host_port(text)
    return text


def _exception(text: str) -> tuple[int, int]:
    address, sep, code = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not ADDR=CODE (e.g. 0x3300=4)")
    value = _integer(address, 0, 0xFFFF), _integer(code, 1, 255)
    if value[1] not in EXCEPTION_CODES:
        raise ValueError(f"{code} is not a Modbus exception code {sorted(EXCEPTION_CODES)}")
    return value


def _override(text: str) -> tuple[str, float | int | bool]:
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not NAME=VALUE (e.g. battery_voltage=150)")
    reg = REGISTERS_BY_NAME.get(name)
    if reg is not None and reg.kind == "bool":
        value: float | int | bool = raw.lower() in ("1", "true", "yes", "on")
    else:
        value = _number(raw, float("-inf"), float("inf"), "a number")
        value = int(value) if value.is_integer() else value
    _check_override(name, value)
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to a parser (used by `kammthaar simulate` and `main`)."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEVICE", help="serial device to answer on (e.g. a socat pty)")
    where.add_argument("--tcp", type=_checked(_host_port), metavar="HOST:PORT",
                       help="listen on TCP instead of a serial port (port 0: any free port)")
    parser.add_argument("--framer", choices=("rtu", "socket"),
                        help="Modbus framing (default: rtu on --port, socket on --tcp)")
    parser.add_argument("--baudrate", type=_checked(_baudrate), default=115200, help="serial speed (default 115200)")
    parser.add_argument("--unit", type=_checked(_unit), default=1, help="Modbus unit id to answer (default 1)")
    parser.add_argument("--speed", type=_checked(_speed), default=1.0, metavar="N",
                        help="simulated seconds per real second; 0 freezes time (default 1)")
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="seed of weather and faults (default 1)")
    parser.add_argument("--start", type=_checked(_iso8601), metavar="ISO8601",
                        help="simulated start time; without an offset it is the device's local time (default now)")
    parser.add_argument("--timezone", type=_checked(_timezone), metavar="IANA",
                        help="zone of the device clock (default UTC)")
    parser.add_argument("--drop", type=_checked(_fraction), default=0.0, metavar="FRACTION",
                        help="share of requests silently not answered")
    parser.add_argument("--corrupt", type=_checked(_fraction), default=0.0, metavar="FRACTION",
                        help="share of answers sent with a broken CRC (garbled frame on socket framing)")
    parser.add_argument("--slow", type=_checked(_seconds), default=0.0, metavar="SECONDS",
                        help="delay before each answer")
    parser.add_argument("--exception", type=_checked(_exception), action="append", default=[], metavar="ADDR=CODE",
                        dest="exceptions", help="answer reads covering ADDR with exception CODE (repeatable)")
    parser.add_argument("--strict-gaps", action="store_true",
                        help="answer exception 2 for reads spanning addresses with no register")
    parser.add_argument("--set", type=_checked(_override), action="append", default=[], metavar="NAME=VALUE",
                        dest="overrides", help="serve VALUE for register NAME whatever the model says, "
                        "even an impossible one (repeatable)")


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> SimOptions:
    """Build SimOptions from parsed flags; bad values end in `parser.error` naming the flag."""
    try:
        return SimOptions(
            port=args.port, tcp=args.tcp, framer=args.framer, baudrate=args.baudrate, unit=args.unit,
            speed=args.speed, seed=args.seed, start=args.start, timezone=args.timezone, drop=args.drop,
            corrupt=args.corrupt, slow=args.slow, exceptions=dict(args.exceptions), strict_gaps=args.strict_gaps,
            overrides=dict(args.overrides),
        )
    except ConfigError as exc:
        if parser is None:
            raise
        parser.error(str(exc))
        raise  # pragma: no cover - parser.error exits


def main(argv: list[str] | None = None) -> None:
    """`python -m edge_store.simulator.server --port DEVICE ...`"""
    parser = argparse.ArgumentParser(prog="python -m edge_store.simulator.server",
                                     description="Serve a simulated EPEVER Tracer over Modbus.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    options = options_from_args(args, parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    try:
        serve(options)
    except KammthaarError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
