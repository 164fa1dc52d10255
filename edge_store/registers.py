"""Registers and the codec for their encodings: what a line of a register map is, and how it is read.

A device model's register map is a table of `Register` lines, kept in its
measurement catalogue (edge_store/catalogue/, e.g. epever_tracer.py). Reads
are planned into contiguous blocks from such a table (`plan_blocks`),
decoded by `decode_block`, and the simulator serves the same table through
`encode`. Adding a controller model is adding a table.
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

# Words per kind. u32/s32: low word at the lower address (EPEVER); u32hw/s32hw: high word first
# (Renogy). u8hi/u8lo: one byte of a register; sm8hi/sm8lo: a sign-magnitude byte (b7 the sign), so
# two values can share one register. ascii16: 16 ASCII bytes, high byte first, padding trimmed.
WIDTHS = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "bits": 1, "enum": 1, "clock": 3, "bool": 1,
          "u32hw": 2, "s32hw": 2, "u8hi": 1, "u8lo": 1, "sm8hi": 1, "sm8lo": 1, "ascii16": 8}
TEXT_KINDS = ("clock", "ascii16")


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


def registers_of(group: str, table: tuple[Register, ...] | None = None) -> tuple[Register, ...]:
    """The registers of one group, in address order (default: the EPEVER Tracer's map)."""
    table = _epever_tracer() if table is None else table
    return tuple(sorted((r for r in table if r.group == group), key=lambda r: (r.table, r.address)))


def _epever_tracer() -> tuple[Register, ...]:
    from .catalogue.epever_tracer import REGISTERS  # the catalogue imports this module: resolved when used

    return REGISTERS


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
    elif kind == "ascii16":
        value = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words[:8]).decode("ascii", "replace")
        value = value.strip(" \x00")
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
        elif kind in ("u32hw", "s32hw"):
            raw = ((words[0] & 0xFFFF) << 16) | (words[1] & 0xFFFF)
            if kind == "s32hw":
                raw = _signed(raw, 32)
        elif kind in ("u8hi", "u8lo", "sm8hi", "sm8lo"):
            raw = (words[0] >> 8) & 0xFF if kind.endswith("hi") else words[0] & 0xFF
            if kind.startswith("sm") and raw & 0x80:
                raw = -(raw & 0x7F)
        else:  # pragma: no cover - the table is ours
            raise ValueError(f"unknown register kind {kind}")
        # 2 decimals for /10 and /100 (the devices' resolution), 3 for /1000 (Wh counters as kWh).
        value = round(raw / reg.divisor, max(2, len(str(reg.divisor)) - 1)) if reg.divisor != 1 else raw
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
    if reg.kind == "ascii16":
        data = str(value).encode("ascii").ljust(16)[:16]
        return [int.from_bytes(data[i:i + 2], "big") for i in range(0, 16, 2)]
    raw = int(round(value * reg.divisor))
    if reg.kind in ("u8hi", "u8lo", "sm8hi", "sm8lo"):
        # The register's other byte belongs to another value: the caller merges the two.
        byte = (0x80 | -raw) if raw < 0 and reg.kind.startswith("sm") else raw
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"{reg.name}: {value} does not fit in a byte")
        return [byte << 8 if reg.kind.endswith("hi") else byte]
    if reg.kind in ("u32hw", "s32hw"):
        raw &= 0xFFFFFFFF
        return [raw >> 16, raw & 0xFFFF]
    if reg.kind in ("u16", "bits", "enum"):
        if not 0 <= raw <= 0xFFFF:
            raise ValueError(f"{reg.name}: {value} does not fit in u16")
        return [raw]
    if reg.kind == "s16":
        return [raw & 0xFFFF]
    raw &= 0xFFFFFFFF
    return [raw & 0xFFFF, raw >> 16]
