"""The Modbus reader: reads register groups from the controller with pymodbus.

It owns the pymodbus client (serial RTU, Modbus TCP or RTU framing over TCP),
plans each group into contiguous blocks, retries a failed block with
exponential backoff, falls back to one read per register when the firmware
rejects a block that spans unused addresses (exception 2) and remembers it,
and decodes. It never invents a value: a group with a block that could not be
read, or a value the device cannot physically report, yields no values.
It reads whichever device model it is given (edge_store/catalogue/: its
registers, function codes and block planning); a group read whole also gets
the model's derived columns, and NULL for the columns other models have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from .errors import DecodeError, IllegalAddressError, KammthaarError, ModbusError
from .link import Link, make_client  # noqa: F401 (make_client: re-exported, it lived here)
from .ports import ModbusPort
from .catalogue import EPEVER_TRACER, Catalogue, absent
from .registers import DISCRETE, HOLDING, INPUT, Block, Register, decode_register, plan_blocks, registers_of

log = logging.getLogger(__name__)

# pymodbus logs every timeout at ERROR on its own; we count and log them ourselves.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


@dataclass
class GroupRead:
    """What one read of a group gave: values (None when the group failed) and every error met."""

    group: str
    values: dict[str, Any] | None
    errors: list[KammthaarError] = field(default_factory=list)


class Reader:
    """Reads register groups from one controller of a model over a Link (its own, or its bus's, shared with
    the other devices on the port). Not thread-safe: one thread owns a bus."""

    def __init__(self, port: ModbusPort | str | None = None, *, unit: int = 1, baudrate: int = 115200,
                 timeout_s: float = 1.0, retries: int = 2, model: Catalogue = EPEVER_TRACER,
                 backoff_s: float = 0.05, sleep: Callable[[float], None] | None = None, link: Link | None = None):
        self.link = link if link is not None else Link(port, baudrate=baudrate, timeout_s=timeout_s)
        self.port = self.link.port
        self.unit = unit
        self.retries = retries
        self.model = model
        self.registers: tuple[Register, ...] = model.registers
        self.groups = model.groups()  # a group the model does not have (the Rover's clock) is never read
        # NULL in a group's rows until decoded: the columns the model lacks, then its optional registers
        # (which a device may not have). Computed once: read_group runs every poll.
        self._nulls = {group: (*absent(model, group), *(r.name for r in registers_of(group, self.registers)
                                                        if r.optional)) for group in self.groups}
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._split: set[str] = set()          # blocks the firmware rejected whole: read per register
        self._unsupported: set[str] = set()    # optional registers the device does not have
        self._plans: dict[str, list[Block]] = {}

    # -- connection ------------------------------------------------------------

    @property
    def requests_sent(self) -> int:
        """Frames put on the bus (a scan's cost, a bus's load): the link's, shared with its bus-mates."""
        return self.link.requests_sent

    def connect(self) -> None:
        """Open the port. Raises ModbusError(kind='port') when it is not there."""
        self.link.connect()

    @property
    def connected(self) -> bool:
        return self.link.connected

    def close(self) -> None:
        """Close the port (idempotent; on a shared bus, for every device on it)."""
        self.link.close()

    # -- reading ---------------------------------------------------------------

    def plan(self, group: str) -> list[Block]:
        """The blocks a group is read in, honouring remembered splits."""
        if group not in self._plans:
            self._plans[group] = plan_blocks(registers_of(group, self.registers), self.model.max_gap)
        out: list[Block] = []
        for block in self._plans[group]:
            out.extend(self._singles(block) if block.label in self._split else [block])
        return out

    def _singles(self, block: Block) -> list[Block]:
        """A block as one read per register, leaving out the optional ones the device lacks."""
        return [plan_blocks([r], max_gap=0)[0] for r in block.registers if r.name not in self._unsupported]

    def read_block(self, block: Block) -> list[int] | list[bool]:
        """One request for one block. Raises ModbusError with the failure's kind."""
        link = self.link
        if link.client is None:
            link.connect()
        client = link.client
        rx_before = link.rx_bytes
        link.quiet()
        try:
            if block.table == INPUT:
                resp = client.read_input_registers(block.start, count=block.count, device_id=self.unit)
            elif block.table == HOLDING:
                resp = client.read_holding_registers(block.start, count=block.count, device_id=self.unit)
            elif block.table == DISCRETE:
                resp = client.read_discrete_inputs(block.start, count=block.count, device_id=self.unit)
            else:  # pragma: no cover - the table is ours
                raise ValueError(block.table)
        except ConnectionException as exc:
            self.close()
            raise ModbusError(f"{block.label}: port lost: {exc}", kind="port", block=block.label) from exc
        except ModbusIOException as exc:
            # Bytes came back but no valid frame: a CRC or framing error; nothing: a timeout.
            kind = "crc" if link.rx_bytes > rx_before else "timeout"
            if not link.alive():
                self.close()
                kind = "port"
            elif not link.serial:
                # Over TCP a late answer would wait in the socket and be taken for the
                # next request's: a fresh connection for the next request.
                self.close()
            raise ModbusError(f"{block.label}: {kind}: {exc}", kind=kind, block=block.label) from exc
        except (OSError, ModbusException) as exc:
            self.close()
            raise ModbusError(f"{block.label}: port error: {exc}", kind="port", block=block.label) from exc
        finally:
            link.request_done()
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            if code == 2:
                raise IllegalAddressError(f"{block.label}: exception 2 (illegal data address)",
                                          kind="exception", block=block.label)
            raise ModbusError(f"{block.label}: exception {code}", kind="exception", block=block.label)
        words = resp.bits[:block.count] if block.table == DISCRETE else resp.registers
        # Exactly what was asked: an answer of another length belongs to another request.
        if len(words) != block.count:
            raise ModbusError(f"{block.label}: answer of {len(words)} values for {block.count} asked",
                              kind="short_answer", block=block.label)
        return words

    def _read_with_retries(self, block: Block, errors: list[KammthaarError]) -> list[int] | list[bool]:
        def remember(state):
            errors.append(state.outcome.exception())

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, ModbusError) and exc.retryable and exc.kind != "port"

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(initial=self.backoff_s, max=max(self.backoff_s, 2.0), jitter=self.backoff_s),
            retry=retry_if_exception(retryable),
            before_sleep=remember,
            reraise=True,
            **({"sleep": self._sleep} if self._sleep else {}),
        )
        try:
            return retrying(self.read_block, block)
        except RetryError as exc:  # pragma: no cover - reraise=True
            raise exc.last_attempt.exception() from exc

    def read_group(self, group: str) -> GroupRead:
        """Read and decode every register of a group; no values if any required part failed."""
        result = GroupRead(group, None)
        raw: list[tuple[Block, list]] = []
        pending = self.plan(group)
        while pending:
            block = pending.pop(0)
            try:
                raw.append((block, self._read_with_retries(block, result.errors)))
            except IllegalAddressError as exc:
                result.errors.append(exc)
                if len(block.registers) > 1:
                    # Some firmware rejects a block spanning unused addresses: read it per register.
                    self._split.add(block.label)
                    log.warning("%s rejected with exception 2: reading it register by register from now on", block.label)
                    pending[:0] = self._singles(block)
                    continue
                reg = block.registers[0]
                if reg.optional:
                    self._unsupported.add(reg.name)
                    continue
                return result
            except ModbusError as exc:
                result.errors.append(exc)
                return result
        values: dict[str, Any] = dict.fromkeys(self._nulls[group])
        rejected = False
        for block, words in raw:
            for reg in block.registers:
                offset = reg.address - block.start
                try:
                    values[reg.name] = decode_register(reg, words[offset:offset + reg.width])
                except DecodeError as exc:
                    # Every impossible value is counted, and none of the sample is stored.
                    result.errors.append(exc)
                    rejected = True
        if not rejected:
            result.values = self.model.derive(group, values)
        return result
