"""Configuration: one TOML file plus `KAMMTHAAR_<SECTION>_<KEY>` overrides.

Every setting is declared once in `SETTINGS` with its type, default and help
text; the README's settings table is tested against it. The config is loaded
and validated once, at the entry point; everything below receives a frozen
`Config`. This is the only module that reads the environment.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

ENV_PREFIX = "KAMMTHAAR_"
ENV_CONFIG = "KAMMTHAAR_CONFIG"


def system_timezone() -> str:
    """The machine's IANA zone name (TZ, /etc/timezone, /etc/localtime), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and _is_zone(tz):
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if _is_zone(name):
            return name
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "/zoneinfo/"
        if marker in target:
            name = target.split(marker, 1)[1]
            if _is_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Setting:
    """One key of one section: its type, default, help and checks."""

    section: str
    key: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    secret: bool = False
    check: Callable[[Any], str | None] | None = None  # returns what is allowed, or None when fine

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"

    def resolved_default(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[self.type]
        if self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        return kind


def _check_zone(value: str) -> str | None:
    return None if _is_zone(value) else "an IANA time zone name such as Europe/Paris"


def _check_port(value: str) -> str | None:
    if value.startswith(("tcp://", "rtu+tcp://")):
        hostport = value.split("://", 1)[1]
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            return "a serial device path, tcp://HOST:PORT or rtu+tcp://HOST:PORT"
        return None
    if "://" in value or not value:
        return "a serial device path, tcp://HOST:PORT or rtu+tcp://HOST:PORT"
    return None


def _check_baud(value: int) -> str | None:
    allowed = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
    return None if value in allowed else "one of " + ", ".join(map(str, allowed))


def _check_unit(value: int) -> str | None:
    return None if 1 <= value <= 247 else "a Modbus unit id from 1 to 247"


def _check_url(value: str) -> str | None:
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.strip("/"):
        return "empty, or an http:// or https:// URL such as https://influx.example.com:8086"
    return None


def _check_api(value: str) -> str | None:
    return None if value in ("v2", "v1") else "v2 (token, org, bucket) or v1 (database, retention_policy, username, password)"


def _check_listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "HOST:PORT, such as 127.0.0.1:8000 or 0.0.0.0:8000"
    return None


def _check_origins(value: str) -> str | None:
    for origin in filter(None, (o.strip() for o in value.split(","))):
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            return "comma-separated origins such as http://localhost:4200 (scheme://host[:port], no path)"
    return None


API_SOURCES = ("local", "cloud")


def _check_sources(value: str) -> str | None:
    names = [n.strip() for n in value.split(",")]
    if not all(n in API_SOURCES for n in names) or len(set(names)) != len(names):
        return "local, cloud, or both in the order they are asked: local,cloud or cloud,local"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("site", "id", str, socket.gethostname, "Which installation this is: the `site` tag of every point (default: the host name)."),
    Setting("site", "timezone", str, system_timezone, "IANA zone of the site, for local days and months (default: the system's).", check=_check_zone),
    Setting("store", "path", str, "kammthaar.db", "The SQLite database file."),
    Setting("store", "retention_days", int, 90, "Days of raw samples kept on the Pi; statistics are kept forever.", minimum=1),
    Setting("store", "max_size_mb", int, 1024, "Upper bound of the database file, in MB.", minimum=8),
    Setting("store", "synchronous", str, "NORMAL", "SQLite synchronous mode: NORMAL (fewer SD writes; a power cut may lose the last seconds) or FULL (every commit survives a power cut).", choices=("NORMAL", "FULL")),
    Setting("modbus", "port", str, "rtu+tcp://127.0.0.1:5020", "The controller: a serial device path (/dev/ttyUSB0), tcp://HOST:PORT (Modbus TCP) or rtu+tcp://HOST:PORT (RTU framing over TCP). The default is the demo simulator.", check=_check_port),
    Setting("modbus", "baudrate", int, 115200, "Serial speed; older units and some adapters need 9600.", check=_check_baud),
    Setting("modbus", "unit", int, 1, "Modbus unit (slave) id of the controller.", check=_check_unit),
    Setting("modbus", "interval_s", float, 5.0, "Seconds between two polls of the live values (fractions allowed).", minimum=0.05),
    Setting("modbus", "slow_interval_s", float, 60.0, "Seconds between two reads of device statistics, settings and clock.", minimum=0.05),
    Setting("modbus", "timeout_s", float, 1.0, "Seconds to wait for one answer from the controller.", minimum=0.01),
    Setting("modbus", "retries", int, 2, "Extra attempts for a block read that failed, with backoff.", minimum=0),
    Setting("modbus", "device", str, "epever", "Name of this controller: the `device` tag of every point."),
    Setting("cloud", "url", str, "", "InfluxDB base URL, e.g. https://influx.example.com:8086. Empty: `kammthaar replicate` idles and says so.", check=_check_url),
    Setting("cloud", "api", str, "v2", "v2: /api/v2/write with token, org, bucket (InfluxDB 2.x, Cloud, 3.x, 1.8+); v1: /write with database, retention_policy, username, password (InfluxDB 1.x).", check=_check_api),
    Setting("cloud", "token", str, "", "v2: API token (InfluxDB 1.8: username:password).", secret=True),
    Setting("cloud", "org", str, "", "v2: organization name or id (empty: the token's default)."),
    Setting("cloud", "bucket", str, "", "v2: bucket."),
    Setting("cloud", "database", str, "", "v1: database."),
    Setting("cloud", "retention_policy", str, "", "v1: retention policy (empty: the database's default)."),
    Setting("cloud", "username", str, "", "v1: user (empty: no authentication)."),
    Setting("cloud", "password", str, "", "v1: password.", secret=True),
    Setting("cloud", "batch_size", int, 5000, "Lines of line protocol per write request, at most.", minimum=1),
    Setting("cloud", "interval_s", float, 10.0, "Seconds between two passes once the backlog is sent; a backlog is sent without pause.", minimum=0.05),
    Setting("cloud", "timeout_s", float, 10.0, "Seconds to wait for the server to answer one write.", minimum=0.1),
    Setting("cloud", "max_backlog_age_days", int, 0, "Unsent samples older than this many days are skipped (counted) instead of sent, for servers whose retention would refuse them; 0: send everything.", minimum=0),
    Setting("rollups", "gap_factor", float, 3.0, "Daily and monthly statistics integrate power and current between consecutive live samples; a gap longer than gap_factor × [modbus] interval_s adds nothing (no energy is invented across an outage) and shows as uncovered time.", minimum=1.0),
    Setting("api", "listen", str, "127.0.0.1:8000", "Address and port `kammthaar serve` listens on (0.0.0.0:8000: every interface).", check=_check_listen),
    Setting("api", "workers", int, 2, "Worker processes of the WSGI server (gunicorn), each with a few threads.", minimum=1),
    Setting("api", "cors_origins", str, "", "Origins allowed to call the API from a browser, with cookies: exact matches, comma-separated (the dashboard in development: http://localhost:4200). Empty: none.", check=_check_origins),
    Setting("api", "jwt_secret", str, "", "Key signing the login tokens (HS256): at least 32 random characters, e.g. from `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`. No default: `kammthaar serve` refuses to start without a strong one.", secret=True),
    Setting("api", "access_ttl_s", int, 900, "Seconds an access token is valid.", minimum=10),
    Setting("api", "refresh_ttl_s", int, 604800, "Seconds a refresh token is valid (logout or a password change ends it sooner).", minimum=60),
    Setting("api", "cookie_secure", bool, True, "Send the token cookies over HTTPS only (browsers also keep them for http://localhost)."),
    Setting("api", "cookie_samesite", str, "LAX", "SameSite attribute of the token cookies: LAX, STRICT or NONE (NONE needs cookie_secure).", choices=("LAX", "STRICT", "NONE")),
    Setting("api", "sources", str, "local,cloud", "Where answers come from, in order: local (the SQLite store, read-only), cloud (InfluxDB through InfluxQL, the [cloud] section). The first source that is reachable and holds the window asked for answers; a cloud deployment says cloud.", check=_check_sources),
)

_BY_KEY = {(s.section, s.key): s for s in SETTINGS}
SECTIONS = tuple(dict.fromkeys(s.section for s in SETTINGS))


class Section:
    """Attribute access to one section's values: `config.modbus.interval_s`."""

    def __init__(self, name: str, values: Mapping[str, Any]):
        self._name = name
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"[{self._name}] has no key {key!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


class Config:
    """The effective, validated configuration (read-only)."""

    def __init__(self, values: Mapping[tuple[str, str], Any], source: str | None):
        self.source = source
        self._values = dict(values)
        for section in SECTIONS:
            setattr(self, section, Section(section, {k: v for (s, k), v in values.items() if s == section}))

    def get(self, section: str, key: str) -> Any:
        return self._values[(section, key)]

    def show(self) -> str:
        """The effective config as TOML, secrets masked."""
        lines = [f"# effective configuration (file: {self.source or 'none, embedded defaults'})"]
        for section in SECTIONS:
            lines.append(f"\n[{section}]")
            for s in SETTINGS:
                if s.section != section:
                    continue
                value = self._values[(section, s.key)]
                if s.secret and value:
                    value = "********"
                lines.append(f"{s.key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


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
    if setting.check is not None:
        allowed = setting.check(out)
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

    values: dict[tuple[str, str], Any] = {}
    for section, body in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"config: unknown section [{section}] in {path}; allowed: " + ", ".join(SECTIONS))
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
            values[(s.section, s.key)] = s.resolved_default()
    return Config(values, path)


def settings_table() -> str:
    """The README's settings table, in Markdown, generated from SETTINGS."""
    rows = ["| key | environment variable | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "(host name)" if s.key == "id" and s.section == "site" else (
            "(system zone)" if s.key == "timezone" else _toml_value(s.default))
        rows.append(f"| `[{s.section}] {s.key}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(rows)
