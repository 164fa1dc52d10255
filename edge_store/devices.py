"""The devices the collector reads: the config's `[[devices]]` array of tables, checked once.

Each entry names a device (the `device` tag, the API's `?device=`), its model
(a catalogue of edge_store.catalogue.MODELS), its Modbus unit and, optionally,
the [modbus] keys it overrides (`DEVICE_KEYS`). Devices on one port share one
bus (`buses`): the port's baud rate must be the same for all of them. Without
`[[devices]]` the config describes one EPEVER named `[modbus] device` at
`[modbus] unit`, as before devices were data.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError
from .ports import ModbusPort

NAME_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
DEFAULT_MODEL = "epever-tracer"
# The [modbus] keys a device may set for itself; the others (inter_request_ms, probe_max_s) are the bus's.
# timeout_s stays the bus's: one port, one client, one timeout.
DEVICE_KEYS = ("port", "baudrate", "interval_s", "slow_interval_s", "retries")


def fresh_within_s(interval_s: float, commit_window_s: float = 0.0) -> float:
    """How old a device's newest stored sample may be and still be fresh: two poll intervals, plus the
    collector's commit window ([store] commit_window_s: a sample reaches the store up to that long after
    it was read). The API, the heartbeat and the publisher all judge freshness with it."""
    return 2 * interval_s + commit_window_s


@dataclass(frozen=True)
class DeviceConfig:
    """One device: its name, model, unit, and how its bus and polls are set."""

    name: str
    model: str
    unit: int
    port: ModbusPort
    baudrate: int
    interval_s: float
    slow_interval_s: float
    retries: int


def model_names() -> tuple[str, ...]:
    from .catalogue import MODELS

    return tuple(MODELS)


def single_device(modbus) -> tuple[DeviceConfig, ...]:
    """The one EPEVER a config without [[devices]] describes."""
    return (DeviceConfig(modbus.device, DEFAULT_MODEL, modbus.unit,
                         **{key: getattr(modbus, key) for key in DEVICE_KEYS}),)


def parse_devices(raw: Any, modbus, where: str,
                  coerce: Callable[[str, Any, str], Any]) -> tuple[DeviceConfig, ...]:
    """`[[devices]]` as read from TOML, checked: ConfigError naming the entry and the key.

    `coerce(key, value, where)` checks a [modbus] key's value (edge_store/config.py).
    """
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise ConfigError(f"config: devices in {where} must be an array of tables: [[devices]] entries")
    models = model_names()
    out: list[DeviceConfig] = []
    for i, entry in enumerate(raw, 1):
        label = f"[[devices]] entry {i}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
        allowed = ("name", "model", "unit", *DEVICE_KEYS)
        for key in entry:
            if key not in allowed:
                raise ConfigError(f"config: {label}: unknown key {key} in {where}; allowed keys: {', '.join(allowed)}")
        for key in ("name", "model", "unit"):
            if key not in entry:
                raise ConfigError(f"config: {label}: {key} is required ({where})")
        name, model = entry["name"], entry["model"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"config: {label}: name = {name!r} is not allowed: expected 1 to 64 of a-z 0-9 _ -")
        if model not in models:
            raise ConfigError(f"config: {label}: model = {model!r} is not allowed: expected one of {', '.join(models)}")
        at = f"{label} in {where}"
        values = {key: coerce(key, entry[key], at) if key in entry else getattr(modbus, key)
                  for key in ("unit", *DEVICE_KEYS)}
        out.append(DeviceConfig(name, model, **values))
    _check_together(out)
    return tuple(out)


def _check_together(devices: list[DeviceConfig]) -> None:
    seen: dict[str, int] = {}
    units: dict[tuple[str, int], str] = {}
    bauds: dict[str, tuple[int, str]] = {}
    for i, d in enumerate(devices, 1):
        if d.name in seen:
            raise ConfigError(f"config: [[devices]] entry {i}: name = {d.name!r} is already the name of entry "
                              f"{seen[d.name]}: names are unique")
        seen[d.name] = i
        port = str(d.port)
        other = units.setdefault((port, d.unit), d.name)
        if other != d.name:
            raise ConfigError(f"config: [[devices]] entry {i} ({d.name!r}): unit = {d.unit} on {port} is "
                              f"already taken by {other!r}")
        baud, first = bauds.setdefault(port, (d.baudrate, d.name))
        if baud != d.baudrate:
            raise ConfigError(f"config: [[devices]] entry {i} ({d.name!r}): baudrate = {d.baudrate} differs from "
                              f"the {baud} of {first!r} on the same port {port}: one bus has one speed")


def group_by(items, key: Callable[[Any], str]) -> dict[str, list]:
    """Items grouped by `key`, groups and items in their first order."""
    out: dict[str, list] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def buses(devices: tuple[DeviceConfig, ...]) -> dict[str, tuple[DeviceConfig, ...]]:
    """Devices grouped by port, in config order: each group is one bus, polled by one owner."""
    return {port: tuple(group) for port, group in group_by(devices, lambda d: str(d.port)).items()}


def show(devices: tuple[DeviceConfig, ...], toml_value: Callable[[Any], str]) -> str:
    """The devices as `[[devices]]` TOML (every key, overrides and inherited values alike)."""
    lines = []
    for d in devices:
        lines.append("\n[[devices]]")
        for f in dataclasses.fields(d):
            lines.append(f"{f.name} = {toml_value(getattr(d, f.name))}")
    return "\n".join(lines) + "\n"
