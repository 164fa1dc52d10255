"""Discovery: which unit ids answer on a bus, which model each is, and the `[[devices]]` block to paste.

`scan()` probes unit ids one after the other, each with at most two requests:
the Rover's model string (function 3, 0x000C-0x0013: a Rover answers with
its name), then the EPEVER's PV voltage (function 4, 0x3100). A unit that
answers neither in time is silent, and costs one timeout: its first request
gets no answer and it is not asked again. A unit that answers both with an
exception is present but of no known model. The registers asked are the
catalogues' own lines (edge_store/catalogue/).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Callable

from .catalogue import EPEVER_TRACER, RENOGY_ROVER
from .errors import ConfigError, ModbusError
from .modbus_reader import Reader
from .registers import decode_block, plan_blocks

MAX_UNIT = 255  # 248-255 are reserved by Modbus, yet some Rovers answer only on 255
DEFAULT_UNITS = "1-17,255"  # a BT module moves a Rover to 16 or 17; some answer only on 255
DEFAULT_TIMEOUT_S = 0.3
PRINTABLE = re.compile(r"[\x20-\x7e]+")
INTER_REQUEST_S = 0.1  # some Rovers drop a request sent right after an answer

# Per model, in the order they are tried: the block a unit of that model answers with data.
PROBES = (
    (RENOGY_ROVER, plan_blocks([RENOGY_ROVER.register(RENOGY_ROVER.reported_model)])[0]),
    (EPEVER_TRACER, plan_blocks([EPEVER_TRACER.register("pv_voltage")])[0]),
)


@dataclass(frozen=True)
class Found:
    """What a unit id gave: its model (None: it answered, with exceptions only), the model string
    it reports, and how many requests got no answer."""

    unit: int
    model: str | None
    reported: str | None = None
    timeouts: int = 0

    @property
    def name(self) -> str:
        """A device name for the config: model and unit, [a-z0-9_-]."""
        return re.sub(r"[^a-z0-9_-]+", "-", f"{self.model or 'unknown'}-{self.unit}".lower())


def parse_units(text: str) -> tuple[int, ...]:
    """'1-16', '1,16,17,255', '1-4,16' -> the unit ids, sorted; ConfigError names --units."""
    units: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = part.partition("-")
        try:
            low, high = int(first), int(last if sep else first)
        except ValueError:
            raise ConfigError(f"--units: {part!r} is not a unit id or a range like 1-16") from None
        if not 1 <= low <= high <= MAX_UNIT:
            raise ConfigError(f"--units: {part!r} is outside 1..{MAX_UNIT} (or its range is reversed)")
        units.update(range(low, high + 1))
    if not units:
        raise ConfigError("--units names no unit id")
    return tuple(sorted(units))


def probe(reader: Reader, unit: int, sleep: Callable[[float], None] = time.sleep,
          gap_s: float = INTER_REQUEST_S) -> Found | None:
    """Ask one unit id; None when it is silent (its first request timed out)."""
    reader.unit = unit  # the Reader's unit is the one its next request asks
    answered = False
    timeouts = 0
    for catalogue, block in PROBES:
        try:
            words = reader.read_block(block)
        except ModbusError as exc:
            if exc.kind == "port":
                raise
            if exc.kind == "timeout":
                timeouts += 1
                if not answered:
                    return None  # silent: one timeout, no second request
            else:
                answered = True  # an exception (or a garbled answer) comes from a unit that is there
            sleep(gap_s)
            continue
        reported = None
        if catalogue.reported_model is not None:
            reported = str(decode_block(block, words)[catalogue.reported_model])
            if not PRINTABLE.fullmatch(reported):
                answered = True  # data, but no model name: another model's registers at that address
                sleep(gap_s)
                continue
        return Found(unit, catalogue.model, reported, timeouts)
    return Found(unit, None, None, timeouts)


def scan(port: str, *, baudrate: int, units: tuple[int, ...], timeout_s: float = DEFAULT_TIMEOUT_S,
         progress: Callable[[int, int, int], None] | None = None, gap_s: float = INTER_REQUEST_S,
         sleep: Callable[[float], None] = time.sleep) -> list[Found]:
    """Probe each unit id on `port`; what answered, in unit order. `progress(done, total, unit)` after each."""
    reader = Reader(port, baudrate=baudrate, timeout_s=timeout_s, retries=0)
    found = []
    try:
        reader.connect()
        for i, unit in enumerate(units, 1):
            result = probe(reader, unit, sleep, gap_s)
            if result is not None:
                found.append(result)
            if progress is not None:
                progress(i, len(units), unit)
            if i < len(units):
                sleep(gap_s)
    finally:
        reader.close()
    return found


def devices_toml(found: list[Found], *, port: str, baudrate: int) -> str:
    """The `[[devices]]` block to paste into the config, one table per unit of a known model."""
    out = []
    for f in found:
        if f.model is None:
            out.append(f"# unit {f.unit} answered, but as no known model (only exceptions)\n")
            continue
        out.append("[[devices]]\n"
                   f'name = "{f.name}"' + (f"  # reports {f.reported!r}" if f.reported else "") + "\n"
                   f'model = "{f.model}"\nunit = {f.unit}\nport = {json.dumps(port)}\nbaudrate = {baudrate}\n')
    return "\n".join(out)
