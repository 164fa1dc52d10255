"""Every setting of the config, declared once: a field of its section's frozen dataclass.

Each field carries its default, help text and checks (`_key`); `SETTINGS`
lists them in order, and the README's settings table is generated from them
(`settings_table`). Loading, the environment and the checks that span
several keys are edge_store/config.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .ports import HostPort, ModbusPort

ENV_PREFIX = "KAMMTHAAR_"


@dataclass(frozen=True)
class MachineDefault:
    """A default read from the machine when the config is loaded (the host name, its zone)."""

    what: str

    def __str__(self) -> str:
        return f"({self.what})"


HOST_NAME = MachineDefault("host name")
SYSTEM_ZONE = MachineDefault("system zone")


def is_zone(name: str) -> bool:
    """Whether `name` is an IANA zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Setting:
    """One key of one section: the type the file or environment gives, default, help and checks."""

    section: str
    key: str
    type: type  # str, int, float, bool, or list (of strings: a TOML array, or one comma-separated string)
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    secret: bool = False
    check: Callable[[Any], str | None] | None = None  # returns what is allowed, or None when fine
    parse: Callable[[Any], Any] | None = None  # the checked value -> its typed form; ValueError(what is allowed)

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                list: "a list of strings (or one comma-separated string)"}[self.type]
        if self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        return kind


def _key(default: Any, help: str, **options: Any) -> Any:
    """Declare a setting as a section's dataclass field; its type is its default's."""
    kind = str if isinstance(default, MachineDefault) else type(default)
    return field(metadata={"setting": dict(type=kind, default=default, help=help, **options)})


def _check_zone(value: str) -> str | None:
    return None if is_zone(value) else "an IANA time zone name such as Europe/Paris"


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


def _parse_listen(value: str) -> HostPort:
    try:
        return HostPort.parse(value)
    except ValueError:
        raise ValueError("HOST:PORT, such as 127.0.0.1:8000 or 0.0.0.0:8000") from None


def _check_origins(value: tuple[str, ...]) -> str | None:
    for origin in value:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            return "origins such as http://localhost:4200 (scheme://host[:port], no path)"
    return None


def _check_proxies(value: tuple[str, ...]) -> str | None:
    import ipaddress

    for address in value:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            return "IP addresses or networks such as 127.0.0.1 or 10.0.0.0/8"
    return None


def _check_mqtt_url(value: str) -> str | None:
    from urllib.parse import urlsplit

    allowed = "empty, or mqtt://HOST:PORT (mqtts://HOST:PORT for TLS) such as mqtt://192.168.1.10:1883"
    if not value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return allowed
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path.strip("/") or parts.query \
            or parts.username or port == 0:
        return allowed
    return None


def _check_topic(value: str) -> str | None:
    if not value or any(c in value for c in "#+") or value.startswith("/") or value.endswith("/"):
        return "an MQTT topic prefix without wildcards (# +) nor leading or trailing /, such as kammthaar"
    return None


API_SOURCES = ("local", "cloud")


def _check_sources(value: tuple[str, ...]) -> str | None:
    if not value or not all(n in API_SOURCES for n in value) or len(set(value)) != len(value):
        return 'local, cloud, or both in the order they are asked: ["local", "cloud"] or ["cloud", "local"]'
    return None


@dataclass(frozen=True)
class SiteSection:
    """[site]: which installation this is."""

    id: str = _key(HOST_NAME, "Which installation this is: the `site` tag of every point (default: the host name).")
    timezone: str = _key(SYSTEM_ZONE, "IANA zone of the site, for local days and months (default: the system's).", check=_check_zone)


@dataclass(frozen=True)
class StoreSection:
    """[store]: the SQLite file."""

    path: str = _key("kammthaar.db", "The SQLite database file.")
    retention_days: int = _key(90, "Days of raw samples kept on the Pi; statistics are kept forever.", minimum=1)
    max_size_mb: int = _key(1024, "Upper bound of the database file, in MB.", minimum=8)
    min_free_mb: int = _key(256, "Free space, in MB, kept on the database's filesystem (an SD card): below it the file stops growing: the oldest samples (replicated ones first) are pruned, as with max_size_mb. 0: no floor.", minimum=0)
    commit_window_s: float = _key(30.0, "Samples are held in memory and committed together, each at most this many seconds after it was read: one commit writes each page it touches once, so this cuts what the card takes per sample about threefold at the defaults. A crash (kill -9, the Pi's watchdog) loses the samples held, at most this many seconds; a stop (SIGTERM) commits them. The API counts live data fresh for two poll intervals plus this. 0: every poll round is committed at once.", minimum=0.0)
    synchronous: str = _key("NORMAL", "SQLite synchronous mode: NORMAL (fewer SD writes; a power cut may lose the last seconds) or FULL (every commit survives a power cut).", choices=("NORMAL", "FULL"))


@dataclass(frozen=True)
class ModbusSection:
    """[modbus]: the controller and how it is polled."""

    port: ModbusPort = _key("rtu+tcp://127.0.0.1:5020", "The controller: a serial device path (/dev/ttyUSB0), tcp://HOST:PORT (Modbus TCP) or rtu+tcp://HOST:PORT (RTU framing over TCP). The default is the demo simulator.", parse=ModbusPort.parse)
    baudrate: int = _key(115200, "Serial speed; older units and some adapters need 9600.", check=_check_baud)
    unit: int = _key(1, "Modbus unit (slave) id of the controller.", check=_check_unit)
    interval_s: float = _key(5.0, "Seconds between two polls of the live values (fractions allowed).", minimum=0.05)
    slow_interval_s: float = _key(60.0, "Seconds between two reads of device statistics, settings and clock.", minimum=0.05)
    timeout_s: float = _key(1.0, "Seconds to wait for one answer from the controller.", minimum=0.01)
    retries: int = _key(2, "Extra attempts for a block read that failed, with backoff.", minimum=0)
    device: str = _key("epever", "Name of this controller: the `device` tag of every point (without [[devices]]).")
    inter_request_ms: float = _key(10.0, "Milliseconds of silence on a bus between the end of one answer and the next request (the Modbus 3.5-character gap is 1.75 ms above 19200 baud; many devices want tens of ms).", minimum=0.0)
    probe_max_s: float = _key(60.0, "A device that stopped answering is probed again after 5 s, then less and less often, at most every probe_max_s seconds (its bus-mates are read meanwhile).", minimum=1.0)


@dataclass(frozen=True)
class CloudSection:
    """[cloud]: the InfluxDB the replicator writes to and the API's cloud source reads."""

    url: str = _key("", "InfluxDB base URL, e.g. https://influx.example.com:8086. Empty: `kammthaar replicate` idles and says so.", check=_check_url)
    api: str = _key("v2", "v2: /api/v2/write with token, org, bucket (InfluxDB 2.x, Cloud, 3.x, 1.8+); v1: /write with database, retention_policy, username, password (InfluxDB 1.x).", check=_check_api)
    token: str = _key("", "v2: API token (InfluxDB 1.8: username:password).", secret=True)
    org: str = _key("", "v2: organization name or id (empty: the token's default).")
    bucket: str = _key("", "v2: bucket.")
    database: str = _key("", "v1: database.")
    retention_policy: str = _key("", "v1: retention policy (empty: the database's default).")
    username: str = _key("", "v1: user (empty: no authentication).")
    password: str = _key("", "v1: password.", secret=True)
    batch_size: int = _key(5000, "Lines of line protocol per write request, at most.", minimum=1)
    interval_s: float = _key(10.0, "Seconds between two passes once the backlog is sent; a backlog is sent without pause.", minimum=0.05)
    timeout_s: float = _key(10.0, "Seconds to wait for the server to answer one write.", minimum=0.1)
    heartbeat_s: float = _key(60.0, "Seconds between two `edge_health` points (the replicator's heartbeat, to the same database or bucket), on its own timer.", minimum=1)
    reconcile_every_h: float = _key(24.0, "Hours between two reconciliations by the replicator (the cloud checked against the rows held locally, differences re-sent), run while the backlog is drained; also after every long outage. 0: only after outages and by `kammthaar reconcile`.", minimum=0)
    max_backlog_age_days: int = _key(0, "Unsent samples older than this many days are skipped (counted) instead of sent, for servers whose retention would refuse them; 0: send everything.", minimum=0)

    @property
    def required_keys(self) -> tuple[str, ...]:
        """The keys `api` cannot do without, besides url."""
        return ("bucket",) if self.api == "v2" else ("database",)


@dataclass(frozen=True)
class RollupsSection:
    """[rollups]: the daily and monthly statistics."""

    gap_factor: float = _key(3.0, "Daily and monthly statistics integrate power and current between consecutive live samples; a gap longer than gap_factor × [modbus] interval_s (with [[devices]]: the longest interval_s of the devices) adds nothing (no energy is invented across an outage) and shows as uncovered time.", minimum=1.0)


STATE_SCHEMES = ("sqlite:///", "postgresql+psycopg://", "postgresql://")


def _parse_state_url(value: str) -> str:
    """Empty (the store's file), an SQLite file URL or a PostgreSQL URL (driven by psycopg 3)."""
    if value and not value.startswith(STATE_SCHEMES):
        raise ValueError("empty (the store's file), sqlite:////path/state.db or postgresql+psycopg://user@host/db")
    if value.startswith("postgresql://"):
        return "postgresql+psycopg://" + value[len("postgresql://"):]
    return value


@dataclass(frozen=True)
class ApiSection:
    """[api]: `kammthaar serve`."""

    listen: HostPort = _key("127.0.0.1:8000", "Address and port `kammthaar serve` listens on (0.0.0.0:8000: every interface).", parse=_parse_listen)
    workers: int = _key(2, "Worker processes of the WSGI server (gunicorn), each with a few threads.", minimum=1)
    cors_origins: tuple[str, ...] = _key([], "Origins allowed to call the API from a browser, with cookies: a list of exact matches (the dashboard in development: http://localhost:4200). Empty: none.", check=_check_origins)
    jwt_secret: str = _key("", "Key signing the login tokens (HS256): at least 32 random characters, e.g. from `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`. No default: `kammthaar serve` refuses to start without a strong one.", secret=True)
    access_ttl_s: int = _key(900, "Seconds an access token is valid.", minimum=10)
    refresh_ttl_s: int = _key(604800, "Seconds a refresh token is valid (logout or a password change ends it sooner).", minimum=60)
    cookie_secure: bool = _key(True, "Send the token cookies over HTTPS only (browsers also keep them for http://localhost).")
    cookie_samesite: str = _key("LAX", "SameSite attribute of the token cookies: LAX, STRICT or NONE (NONE needs cookie_secure).", choices=("LAX", "STRICT", "NONE"))
    trusted_proxies: tuple[str, ...] = _key([], "Addresses (or networks) of the reverse proxies in front of the API: a request from one of them is attributed to the address its X-Forwarded-For names (the nearest hop that is not a trusted proxy), for login throttling, and its X-Forwarded-Proto gives the API's own origin. Nobody else's X-Forwarded-For is believed. Empty: none.", check=_check_proxies)
    read_timeout_s: float = _key(10.0, "Seconds a client has to send a whole request (headers and body) to `kammthaar serve`; a slower one is disconnected (a reverse proxy in front buffers requests, so only it talks to slow clients).", minimum=1.0)
    default_device: str = _key("", "The device data paths answer for without `?device=` (empty: the first configured device).")
    sources: tuple[str, ...] = _key(["local", "cloud"], "Where answers come from, in order: local (the SQLite store, read-only), cloud (InfluxDB through InfluxQL, the [cloud] section). The first source that is reachable and holds the window asked for answers; a cloud deployment says cloud.", check=_check_sources)
    state_url: str = _key("", "Where the API keeps its state: users, their roles and sites, revoked tokens, login throttling, machine tokens. An SQLAlchemy URL: sqlite:////path/state.db, or postgresql+psycopg://user:password@host/db (the migrations run there too; several `kammthaar serve` on one PostgreSQL share one state). Empty: the store's file.", secret=True, parse=_parse_state_url)
    stale_after_s: float = _key(900.0, "/sites and /fleet: a site whose newest point (data or heartbeat) is older than this, or whose heartbeat says a device is not fresh, is stale.", minimum=1.0)


@dataclass(frozen=True)
class MqttSection:
    """[mqtt]: `kammthaar publish`, the store's newest values for Home Assistant."""

    url: str = _key("", "The MQTT broker: mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS (port 1883 / 8883 when left out). Empty: `kammthaar publish` idles and says so.", check=_check_mqtt_url)
    username: str = _key("", "Broker user (empty: no authentication).")
    password: str = _key("", "Broker password.", secret=True)
    ca_file: str = _key("", "For mqtts://: the PEM file of the CA certificate(s) the broker's certificate must chain to (a private CA's). Empty: the system's CA store.")
    base_topic: str = _key("kammthaar", "Prefix of the state and availability topics: BASE/SITE/DEVICE/...", check=_check_topic)
    discovery_prefix: str = _key("homeassistant", "Home Assistant's MQTT discovery prefix (its default is homeassistant).", check=_check_topic)
    interval_s: float = _key(5.0, "Seconds between two looks at the store: each new sample is published once, at most once per interval_s.", minimum=0.05)


def _check_notify_urls(value: tuple[str, ...]) -> str | None:
    for url in value:
        if "://" not in url:
            return 'apprise URLs such as "ntfy://ntfy.sh/topic", "mailtos://user:pass@host", "json://host/path"'
    return None


@dataclass(frozen=True)
class NotifySection:
    """[notify]: `kammthaar notify`, which sends the alerts' notifications."""

    urls: tuple[str, ...] = _key([], "Where alert notifications go: apprise URLs (ntfy://, mailto://, mailtos://, json://, tgram://, ...). Empty: none are sent; they stay in the outbox.", check=_check_notify_urls)
    command: str = _key("", "A command run for every alert event (a buzzer, a GPIO relay script), with ALERT_RULE, ALERT_DEVICE, ALERT_SEVERITY, ALERT_STATE, ALERT_VALUE, ALERT_TIME, ALERT_MESSAGE in its environment. Empty: none.")
    command_severities: tuple[str, ...] = _key(["warning", "critical"], "The severities `command` runs for.")
    command_timeout_s: float = _key(10.0, "Seconds `command` may run before it is killed.", minimum=0.1)
    storm: int = _key(3, "More events than this waiting at once go out as one summary message naming every rule.", minimum=1)
    interval_s: float = _key(5.0, "Seconds between two looks at the outbox when it is empty.", minimum=0.05)
    retry_max_s: float = _key(60.0, "Longest wait, in seconds, between two tries of a channel that fails (the wait doubles up to it).", minimum=0.05)


SECTION_TYPES: dict[str, type] = {"site": SiteSection, "store": StoreSection, "modbus": ModbusSection,
                                  "cloud": CloudSection, "rollups": RollupsSection, "api": ApiSection,
                                  "mqtt": MqttSection, "notify": NotifySection}
SECTIONS = tuple(SECTION_TYPES)
SETTINGS: tuple[Setting, ...] = tuple(Setting(section, f.name, **f.metadata["setting"])
                                      for section, kind in SECTION_TYPES.items() for f in fields(kind))

def toml_value(value: Any) -> str:
    """A value as TOML writes it (ports and addresses in their written form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def settings_table() -> str:
    """The README's settings table, in Markdown, generated from SETTINGS."""
    rows = ["| key | environment variable | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = str(s.default) if isinstance(s.default, MachineDefault) else toml_value(s.default)
        rows.append(f"| `[{s.section}] {s.key}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(rows)
