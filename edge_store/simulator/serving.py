"""Serving the simulated devices: one pymodbus server on a serial port or TCP, until told to stop.

pymodbus's serial server never reopens a lost port, so `serve` recreates it
once the device path is back (the bus's `trace_connect` says when it went
away). The "listening on" line is logged once the port is open or the
socket bound: whoever started the simulator can wait for it. SIGUSR1
toggles the units marked silent: they answer, and fall silent again at the
next SIGUSR1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from ..errors import KammthaarError
from .model import SolarDay
from .options import SimOptions, UnitOptions
from .rover import RoverDay
from .slave import Bus

log = logging.getLogger(__name__)

POLL_S = 0.1


def serve(options: SimOptions, stop: threading.Event | None = None) -> None:
    """Serve the simulator until SIGTERM/SIGINT or until `stop` is set."""
    asyncio.run(_serve(options, stop))


def device_model(options: SimOptions, unit: UnitOptions) -> SolarDay:
    """The simulated physics of one unit: the same sun, load and battery for every model, its own seed."""
    common = dict(seed=unit.seed, start=options.start_utc, speed=options.speed, tz=options.zone)
    if unit.model == "renogy-rover":
        return RoverDay(unit=unit.unit, **common)
    return SolarDay(**common)


async def _serve(options: SimOptions, stop: threading.Event | None) -> None:
    bus = Bus(options, {unit.unit: device_model(options, unit) for unit in options.units})
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
    for signum in signals:
        loop.add_signal_handler(signum, done.set)
    if signals:  # SIGUSR1: the silent units answer (again: fall silent), for failure-isolation tests
        loop.add_signal_handler(signal.SIGUSR1, bus.toggle_silent)
    watcher = asyncio.create_task(_watch_stop(stop, done)) if stop is not None else None
    try:
        if options.port is not None:
            await _serve_serial(options, bus, done)
        else:
            await _serve_tcp(options, bus, done)
    finally:
        if watcher is not None:
            watcher.cancel()
        for signum in (*signals, signal.SIGUSR1) if signals else ():
            loop.remove_signal_handler(signum)
    log.info("simulator on %s stopped", options.where)


async def _watch_stop(stop: threading.Event, done: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(POLL_S)
    done.set()


def _describe(options: SimOptions, where: str) -> str:
    units = options.units
    if len(units) == 1 and not options.devices:
        return (f"EPEVER simulator listening on {where} ({options.framer}, unit {options.unit}, "
                f"speed {options.speed:g}, seed {options.seed}, timezone {options.zone.key})")
    served = "; ".join(f"unit {u.unit} {u.model} seed {u.seed}" + (" silent" if u.silent else "")
                       + (f" slow {u.slow:g} s" if u.slow else "") for u in units)
    return (f"simulator listening on {where} ({options.framer}, speed {options.speed:g}, "
            f"timezone {options.zone.key}): {served}")


async def _serve_serial(options: SimOptions, bus: Bus, done: asyncio.Event) -> None:
    announced = waiting = False
    while not done.is_set():
        if not os.path.exists(options.port):
            if not announced and not waiting:
                log.info("waiting for serial port %s to appear", options.port)
                waiting = True
            await _wait(done, POLL_S)
            continue
        server = ModbusSerialServer(
            bus.devices(), framer=FramerType(options.framer), port=options.port, baudrate=options.baudrate,
            trace_pdu=bus.trace_pdu, trace_packet=bus.trace_packet, trace_connect=bus.trace_connect,
            reconnect_delay=0,
        )
        bus.lost.clear()
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
        lost = asyncio.create_task(bus.lost.wait())
        finished = asyncio.create_task(done.wait())
        await asyncio.wait({lost, finished}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        finished.cancel()
        await server.shutdown()
        if bus.lost.is_set() and not done.is_set():
            log.warning("serial port %s went away; waiting for it to come back", options.port)


async def _serve_tcp(options: SimOptions, bus: Bus, done: asyncio.Event) -> None:
    server = ModbusTcpServer(
        bus.devices(), framer=FramerType(options.framer), address=(options.tcp.host, options.tcp.port),
        trace_pdu=bus.trace_pdu, trace_packet=bus.trace_packet,
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
