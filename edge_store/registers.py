"""The EPEVER Tracer register map, as data, and the codec for its encodings.

One `Register` per line of `shared/spec/epever-tracer.md`. Reads are planned
into contiguous blocks from this table (`plan_blocks`), decoded by
`decode_block`, and the simulator serves the same table through `encode`.
Adding a controller model is adding a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .errors import DecodeError

INPUT = "input"  # FC 4
HOLDING = "holding"  # FC 3
DISCRETE = "discrete"  # FC 2

LIVE = "live"
STATS = "stats"
SETTINGS = "settings"
CLOCK = "clock"
GROUPS = (LIVE, STATS, SETTINGS, CLOCK)

# Unused addresses a block may span before it is split in two. With 4, planning
# each group on its own yields exactly the blocks the spec recommends.
MAX_GAP = 4

WIDTHS = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "bits": 1, "enum": 1, "clock": 3, "bool": 1}


@dataclass(frozen=True)
class Register:
    """One value of the device: where it lives and how it is encoded.

    `name` is also the store's column name. `divisor` is 100 for "/100"
    values. `low`/`high` bound what the device can physically report; a
    decoded value outside them is rejected, never stored.
    """

    name: str
    address: int
    kind: str
    table: str
    group: str
    divisor: int = 1
    unit: str = ""
    low: float | None = None
    high: float | None = None
    optional: bool = False
    doc: str = ""

    @property
    def width(self) -> int:
        return WIDTHS[self.kind]

    @property
    def is_float(self) -> bool:
        return self.divisor != 1


def _r(name, address, kind, table, group, divisor=1, unit="", low=None, high=None, optional=False, doc=""):
    return Register(name, address, kind, table, group, divisor, unit, low, high, optional, doc)


V, A, W, C, KWH = "V", "A", "W", "°C", "kWh"

EPEVER_TRACER: tuple[Register, ...] = (
    # Live values (FC 4), read every interval_s.
    _r("pv_voltage", 0x3100, "u16", INPUT, LIVE, 100, V, 0, 250, doc="PV array voltage"),
    _r("pv_current", 0x3101, "u16", INPUT, LIVE, 100, A, 0, 150, doc="PV array current"),
    _r("pv_power", 0x3102, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="PV array power"),
    _r("battery_power", 0x3106, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="battery charging power"),
    _r("load_voltage", 0x310C, "u16", INPUT, LIVE, 100, V, 0, 100, doc="load voltage"),
    _r("load_current", 0x310D, "u16", INPUT, LIVE, 100, A, 0, 150, doc="load current"),
    _r("load_power", 0x310E, "u32", INPUT, LIVE, 100, W, 0, 10000, doc="load power"),
    _r("battery_temperature", 0x3110, "s16", INPUT, LIVE, 100, C, -60, 120, doc="battery temperature"),
    _r("controller_temperature", 0x3111, "s16", INPUT, LIVE, 100, C, -60, 150, doc="temperature inside the controller"),
    _r("state_of_charge", 0x311A, "u16", INPUT, LIVE, 1, "%", 0, 100, doc="battery state of charge"),
    _r("remote_battery_temperature", 0x311B, "s16", INPUT, LIVE, 100, C, -60, 120, optional=True,
       doc="remote battery temperature sensor (optional)"),
    _r("battery_real_rated_voltage", 0x311D, "u16", INPUT, LIVE, 100, V, 0, 100, doc="battery real rated voltage"),
    _r("battery_status", 0x3200, "bits", INPUT, LIVE, doc="battery status word (raw)"),
    _r("charging_equipment_status", 0x3201, "bits", INPUT, LIVE, doc="charging equipment status word (raw)"),
    _r("discharging_equipment_status", 0x3202, "bits", INPUT, LIVE, doc="discharging equipment status word (raw)"),
    _r("battery_voltage", 0x331A, "u16", INPUT, LIVE, 100, V, 0, 100, doc="battery voltage"),
    _r("battery_current", 0x331B, "s32", INPUT, LIVE, 100, A, -200, 200,
       doc="battery current, + charging, - discharging"),
    _r("device_over_temperature", 0x2000, "bool", DISCRETE, LIVE, doc="device over temperature"),
    _r("night", 0x200C, "bool", DISCRETE, LIVE, doc="1 at night, 0 by day"),
    # Statistics kept by the device (FC 4), read every slow_interval_s.
    _r("maximum_pv_voltage_today", 0x3300, "u16", INPUT, STATS, 100, V, 0, 250),
    _r("minimum_pv_voltage_today", 0x3301, "u16", INPUT, STATS, 100, V, 0, 250),
    _r("maximum_battery_voltage_today", 0x3302, "u16", INPUT, STATS, 100, V, 0, 100),
    _r("minimum_battery_voltage_today", 0x3303, "u16", INPUT, STATS, 100, V, 0, 100),
    _r("consumed_today", 0x3304, "u32", INPUT, STATS, 100, KWH, 0),
    _r("consumed_this_month", 0x3306, "u32", INPUT, STATS, 100, KWH, 0),
    _r("consumed_this_year", 0x3308, "u32", INPUT, STATS, 100, KWH, 0),
    _r("total_consumed", 0x330A, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_today", 0x330C, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_this_month", 0x330E, "u32", INPUT, STATS, 100, KWH, 0),
    _r("generated_this_year", 0x3310, "u32", INPUT, STATS, 100, KWH, 0),
    _r("total_generated", 0x3312, "u32", INPUT, STATS, 100, KWH, 0),
    # Rated data (FC 4) and settings (FC 3), read every slow_interval_s.
    _r("rated_charging_current", 0x3005, "u16", INPUT, SETTINGS, 100, A, 0, 300),
    _r("rated_load_current", 0x300E, "u16", INPUT, SETTINGS, 100, A, 0, 300),
    _r("battery_type", 0x9000, "enum", HOLDING, SETTINGS),
    _r("battery_capacity", 0x9001, "u16", HOLDING, SETTINGS, 1, "Ah"),
    _r("temp_compensation_coefficient", 0x9002, "u16", HOLDING, SETTINGS, 100, "mV/°C/2V"),
    _r("over_voltage_disconnect", 0x9003, "u16", HOLDING, SETTINGS, 100, V),
    _r("charging_limit_voltage", 0x9004, "u16", HOLDING, SETTINGS, 100, V),
    _r("over_voltage_reconnect", 0x9005, "u16", HOLDING, SETTINGS, 100, V),
    _r("equalize_charging_voltage", 0x9006, "u16", HOLDING, SETTINGS, 100, V),
    _r("boost_charging_voltage", 0x9007, "u16", HOLDING, SETTINGS, 100, V),
    _r("float_charging_voltage", 0x9008, "u16", HOLDING, SETTINGS, 100, V),
    _r("boost_reconnect_voltage", 0x9009, "u16", HOLDING, SETTINGS, 100, V),
    _r("low_voltage_reconnect", 0x900A, "u16", HOLDING, SETTINGS, 100, V),
    _r("under_voltage_recover", 0x900B, "u16", HOLDING, SETTINGS, 100, V),
    _r("under_voltage_warning", 0x900C, "u16", HOLDING, SETTINGS, 100, V),
    _r("low_voltage_disconnect", 0x900D, "u16", HOLDING, SETTINGS, 100, V),
    _r("discharging_limit_voltage", 0x900E, "u16", HOLDING, SETTINGS, 100, V),
    _r("battery_rated_voltage", 0x9067, "enum", HOLDING, SETTINGS),
    _r("default_load_mode", 0x906A, "enum", HOLDING, SETTINGS),
    _r("equalize_duration", 0x906B, "u16", HOLDING, SETTINGS, 1, "min"),
    _r("boost_duration", 0x906C, "u16", HOLDING, SETTINGS, 1, "min"),
    _r("battery_discharge", 0x906D, "u16", HOLDING, SETTINGS, 1, "%", 0, 100),
    _r("battery_charge", 0x906E, "u16", HOLDING, SETTINGS, 1, "%", 0, 100),
    _r("charging_mode", 0x9070, "enum", HOLDING, SETTINGS),
    # The device clock (FC 3): local time of the device, no zone.
    _r("device_time", 0x9013, "clock", HOLDING, CLOCK, doc="device clock, YYYY-MM-DD HH:MM:SS"),
)


def registers_of(group: str, table: tuple[Register, ...] = EPEVER_TRACER) -> tuple[Register, ...]:
    """The registers of one group, in address order."""
    return tuple(sorted((r for r in table if r.group == group), key=lambda r: (r.table, r.address)))


@dataclass(frozen=True)
class Block:
    """A contiguous read: one request to the device."""

    table: str
    start: int
    count: int
    registers: tuple[Register, ...] = field(compare=False)

    @property
    def label(self) -> str:
        return f"{self.table}:0x{self.start:04X}+{self.count}"


def plan_blocks(registers: tuple[Register, ...] | list[Register], max_gap: int = MAX_GAP) -> list[Block]:
    """Plan contiguous reads: registers of one table closer than `max_gap` share a block."""
    blocks: list[Block] = []
    ordered = sorted(registers, key=lambda r: (r.table, r.address))
    current: list[Register] = []
    for reg in ordered:
        if current:
            first, last = current[0], current[-1]
            gap = reg.address - (last.address + last.width)
            if reg.table == first.table and gap <= max_gap:
                current.append(reg)
                continue
            blocks.append(_block(current))
        current = [reg]
    if current:
        blocks.append(_block(current))
    return blocks


def _block(regs: list[Register]) -> Block:
    start = regs[0].address
    end = max(r.address + r.width for r in regs)
    return Block(regs[0].table, start, end - start, tuple(regs))


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_register(reg: Register, words: list[int] | tuple[int, ...]) -> float | int | str | bool:
    """Decode one register from its raw words (bits for a discrete input).

    Raises DecodeError for a value the device cannot physically report.
    """
    kind = reg.kind
    if kind == "bool":
        value: float | int | str | bool = bool(words[0])
    elif kind == "clock":
        value = decode_clock(words)
    else:
        if kind in ("u16", "bits", "enum"):
            raw = words[0] & 0xFFFF
        elif kind == "s16":
            raw = _signed(words[0] & 0xFFFF, 16)
        elif kind in ("u32", "s32"):
            # Low word at the lower address.
            raw = (words[0] & 0xFFFF) | ((words[1] & 0xFFFF) << 16)
            if kind == "s32":
                raw = _signed(raw, 32)
        else:  # pragma: no cover - the table is ours
            raise ValueError(f"unknown register kind {kind}")
        value = round(raw / reg.divisor, 2) if reg.divisor != 1 else raw
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (reg.low is not None and value < reg.low) or (reg.high is not None and value > reg.high):
            raise DecodeError(
                f"{reg.name}={value} {reg.unit} is outside what the device can report "
                f"[{reg.low}, {reg.high}]",
                register=reg.name,
            )
    return value


def decode_clock(words: list[int] | tuple[int, ...]) -> str:
    """Decode the packed device clock (0x9013-0x9015) to 'YYYY-MM-DD HH:MM:SS'."""
    second, minute = words[0] & 0xFF, (words[0] >> 8) & 0xFF
    hour, day = words[1] & 0xFF, (words[1] >> 8) & 0xFF
    month, year = words[2] & 0xFF, 2000 + ((words[2] >> 8) & 0xFF)
    try:
        stamp = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise DecodeError(f"device_time is not a valid date: {exc}", register="device_time") from exc
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def encode_clock(stamp: datetime) -> list[int]:
    """Pack a naive local datetime as the device clock's three words."""
    return [
        (stamp.minute << 8) | stamp.second,
        (stamp.day << 8) | stamp.hour,
        ((stamp.year - 2000) << 8) | stamp.month,
    ]


def decode_block(block: Block, words: list[int] | list[bool]) -> dict[str, float | int | str | bool]:
    """Decode every register of a block from the words read at `block.start`."""
    if len(words) < block.count:
        raise DecodeError(f"{block.label}: got {len(words)} words, expected {block.count}")
    out: dict[str, float | int | str | bool] = {}
    for reg in block.registers:
        offset = reg.address - block.start
        out[reg.name] = decode_register(reg, words[offset:offset + reg.width])
    return out


def encode(reg: Register, value) -> list[int]:
    """Encode a physical value as the words the device would serve (the simulator's side)."""
    if reg.kind == "bool":
        return [1 if value else 0]
    if reg.kind == "clock":
        return encode_clock(value)
    raw = int(round(value * reg.divisor))
    if reg.kind in ("u16", "bits", "enum"):
        if not 0 <= raw <= 0xFFFF:
            raise ValueError(f"{reg.name}: {value} does not fit in u16")
        return [raw]
    if reg.kind == "s16":
        return [raw & 0xFFFF]
    raw &= 0xFFFFFFFF
    return [raw & 0xFFFF, raw >> 16]
