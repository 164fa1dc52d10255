"""Configuration: one TOML file plus `KAMMTHAAR_<SECTION>_<KEY>` overrides, loaded into a frozen `Config`.

The settings themselves are declared once in edge_store/settings.py. The
config is loaded and validated once, at the entry point, into typed values
(`cfg.modbus.port` is a `ModbusPort`, `cfg.api.sources` a tuple); the checks
that span several keys are the `require_*` methods, called by the command
that needs them. This is the only module that reads the environment.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from . import devices as devices_mod
from .errors import ConfigError
from .secret_strength import secret_problem
from .settings import (ENV_PREFIX, HOST_NAME, SECTION_TYPES, SECTIONS, SETTINGS, SYSTEM_ZONE, ApiSection,
                       CloudSection, MachineDefault, ModbusSection, MqttSection, NotifySection, RollupsSection, Setting,
                       SiteSection, StoreSection, is_zone, settings_table, toml_value)

__all__ = ["ENV_PREFIX", "ENV_CONFIG", "SECTIONS", "SETTINGS", "Config", "ConfigError", "Setting", "config_path",
           "load", "secret_problem", "settings_table", "system_timezone"]

ENV_CONFIG = "KAMMTHAAR_CONFIG"
_BY_KEY = {(s.section, s.key): s for s in SETTINGS}


def system_timezone() -> str:
    """The machine's IANA zone name (TZ, /etc/timezone, /etc/localtime), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and is_zone(tz):
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if is_zone(name):
            return name
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "/zoneinfo/"
        if marker in target:
            name = target.split(marker, 1)[1]
            if is_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


MACHINE_DEFAULTS = {HOST_NAME: socket.gethostname, SYSTEM_ZONE: system_timezone}


def _default(setting: Setting) -> Any:
    d = setting.default
    return MACHINE_DEFAULTS[d]() if isinstance(d, MachineDefault) else d


@dataclass(frozen=True)
class Config:
    """The effective, validated configuration: one frozen value per section."""

    site: SiteSection
    store: StoreSection
    modbus: ModbusSection
    cloud: CloudSection
    rollups: RollupsSection
    api: ApiSection
    mqtt: MqttSection
    notify: NotifySection
    source: str | None = None  # the file it came from
    devices: tuple[devices_mod.DeviceConfig, ...] = ()  # [[devices]]; never empty once built
    alerts: Any = None  # edge_store/alerts/rules.py AlertsConfig: [alerts.builtin.NAME], [[alerts.rules]]

    def __post_init__(self):
        if not self.devices:  # no [[devices]]: the one EPEVER of [modbus]
            object.__setattr__(self, "devices", devices_mod.single_device(self.modbus))
        names = [d.name for d in self.devices]
        if self.alerts is None:  # a Config built in code: the built-in rules
            from .alerts.rules import load_alerts

            object.__setattr__(self, "alerts", load_alerts(None))
        self.alerts.check_devices(self.devices)  # a custom rule's device, and its model's fields
        if self.api.default_device and self.api.default_device not in names:
            raise ConfigError(f"config: [api] default_device = {self.api.default_device!r} is not allowed: "
                              f"expected one of the devices: {', '.join(names)}")

    @property
    def default_device(self) -> str:
        """The device data paths answer for without ?device=."""
        return self.api.default_device or self.devices[0].name

    @property
    def device_models(self) -> dict[str, str]:
        """Each device's model by name (the replicator's renderer, the API's sources, the alert rules)."""
        return {d.name: d.model for d in self.devices}

    def get(self, section: str, key: str) -> Any:
        return getattr(getattr(self, section), key)

    def show(self) -> str:
        """The effective config as TOML, secrets masked."""
        lines = [f"# effective configuration (file: {self.source or 'none, embedded defaults'})"]
        for section in SECTIONS:
            lines.append(f"\n[{section}]")
            for s in SETTINGS:
                if s.section != section:
                    continue
                value = self.get(section, s.key)
                if s.secret and value:
                    value = "********"
                lines.append(f"{s.key} = {toml_value(value)}")
        return "\n".join(lines) + "\n" + devices_mod.show(self.devices, toml_value)

    def require_cloud(self) -> None:
        """What writing to or reading from [cloud] url needs besides it: the keys of its `api`."""
        for key in self.cloud.required_keys:
            if not getattr(self.cloud, key):
                raise ConfigError(f"config: [cloud] {key} is required with api = \"{self.cloud.api}\" "
                                  f"(or {ENV_PREFIX}CLOUD_{key.upper()})")

    def require_serve(self) -> None:
        """What stops `kammthaar serve` before it starts (ConfigError naming the key)."""
        problem = secret_problem(self.api.jwt_secret)
        if problem:
            raise ConfigError(f"config: {problem}; generate one with "
                              "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` and set it in [api] "
                              "jwt_secret or KAMMTHAAR_API_JWT_SECRET")
        if self.api.cookie_samesite == "NONE" and not self.api.cookie_secure:
            raise ConfigError("config: [api] cookie_samesite = \"NONE\" needs cookie_secure = true (browsers refuse it)")
        if self.api.sources == ("cloud",) and not self.cloud.url:
            raise ConfigError("config: [api] sources = [\"cloud\"] needs [cloud] url")
        if "cloud" in self.api.sources and self.cloud.url:
            self.require_cloud()


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    name = f"[{setting.section}] {setting.key}"
    bad = ConfigError(f"config: {name} = {value!r} ({where}) is not allowed: expected {setting.allowed()}")
    if setting.type is bool:
        if isinstance(value, bool):
            out: Any = value
        elif isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            out = value.lower() in ("true", "1", "yes")
        else:
            raise bad
    elif setting.type is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            out = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            out = int(value)
        else:
            raise bad
    elif setting.type is float:
        if isinstance(value, bool):
            raise bad
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if out != out or out in (float("inf"), float("-inf")):
            raise bad
    elif setting.type is list:
        # A TOML array, or the one-string form environment variables need: "a,b".
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise bad
        out = tuple(i.strip() for i in items if i.strip())
    else:
        if not isinstance(value, str):
            raise bad
        out = value
        if setting.choices:
            upper = out.upper()
            if upper not in setting.choices:
                raise bad
            out = upper
    if setting.minimum is not None and out < setting.minimum:
        raise bad
    allowed = setting.check(out) if setting.check is not None else None
    if setting.parse is not None and not allowed:
        try:
            out = setting.parse(out)
        except ValueError as exc:
            allowed = str(exc)
    if allowed:
        raise ConfigError(f"config: {name} = {value!r} ({where}) is not allowed: expected {allowed}")
    return out


def config_path(cli_path: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The config file chosen by `-c FILE`, else KAMMTHAAR_CONFIG, else none."""
    env = os.environ if environ is None else environ
    return cli_path or env.get(ENV_CONFIG) or None


def load(path: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load, override from the environment and validate. Raises ConfigError naming the key."""
    env = os.environ if environ is None else environ
    path = config_path(path, env)
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config: file {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None

    from .alerts.rules import load_alerts  # [alerts] is not flat: parsed by its owner

    alerts = load_alerts(raw.pop("alerts", None))
    values: dict[tuple[str, str], Any] = {}
    raw_devices = raw.pop("devices", None)
    for section, body in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"config: unknown section [{section}] in {path}; allowed: "
                              + ", ".join((*SECTIONS, "alerts", "[devices]")) + " ([[devices]] entries)")
        if not isinstance(body, dict):
            raise ConfigError(f"config: [{section}] in {path} must be a table of keys")
        for key, value in body.items():
            setting = _BY_KEY.get((section, key))
            if setting is None:
                keys = ", ".join(s.key for s in SETTINGS if s.section == section)
                raise ConfigError(f"config: unknown key [{section}] {key} in {path}; allowed keys: {keys}")
            values[(section, key)] = _coerce(setting, value, path)

    by_env = {s.env: s for s in SETTINGS}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        setting = by_env.get(name)
        if setting is None:
            raise ConfigError(
                f"config: unknown environment variable {name}; "
                f"use {ENV_PREFIX}<SECTION>_<KEY> with a key from `kammthaar config show`"
            )
        values[(setting.section, setting.key)] = _coerce(setting, value, f"from {name}")

    for s in SETTINGS:
        if (s.section, s.key) not in values:
            values[(s.section, s.key)] = _coerce(s, _default(s), "the default")
    sections = {name: kind(**{key: v for (section, key), v in values.items() if section == name})
                for name, kind in SECTION_TYPES.items()}
    devices = () if raw_devices is None else devices_mod.parse_devices(
        raw_devices, sections["modbus"], str(path),
        lambda key, value, where: _coerce(replace(_BY_KEY[("modbus", key)], section="devices"), value, where))
    return Config(**sections, source=path, devices=devices, alerts=alerts)
