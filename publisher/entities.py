"""Home Assistant entities: one per catalogue field, and the lifetime energy totals of the Energy dashboard.

An entity's `device_class` and `state_class` come from the unit of the register
its field is read from (`UNIT_CLASSES`), or from its column where the unit does
not say (`COLUMN_CLASSES`: % is a state of charge only there). Energy that only
grows (`ENERGY_ROLES`: solar production, consumption, battery energy in and out)
is `total_increasing` in kWh: the device's own lifetime counter where its model
has one, else the edge's integration summed over every day of `rollup_daily`
(kept forever, never reset). The device's daily, monthly and yearly counters get
no state_class: Home Assistant would read their resets as negative energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from edge_store.catalogue import BOOLEAN, FLOAT, STRING, Catalogue, Field
from edge_store.registers import CLOCK, SETTINGS

MEASUREMENT, TOTAL_INCREASING = "measurement", "total_increasing"
ENERGY = "energy"  # the state topic of the edge's energy totals

# register unit -> (device_class, state_class) of a reading; a setting keeps the class, not the state_class
UNIT_CLASSES: dict[str, tuple[str | None, str | None]] = {
    "V": ("voltage", MEASUREMENT),
    "A": ("current", MEASUREMENT),
    "W": ("power", MEASUREMENT),
    "°C": ("temperature", MEASUREMENT),
    "kWh": ("energy", None),
    "min": ("duration", None),
}
COLUMN_CLASSES: dict[str, tuple[str | None, str | None]] = {"state_of_charge": ("battery", MEASUREMENT)}
# flags: the name's last part -> binary_sensor device_class
FLAG_CLASSES = {"fault": "problem", "running": "running", "device_over_temperature": "heat"}
DIAGNOSTIC_GROUPS = (SETTINGS, CLOCK)


@dataclass(frozen=True)
class EnergyRole:
    """Energy the Energy dashboard takes: the device's lifetime counter `column` when the model has it,
    else the edge's total `edge` (a key of snapshot.edge_energy)."""

    key: str
    name: str
    column: str | None
    edge: str


ENERGY_ROLES = (
    EnergyRole("solar_production", "Solar production", "total_generated", "generated_kwh"),
    EnergyRole("consumption", "Consumption", "total_consumed", "consumed_kwh"),
    EnergyRole("battery_energy_in", "Battery energy in", None, "battery_in_kwh"),
    EnergyRole("battery_energy_out", "Battery energy out", None, "battery_out_kwh"),
)


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: `key` in its state topic's JSON (and its object id), the topic
    (a register group, or ENERGY), how a row gives its value, and its discovery options."""

    key: str
    name: str
    component: str  # sensor | binary_sensor
    topic: str
    value: Callable[[Mapping[str, Any]], Any]
    options: dict = field(default_factory=dict)


def field_key(f: Field) -> str:
    """A field's entity key: its first API object and its key (`battery_voltage`, `charging_errors_load_short_circuit`)."""
    key = f.key.replace(".", "_")
    return f"{f.objects[0]}_{key}" if f.objects else key


# The words an API object puts before its fields' names ("" for none: a setting is named by itself).
OBJECT_WORDS = {"solar": "PV", "parameters": "", "daily": ""}
# Words the catalogue's keys spell for a program: as a person writes them (the register map's typos too).
WORDS = {"pv": "PV", "mosfet": "MOSFET", "identifaction": "identification", "resistence": "resistance"}
# Where the rule does not give what a person would call it (entity key -> name).
NAMES = {
    "battery_status_wrong_identifaction_for_rated_voltage": "Battery rated voltage not identified",
    "battery_status_temperature_warning_status": "Battery temperature warning",
    "controller_device_over_temperature": "Controller over temperature",
    "controller_current_device_time": "Controller clock",
    "charging_running": "Charging",
    "discharging_running": "Discharging",
    "discharging_output_power_load": "Load output power level",
    "discharging_errors_unable_to_discharge": "Unable to discharge",
    "discharging_errors_unable_to_stop_discharging": "Unable to stop discharging",
    "parameters_battery_charge": "Battery charge limit",
    "parameters_battery_discharge": "Battery depth of discharge",
    "parameters_temp_compensation_coefficient": "Temperature compensation coefficient",
}


def _title(f: Field) -> str:
    """The entity's name (Home Assistant puts the device's name before it): the override in NAMES, else
    the field's series name where the catalogue has one ("PV power"), else its object and key in words,
    without `errors`/`status` and without a word repeated ("Battery status", not "Battery status battery status")."""
    key = field_key(f)
    if key in NAMES:
        return NAMES[key]
    if f.series:
        return f.series[:1].upper() + f.series[1:]
    parts = f.key.split(".")
    if len(parts) > 1 and parts[0] in ("errors", "status"):
        parts = parts[1:]
    obj = f.objects[0] if f.objects else ""
    words = [*OBJECT_WORDS.get(obj, obj).split(), *"_".join(parts).split("_")]
    words = [WORDS.get(w, w) for i, w in enumerate(words) if w and (i == 0 or w.lower() != words[i - 1].lower())]
    text = " ".join(words).replace("anti reverse", "anti-reverse")
    return text[:1].upper() + text[1:]


def _field_entity(catalogue: Catalogue, f: Field, lifetime: dict[str, EnergyRole]) -> Entity:
    group, column = catalogue.group(f), f.column
    read = f.from_column()
    options: dict[str, Any] = {}
    if group in DIAGNOSTIC_GROUPS or f.key.startswith(("errors.", "status.")):
        options["entity_category"] = "diagnostic"
    if f.type == BOOLEAN:
        device_class = "problem" if f.key.startswith("errors.") else FLAG_CLASSES.get(f.name)
        if device_class:
            options["device_class"] = device_class
        component = "binary_sensor"
    else:
        component = "sensor"
        unit = catalogue.unit(f)
        if f.type != STRING and unit:
            options["unit_of_measurement"] = unit
            device_class, state_class = COLUMN_CLASSES.get(column) or UNIT_CLASSES.get(unit, (None, None))
            if column in lifetime:
                state_class = TOTAL_INCREASING
            elif group in DIAGNOSTIC_GROUPS:
                state_class = None
            if device_class:
                options["device_class"] = device_class
            if state_class:
                options["state_class"] = state_class
            if f.type == FLOAT:
                options["suggested_display_precision"] = f.decimals
    name = lifetime[column].name if column in lifetime else _title(f)
    return Entity(field_key(f), name, component, group, lambda row: read(row.get(column)), options)


def entities(catalogue: Catalogue) -> tuple[Entity, ...]:
    """Every entity of a controller of this model: its catalogue's fields, then the edge's energy totals."""
    columns = {r.name for r in catalogue.registers}
    lifetime = {role.column: role for role in ENERGY_ROLES if role.column in columns}
    out = [_field_entity(catalogue, f, lifetime) for f in catalogue.fields]
    for role in ENERGY_ROLES:
        if role.column not in columns:
            out.append(Entity(role.key, role.name, "sensor", ENERGY, lambda totals, k=role.edge: totals.get(k),
                              {"device_class": "energy", "state_class": TOTAL_INCREASING,
                               "unit_of_measurement": "kWh", "suggested_display_precision": 3}))
    keys = [e.key for e in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{catalogue.model}: two entities share a key")
    return tuple(out)


def state(entities_: tuple[Entity, ...], topic: str, row: Mapping[str, Any]) -> dict:
    """The JSON of one state topic: each entity's value under its key (None: null, unknown in Home Assistant)."""
    return {e.key: e.value(row) for e in entities_ if e.topic == topic}
