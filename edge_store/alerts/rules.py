"""Alert rules as data: the built-in table (12 V defaults) and `[[alerts.rules]]`, parsed and checked once.

A rule watches one number per device: a catalogue field of the live sample
(`battery.voltage`, flags as 0/1), or a figure the collector measures
(`collector.silent_polls`, `store.free_mb`, `replication.oldest_unsent_h`). It
fires when the value is `below`/`above` its threshold for `for_s` seconds and
resolves when the value reaches `clear_at` (the hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..catalogue import MODELS, Catalogue
from ..errors import ConfigError

SEVERITIES = ("info", "warning", "critical")
# Figures that are no catalogue field: measured by the collector (silent polls, free space) or read from
# the replication state. The collector feeds them through Engine.observe.
MEASURED = ("collector.silent_polls", "store.free_mb", "replication.oldest_unsent_h")


@dataclass(frozen=True)
class Rule:
    """One rule: `field` below/above `threshold` for `for_s` fires; reaching `clear_at` resolves."""

    name: str
    field: str
    op: str  # "below" | "above"
    threshold: float
    clear_at: float
    for_s: float = 0.0
    severity: str = "warning"
    device: str | None = None  # None: every device
    column: str | None = None  # the live column read (None: a measured figure)
    shift: int = 0
    width: int = 0  # a flag: (word >> shift) & (2**width - 1)

    def breached(self, value: float) -> bool:
        return value < self.threshold if self.op == "below" else value > self.threshold

    def cleared(self, value: float) -> bool:
        return value >= self.clear_at if self.op == "below" else value <= self.clear_at

    def message(self, device: str, value: float, state: str) -> str:
        if state == "resolved":
            return f"{self.name} on {device} resolved: {self.field} = {value:g}"
        return f"{self.name} on {device}: {self.field} = {value:g} is {self.op} {self.threshold:g}"


# name -> (field, op, threshold, clear_at, for_s, severity, the threshold's key): sized for a 12 V lead-acid
# or LiFePO4 bank. A key of its own per threshold where "threshold" would not say what it is.
_FAULT_FLAGS = ("charging.fault", "discharging.fault", "controller.device_over_temperature")
BUILTIN: dict[str, dict[str, Any]] = {
    "battery_voltage_low": dict(field="battery.voltage", op="below", threshold=11.8, clear_at=12.2, for_s=60,
                                severity="critical"),
    "battery_voltage_high": dict(field="battery.voltage", op="above", threshold=15.0, clear_at=14.6, for_s=30,
                                 severity="warning"),
    "state_of_charge_low": dict(field="battery.state_of_charge", op="below", threshold=20, clear_at=30, for_s=60,
                                severity="warning"),
    "battery_temperature_high": dict(field="battery.temperature", op="above", threshold=45, clear_at=40, for_s=60,
                                     severity="warning"),
    "battery_temperature_low": dict(field="battery.temperature", op="below", threshold=0, clear_at=3, for_s=60,
                                    severity="warning"),
    "controller_temperature_high": dict(field="controller.temperature", op="above", threshold=70, clear_at=60,
                                        for_s=60, severity="critical"),
    "controller_temperature_low": dict(field="controller.temperature", op="below", threshold=-20, clear_at=-15,
                                       for_s=60, severity="warning"),
    # Any fault bit: one rule per flag (below), named controller_fault.<object>.<flag>.
    "controller_fault": dict(field="", op="above", threshold=0.5, clear_at=0.5, for_s=0, severity="critical"),
    "device_silent": dict(field="collector.silent_polls", op="above", threshold=5, clear_at=0, for_s=0,
                          severity="critical"),
    "replication_backlog": dict(field="replication.oldest_unsent_h", op="above", threshold=24, clear_at=24,
                                for_s=0, severity="warning"),
    "disk_free_low": dict(field="store.free_mb", op="below", threshold=200, clear_at=300, for_s=0,
                          severity="critical"),
}
BUILTIN_KEYS = ("enabled", "threshold", "clear_at", "for_s", "severity")
CUSTOM_KEYS = ("name", "field", "below", "above", "for_s", "clear_at", "severity", "device")


def fault_fields(cat: Catalogue) -> tuple[str, ...]:
    """Every fault bit of the model's status words: the fault flags, the error bits, over-temperature, and
    the bits of a fault word of no API object (the Rover's `faults.NAME`)."""
    keys = [k for k in _FAULT_FLAGS if _lookup(cat, k) is not None]
    for f in cat.fields:
        for obj in ("charging", "discharging"):
            if obj in f.objects and f.key.startswith("errors."):
                keys.append(f"{obj}.{f.key}")
        if not f.objects and f.key.startswith("faults.") and f.width:
            keys.append(f.key)
    return tuple(keys)


def _lookup(cat: Catalogue, name: str):
    """The catalogue field `name` names (object.field, or the key of a field of no object), or None."""
    obj, _, key = name.partition(".")
    try:
        return cat.field(obj, key)
    except KeyError:
        return next((f for f in cat.fields if not f.objects and f.key == name), None)


def bind(rule: Rule, cat: Catalogue) -> Rule | None:
    """The rule with the live column its field reads in model `cat`; None when the model lacks the field
    (the rule does not apply to its devices)."""
    if rule.field in MEASURED:
        return rule
    f = _lookup(cat, rule.field)
    if f is None or cat.group(f) != "live" or f.type == "string":
        return None
    return replace(rule, column=f.column, shift=f.shift, width=f.width)


def _check(rule: Rule, cats: tuple[Catalogue, ...], where: str) -> Rule:
    """The rule, once its field is a live number or flag of at least one model (ConfigError naming the rule
    and `field` otherwise)."""
    if rule.field in MEASURED or any(bind(rule, cat) is not None for cat in cats):
        return rule
    if not any(_lookup(cat, rule.field) is not None for cat in cats):
        raise ConfigError(f"config: {where} field = {rule.field!r} is no catalogue field of "
                          + " or ".join(c.model for c in cats)
                          + "; use the API's object.field form, e.g. battery.voltage, solar.power, or one of "
                          + ", ".join(MEASURED))
    raise ConfigError(f"config: {where} field = {rule.field!r} is not a live number or flag")


@dataclass(frozen=True)
class AlertsConfig:
    """The rules in force (built-in ones enabled, then custom ones)."""

    rules: tuple[Rule, ...]  # unbound: Engine binds them per device model (`for_model`)

    def for_model(self, model: str) -> tuple[Rule, ...]:
        """The rules that apply to a device of `model`, bound to its columns (a field it lacks: left out)."""
        cat = MODELS[model]
        return tuple(b for b in (bind(r, cat) for r in self.rules) if b is not None)

    def check_devices(self, devices) -> None:
        """A custom rule naming a device that is not configured, or whose model lacks its field: ConfigError
        naming the rule and `device` (devices: cfg.devices)."""
        models = {d.name: d.model for d in devices}
        for r in self.rules:
            if r.device is None:
                continue
            where = f"[[alerts.rules]] {r.name!r}:"
            if r.device not in models:
                raise ConfigError(f"config: {where} device = {r.device!r} is not allowed: expected one of the "
                                  f"devices: {', '.join(models)}")
            if bind(r, MODELS[models[r.device]]) is None:
                raise ConfigError(f"config: {where} device = {r.device!r} is a {models[r.device]}, which has no "
                                  f"field {r.field!r}: the rule would never apply")

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"config: {where} {key} = {value!r} is not allowed: expected a number")
    return float(value)


def _severity(where: str, value: Any) -> str:
    if value not in SEVERITIES:
        raise ConfigError(f"config: {where} severity = {value!r} is not allowed: expected one of "
                          + ", ".join(SEVERITIES))
    return value


def _builtin(name: str, body: dict[str, Any], cats: tuple[Catalogue, ...]) -> list[Rule]:
    where = f"[alerts.builtin.{name}]"
    for key in body:
        if key not in BUILTIN_KEYS:
            raise ConfigError(f"config: unknown key {where} {key}; allowed keys: " + ", ".join(BUILTIN_KEYS))
    if not isinstance(body.get("enabled", True), bool):
        raise ConfigError(f"config: {where} enabled = {body['enabled']!r} is not allowed: expected true or false")
    if not body.get("enabled", True):
        return []
    spec = dict(BUILTIN[name])
    for key in ("threshold", "clear_at", "for_s"):
        if key in body:
            spec[key] = _number(where, key, body[key])
    if "severity" in body:
        spec["severity"] = _severity(where, body["severity"])
    if spec["for_s"] < 0:
        raise ConfigError(f"config: {where} for_s = {spec['for_s']!r} is not allowed: expected a number >= 0")
    if name == "controller_fault":
        keys = dict.fromkeys(k for cat in cats for k in fault_fields(cat))  # every model's, once each
        return [Rule(name=f"{name}.{key}", **{**spec, "field": key}) for key in keys]
    rule = Rule(name=name, **spec)
    if rule.breached(rule.clear_at):
        raise ConfigError(f"config: {where} clear_at = {rule.clear_at:g} is not allowed: it must be on the "
                          f"ok side of threshold = {rule.threshold:g}")
    return [_check(rule, cats, where)]


def _custom(i: int, body: Any, cats: tuple[Catalogue, ...]) -> Rule:
    if not isinstance(body, dict):
        raise ConfigError(f"config: [[alerts.rules]] #{i + 1} must be a table")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"config: [[alerts.rules]] #{i + 1} needs a name")
    where = f"[[alerts.rules]] {name!r}:"
    for key in body:
        if key not in CUSTOM_KEYS:
            raise ConfigError(f"config: {where} unknown key {key}; allowed keys: " + ", ".join(CUSTOM_KEYS))
    if not isinstance(body.get("field"), str):
        raise ConfigError(f"config: {where} field is required (object.field, e.g. battery.voltage)")
    ops = [k for k in ("below", "above") if k in body]
    if len(ops) != 1:
        raise ConfigError(f"config: {where} exactly one of below and above is required")
    op = ops[0]
    threshold = _number(where, op, body[op])
    clear_at = _number(where, "clear_at", body.get("clear_at", threshold))
    for_s = _number(where, "for_s", body.get("for_s", 0))
    if for_s < 0:
        raise ConfigError(f"config: {where} for_s = {for_s:g} is not allowed: expected a number >= 0")
    device = body.get("device")
    if device is not None and not isinstance(device, str):
        raise ConfigError(f"config: {where} device = {device!r} is not allowed: expected a device name")
    rule = Rule(name=name, field=body["field"], op=op, threshold=threshold, clear_at=clear_at, for_s=for_s,
                severity=_severity(where, body.get("severity", "warning")), device=device)
    if rule.breached(clear_at):
        raise ConfigError(f"config: {where} clear_at = {clear_at:g} is not allowed: it must be on the ok side "
                          f"of {op} = {threshold:g}")
    return _check(rule, cats, where)


def load_alerts(raw: Any, cats: tuple[Catalogue, ...] = tuple(MODELS.values())) -> AlertsConfig:
    """The `[alerts]` table of the config file -> the rules in force; ConfigError names the rule and key.

    A rule's field must be one of at least one model (`cats`); a device of a model without it is not
    watched by that rule (AlertsConfig.for_model)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError("config: [alerts] must be a table")
    for key in raw:
        if key not in ("builtin", "rules"):
            raise ConfigError(f"config: unknown key [alerts] {key}; allowed: [alerts.builtin.NAME], [[alerts.rules]]")
    builtin = raw.get("builtin", {})
    for name, body in builtin.items():
        if name not in BUILTIN:
            raise ConfigError(f"config: unknown rule [alerts.builtin.{name}]; built-in rules: " + ", ".join(BUILTIN))
        if not isinstance(body, dict):
            raise ConfigError(f"config: [alerts.builtin.{name}] must be a table")
    rules: list[Rule] = []
    for name in BUILTIN:
        rules += _builtin(name, builtin.get(name, {}), cats)
    custom = raw.get("rules", [])
    if not isinstance(custom, list):
        raise ConfigError("config: alerts.rules must be an array of tables: [[alerts.rules]]")
    names = {r.name for r in rules}
    for i, body in enumerate(custom):
        rule = _custom(i, body, cats)
        if rule.name in names or rule.name.split(".")[0] in BUILTIN:
            raise ConfigError(f"config: [[alerts.rules]] {rule.name!r}: name is already a rule's")
        names.add(rule.name)
        rules.append(rule)
    return AlertsConfig(tuple(rules))
