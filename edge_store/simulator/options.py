"""The simulator's options: one frozen dataclass, validated once, built from `kammthaar simulate`'s flags.

The flags' argparse types only turn text into values (a number, a date,
ADDR=CODE, NAME=VALUE); every rule is checked once, in `SimOptions`, whose
errors name the flag. `options_from_args` turns such an error into the
parser's usage error (exit 2).

`--set NAME=VALUE` serves a fixed value for one register, even one outside
its physical bounds, so the collector's range checks can be exercised; the
value must still fit the register's encoding.

`--device unit=N,model=M[,seed=S][,slow=SECONDS][,silent]` (repeatable) serves
several units, of any model of edge_store/catalogue/, on one port: each its own
seed (default: --seed + unit - 1), a silent unit does not answer (until SIGUSR1), a slow one answers
after its delay. Without --device: one EPEVER Tracer at --unit. The other fault
flags and --set apply to every unit (--set to the units whose model has the register).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymodbus.constants import ExcCodes

from ..errors import ConfigError
from ..ports import HostPort
from ..catalogue import DEFAULT_MODEL, MODELS
from ..registers import TEXT_KINDS

EXCEPTION_CODES = frozenset(int(code) for code in ExcCodes)
# Every model's registers by name (a name two models share is one value, possibly two encodings).
REGISTERS_BY_NAME: dict[str, list] = {}
for _cat in MODELS.values():
    for _reg in _cat.registers:
        REGISTERS_BY_NAME.setdefault(_reg.name, []).append(_reg)
_RAW_RANGE = {"u16": (0, 0xFFFF), "bits": (0, 0xFFFF), "enum": (0, 0xFFFF), "s16": (-0x8000, 0x7FFF),
              "u32": (0, 0xFFFFFFFF), "s32": (-0x80000000, 0x7FFFFFFF), "bool": (0, 1),
              "u32hw": (0, 0xFFFFFFFF), "s32hw": (-0x80000000, 0x7FFFFFFF), "u8hi": (0, 0xFF), "u8lo": (0, 0xFF),
              "sm8hi": (-0x7F, 0x7F), "sm8lo": (-0x7F, 0x7F)}
MAX_SPEED = 1e6
MAX_SLOW_S = 3600.0
MAX_UNIT = 255  # 248-255 are reserved by Modbus, yet some Rovers answer only on 255


@dataclass(frozen=True)
class UnitOptions:
    """One served unit: its id, model, seed and faults (`slow` None: the --slow of every unit)."""

    unit: int
    model: str = DEFAULT_MODEL
    seed: int | None = None
    silent: bool = False
    slow: float | None = None

    def check(self) -> None:
        where = f"--device unit={self.unit}"
        if not 1 <= self.unit <= MAX_UNIT:
            raise ConfigError(f"--device unit must be 1..{MAX_UNIT}, not {self.unit}")
        if self.model not in MODELS:
            raise ConfigError(f"{where}: model must be one of {', '.join(MODELS)}, not {self.model!r}")
        if self.slow is not None and not 0 <= self.slow <= MAX_SLOW_S:
            raise ConfigError(f"{where}: slow must be between 0 and {MAX_SLOW_S:g} seconds, not {self.slow}")


@dataclass(frozen=True)
class SimOptions:
    """Everything `serve` needs; validated on construction (ConfigError names the flag)."""

    port: str | None = None  # a serial device
    tcp: HostPort | str | None = None  # "HOST:PORT" becomes a HostPort (port 0: any free port)
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
    devices: tuple[UnitOptions, ...] = ()  # several units (--device); none: one EPEVER at `unit`

    def __post_init__(self):
        if (self.port is None) == (self.tcp is None):
            raise ConfigError("exactly one of --port and --tcp is required")
        if isinstance(self.tcp, str):
            try:
                self._set("tcp", HostPort.parse(self.tcp, any_port=True, wildcard=True))
            except ValueError:
                raise ConfigError(f"--tcp must be HOST:PORT, not {self.tcp!r}") from None
        if self.framer is None:
            self._set("framer", "rtu" if self.port is not None else "socket")
        if self.framer not in ("rtu", "socket"):
            raise ConfigError(f"--framer must be rtu or socket, not {self.framer!r}")
        if self.baudrate <= 0:
            raise ConfigError(f"--baudrate must be positive, not {self.baudrate}")
        if not 1 <= self.unit <= 247:
            raise ConfigError(f"--unit must be 1..247, not {self.unit}")
        if not 0 <= self.speed <= MAX_SPEED:
            raise ConfigError(f"--speed must be between 0 and {MAX_SPEED:g}, not {self.speed}")
        for flag, value in (("--drop", self.drop), ("--corrupt", self.corrupt)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{flag} must be a fraction between 0 and 1, not {value}")
        if not 0 <= self.slow <= MAX_SLOW_S:
            raise ConfigError(f"--slow must be between 0 and {MAX_SLOW_S:g} seconds, not {self.slow}")
        for address, code in self.exceptions.items():
            if not 0 <= address <= 0xFFFF:
                raise ConfigError(f"--exception address 0x{address:X} is outside 0..0xFFFF")
            if code not in EXCEPTION_CODES:
                raise ConfigError(f"--exception code {code} is not a Modbus exception code "
                                  f"({sorted(EXCEPTION_CODES)})")
        if self.timezone is not None:
            self._set("timezone", _zone(self.timezone).key)
        for name, value in self.overrides.items():
            _check_override(name, value)
        for device in self.devices:
            device.check()
        units = [d.unit for d in self.devices]
        if len(set(units)) != len(units):
            raise ConfigError(f"--device: unit {next(u for u in units if units.count(u) > 1)} is given twice")

    @property
    def units(self) -> tuple[UnitOptions, ...]:
        """Every served unit with its seed and delay resolved."""
        devices = self.devices or (UnitOptions(self.unit, DEFAULT_MODEL, self.seed),)
        return tuple(UnitOptions(d.unit, d.model, self.seed + d.unit - 1 if d.seed is None else d.seed, d.silent,
                                 self.slow if d.slow is None else d.slow) for d in devices)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalising a field of a frozen dataclass, once

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


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--timezone {name!r} is not a known IANA zone") from exc


def _check_override(name: str, value) -> None:
    """A forced value must name a register and fit its encoding; its physical bounds are not checked."""
    regs = REGISTERS_BY_NAME.get(name)
    if regs is None or any(reg.kind in TEXT_KINDS for reg in regs):
        raise ConfigError(f"--set {name}: not a numeric register of the map")
    for reg in regs:
        low, high = _RAW_RANGE[reg.kind]
        try:
            fits = low <= round(value * reg.divisor) <= high
        except (OverflowError, ValueError):
            fits = False
        if not fits:
            raise ConfigError(f"--set {name}={value} does not fit a {reg.kind}")


# -- flag text -> values (the rules are SimOptions') ----------------------------------

def _parser(convert):
    """An argparse type from a converter raising ValueError with the message to show."""
    def parse(text: str):
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = convert.__name__.strip("_")
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _iso8601(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time") from None


def _exception(text: str) -> tuple[int, int]:
    address, sep, code = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not ADDR=CODE (e.g. 0x3300=4)")
    return _integer(address), _integer(code)


def _override(text: str) -> tuple[str, float | int | bool]:
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not NAME=VALUE (e.g. battery_voltage=150)")
    reg = REGISTERS_BY_NAME.get(name, [None])[0]
    if reg is not None and reg.kind == "bool":
        return name, raw.lower() in ("1", "true", "yes", "on")
    value = _number(raw)
    return name, int(value) if value.is_integer() else value


def _device(text: str) -> UnitOptions:
    """unit=N,model=M,seed=S,slow=SECONDS,silent -> UnitOptions (the rules are its `check`)."""
    values: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if key == "silent" and not sep:
            values["silent"] = True
        elif key in ("unit", "seed") and sep:
            values[key] = _integer(raw)
        elif key == "slow" and sep:
            values[key] = _number(raw)
        elif key == "model" and sep:
            values[key] = raw
        else:
            raise ValueError(f"{item!r} in {text!r}: expected unit=N, model=NAME, seed=N, slow=SECONDS or silent")
    if "unit" not in values:
        raise ValueError(f"{text!r} names no unit (unit=N)")
    return UnitOptions(**values)


_NUMBER, _INTEGER = _parser(_number), _parser(_integer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to a parser (`kammthaar simulate`)."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEVICE", help="serial device to answer on (e.g. a socat pty)")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="listen on TCP instead of a serial port (port 0: any free port)")
    parser.add_argument("--framer", choices=("rtu", "socket"),
                        help="Modbus framing (default: rtu on --port, socket on --tcp)")
    parser.add_argument("--baudrate", type=_INTEGER, default=115200, help="serial speed (default 115200)")
    parser.add_argument("--unit", type=_INTEGER, default=1, help="Modbus unit id to answer (default 1)")
    parser.add_argument("--speed", type=_NUMBER, default=1.0, metavar="N",
                        help="simulated seconds per real second; 0 freezes time (default 1)")
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="seed of weather and faults (default 1)")
    parser.add_argument("--start", type=_parser(_iso8601), metavar="ISO8601",
                        help="simulated start time; without an offset it is the device's local time (default now)")
    parser.add_argument("--timezone", metavar="IANA", help="zone of the device clock (default UTC)")
    parser.add_argument("--drop", type=_NUMBER, default=0.0, metavar="FRACTION",
                        help="share of requests silently not answered")
    parser.add_argument("--corrupt", type=_NUMBER, default=0.0, metavar="FRACTION",
                        help="share of answers sent with a broken CRC (garbled frame on socket framing)")
    parser.add_argument("--slow", type=_NUMBER, default=0.0, metavar="SECONDS",
                        help="delay before each answer")
    parser.add_argument("--exception", type=_parser(_exception), action="append", default=[], metavar="ADDR=CODE",
                        dest="exceptions", help="answer reads covering ADDR with exception CODE (repeatable)")
    parser.add_argument("--strict-gaps", action="store_true",
                        help="answer exception 2 for reads spanning addresses with no register")
    parser.add_argument("--set", type=_parser(_override), action="append", default=[], metavar="NAME=VALUE",
                        dest="overrides", help="serve VALUE for register NAME whatever the model says, "
                        "even an impossible one (repeatable)")
    parser.add_argument("--device", type=_parser(_device), action="append", default=[], dest="devices",
                        metavar="unit=N,model=M[,seed=S][,slow=SECONDS][,silent]",
                        help=f"serve this unit (repeatable; models: {', '.join(MODELS)}; seed default "
                        "--seed + unit - 1); without it: one EPEVER at --unit")


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> SimOptions:
    """SimOptions from parsed flags; a bad value ends in `parser.error` naming the flag (without a
    parser: the ConfigError)."""
    try:
        return SimOptions(
            port=args.port, tcp=args.tcp, framer=args.framer, baudrate=args.baudrate, unit=args.unit,
            speed=args.speed, seed=args.seed, start=args.start, timezone=args.timezone, drop=args.drop,
            corrupt=args.corrupt, slow=args.slow, exceptions=dict(args.exceptions), strict_gaps=args.strict_gaps,
            overrides=dict(args.overrides), devices=tuple(args.devices),
        )
    except ConfigError as exc:
        if parser is None:
            raise
        parser.error(str(exc))
        raise  # pragma: no cover - parser.error exits
