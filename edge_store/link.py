"""The link: one port's pymodbus client, shared by the readers of every device on that bus.

It opens and closes the port, counts the bytes that came back (a CRC error
is an answer that failed its check, a timeout is no answer at all) and keeps
the silence a bus needs between the end of one answer and the next request
(`[modbus] inter_request_ms`). One thread owns a link: the bus's.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from .errors import ModbusError
from .ports import SERIAL, ModbusPort

log = logging.getLogger("edge_store.modbus_reader")


def make_client(port: ModbusPort, *, baudrate: int, timeout_s: float, trace_packet: Callable | None = None):
    """A pymodbus client for a port: a serial device, Modbus TCP or RTU framing over TCP."""
    common = {"timeout": timeout_s, "retries": 0, "trace_packet": trace_packet}
    if port.kind != SERIAL:
        return ModbusTcpClient(port.address.host, port=port.address.port, framer=FramerType(port.framer),
                               reconnect_delay=0, **common)
    return ModbusSerialClient(port.path, framer=FramerType.RTU, baudrate=baudrate, bytesize=8, parity="N",
                              stopbits=1, reconnect_delay=0, **common)


class Link:
    """One port, opened on demand; `request_done()` after each request starts the bus's silence."""

    def __init__(self, port: ModbusPort | str, *, baudrate: int = 115200, timeout_s: float = 1.0,
                 inter_request_s: float = 0.0, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic):
        self.port = port if isinstance(port, ModbusPort) else ModbusPort.parse(port)
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.inter_request_s = inter_request_s
        self._sleep = sleep
        self._monotonic = monotonic
        self.client = None
        self.rx_bytes = 0
        self.requests = 0       # requests done (each followed by the bus's silence)
        self.requests_sent = 0  # frames put on the bus
        self._quiet_from: float | None = None  # when the last request on the bus ended

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.requests_sent += 1
        else:
            self.rx_bytes += len(data)
        return data

    def connect(self) -> None:
        """Open the port. Raises ModbusError(kind='port') when it is not there."""
        if self.client is not None and self.client.connected:
            return
        self.close()
        client = make_client(self.port, baudrate=self.baudrate, timeout_s=self.timeout_s, trace_packet=self._trace)
        try:
            ok = client.connect()
        except (OSError, ModbusException) as exc:
            ok, why = False, str(exc)
        else:
            why = "connect failed"
        if not ok:
            client.close()
            raise ModbusError(f"cannot open {self.port}: {why}", kind="port")
        self.client = client
        log.info("opened %s", self.port)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    def close(self) -> None:
        """Close the port (idempotent)."""
        if self.client is not None:
            try:
                self.client.close()
            except (OSError, ModbusException):
                pass
            self.client = None

    def quiet(self) -> None:
        """Wait out the silence the bus needs before the next request."""
        if self._quiet_from is not None and self.inter_request_s > 0:
            left = self._quiet_from + self.inter_request_s - self._monotonic()
            if left > 0:
                self._sleep(left)

    def request_done(self) -> None:
        self.requests += 1
        self._quiet_from = self._monotonic()

    def alive(self) -> bool:
        """Whether the port is still there (a serial adapter pulled out keeps an fd that only errors)."""
        client = self.client
        if client is None:
            return False
        if isinstance(client, ModbusSerialClient):
            return os.path.exists(self.port.path) and getattr(client, "socket", None) is not None
        return client.connected

    @property
    def serial(self) -> bool:
        return isinstance(self.client, ModbusSerialClient)
