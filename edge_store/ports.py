"""Addresses parsed once: the controller's port (`ModbusPort`) and a TCP `HostPort`.

`[modbus] port`, `[api] listen` and the simulator's `--tcp` are parsed here,
at the edge, into typed values; the code below reads `.kind`, `.host`,
`.port` and never splits a string again. `str()` gives the written form
back (what `kammthaar config show` prints and the log lines say).
"""

from __future__ import annotations

from dataclasses import dataclass

SERIAL, TCP, RTU_OVER_TCP = "serial", "tcp", "rtu+tcp"
WILDCARD_HOST = "0.0.0.0"


@dataclass(frozen=True)
class HostPort:
    """A TCP address: `host` without IPv6 brackets, `port` a number."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, any_port: bool = False, wildcard: bool = False) -> "HostPort":
        """`HOST:PORT` ([::1]:PORT for IPv6). `any_port` allows port 0 (the kernel picks one);
        `wildcard` allows an empty host (every interface). ValueError when it is not one."""
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        low = 0 if any_port else 1
        if not sep or not port.isdigit() or not low <= int(port) <= 65535 or not (host or wildcard):
            raise ValueError("HOST:PORT" + (" (port 0: any free port)" if any_port else ""))
        return cls(host or WILDCARD_HOST, int(port))

    @property
    def url_host(self) -> str:
        """The host as a client on this machine writes it in a URL (a wildcard is the loopback)."""
        if self.host in (WILDCARD_HOST, "::"):
            return "127.0.0.1"
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ModbusPort:
    """Where the controller answers: a serial device `path`, or `address` over TCP with `kind`
    tcp (Modbus TCP framing) or rtu+tcp (RTU framing over TCP, as serial-to-Ethernet bridges do)."""

    kind: str
    path: str | None = None
    address: HostPort | None = None

    EXPECTED = "a serial device path, tcp://HOST:PORT or rtu+tcp://HOST:PORT"

    @classmethod
    def parse(cls, text: str) -> "ModbusPort":
        """A device path, tcp://HOST:PORT or rtu+tcp://HOST:PORT. ValueError when it is none of them."""
        scheme, sep, rest = text.partition("://")
        if not sep:
            if not text:
                raise ValueError(cls.EXPECTED)
            return cls(SERIAL, path=text)
        if scheme not in (TCP, RTU_OVER_TCP):
            raise ValueError(cls.EXPECTED)
        try:
            return cls(scheme, address=HostPort.parse(rest))
        except ValueError:
            raise ValueError(cls.EXPECTED) from None

    @property
    def framer(self) -> str:
        """pymodbus's framer name: rtu on a serial line and over rtu+tcp, socket over tcp."""
        return "socket" if self.kind == TCP else "rtu"

    def __str__(self) -> str:
        return self.path if self.kind == SERIAL else f"{self.kind}://{self.address}"
