"""What a measurement catalogue is made of: `Field`, one value as clients see it, and `Catalogue`.

A device model's catalogue is two tables (edge_store/catalogue/epever_tracer.py):
its registers (where each value is read and how it is encoded: the stored
columns) and its fields (what each value means everywhere else). A `Field`
says which column it is read from and how it is derived from it (a code or
flag in a status word, an enum, a negated flag), its type and rounding, the
InfluxDB measurement and field it is written to, and the API objects and
key it is answered under. The point renderer, both API sources, the API's
object families, `kammthaar status`, the schema's bucket columns and the
simulator read these tables; none of them spells a field.

The order of the fields table matters: it is the order of the keys of each
API object and of the points a row yields (tests pin both).
"""

from __future__ import annotations

from dataclasses import dataclass, field as attribute
from typing import Any, Callable, Mapping

from ..registers import GROUPS, MAX_GAP, Register, registers_of

FLOAT, INTEGER, BOOLEAN, STRING = "float", "integer", "boolean", "string"
TYPES = (FLOAT, INTEGER, BOOLEAN, STRING)


def code_name(meanings: Mapping[int, str], code: int) -> str:
    """The name of a code; a code the table does not know is UNKNOWN_<code>, never an error."""
    return meanings.get(code, f"UNKNOWN_{code}")


def as_float(value: Any) -> float | None:
    # + 0.0 turns -0.0 into 0.0: one zero, one text for it.
    return None if value is None else float(value) + 0.0


@dataclass(frozen=True)
class Field:
    """One value as clients see it.

    - `key`: its name in the API objects (`status.battery_status`: nested);
      the InfluxDB field is named like the key's last part unless `influx` says otherwise.
    - `column`: the stored column (a register's name) it is derived from;
      `shift`/`width`: a code or flag inside a status word, `(word >> shift) & (2**width - 1)`
      (width 0: the whole value); `meanings`: the names of its codes (an enum or a status
      code); `invert`: a flag that is the negation of its column.
    - `type`: what the API answers (FLOAT rounded to `decimals`, INTEGER, BOOLEAN, STRING);
      InfluxDB gets every number as a float, unrounded.
    - `objects`: the API objects it is part of; `measurement`: where it is written (None: not replicated).
    - `series`: what its 24 h series is called (its column is kept in one-minute buckets);
      `bucketed`: kept in one-minute buckets without a series of its own.
    - `description`: the OpenAPI description.
    """

    key: str
    column: str
    objects: tuple[str, ...]
    measurement: str | None
    type: str = FLOAT
    decimals: int = 2
    shift: int = 0
    width: int = 0
    meanings: Mapping[int, str] | None = attribute(default=None, hash=False)
    invert: bool = False
    influx: str = ""
    series: str | None = None
    bucketed: bool = False
    description: str = ""

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"{self.key}: unknown type {self.type}")
        if not self.influx:
            object.__setattr__(self, "influx", self.key.rsplit(".", 1)[-1])

    @property
    def name(self) -> str:
        """The key's last part: the field's name inside its (sub)object."""
        return self.key.rsplit(".", 1)[-1]

    @property
    def influx_type(self) -> str:
        """The InfluxDB type: every number is a float, so 13 V never starts a field type conflict."""
        return FLOAT if self.type == INTEGER else self.type

    @property
    def minute_bucketed(self) -> bool:
        return self.series is not None or self.bucketed

    @property
    def coded(self) -> bool:
        """Decoded from a code or a flag: few distinct values."""
        return self.meanings is not None or self.type == BOOLEAN

    def decode(self) -> Callable[[Any], Any]:
        """stored value -> the value InfluxDB holds (names for codes, booleans for flags, floats)."""
        shift, mask, meanings = self.shift, (1 << self.width) - 1, self.meanings
        if meanings is not None:
            if self.width:
                return lambda word: code_name(meanings, (int(word) >> shift) & mask)
            return lambda code: code_name(meanings, int(code))
        if self.type == BOOLEAN:
            if self.width:
                return lambda word: bool((int(word) >> shift) & mask)
            return (lambda flag: not flag) if self.invert else bool
        if self.type in (FLOAT, INTEGER):
            if self.width:
                return lambda word: float((int(word) >> shift) & mask)
            return as_float
        return str

    def from_influx(self) -> Callable[[Any], Any]:
        """what InfluxDB holds -> the API's value (None stays None)."""
        if self.type == FLOAT:
            decimals = self.decimals
            return lambda v: None if v is None else round(float(v) + 0.0, decimals)
        if self.type == INTEGER:
            return lambda v: None if v is None else int(round(v))
        if self.type == BOOLEAN:
            return lambda v: None if v is None else bool(v)
        return lambda v: v

    def from_column(self) -> Callable[[Any], Any]:
        """stored value -> the API's value (None stays None)."""
        if self.type == STRING and self.meanings is None:
            return lambda v: v
        decode, finish = self.decode(), self.from_influx()
        return lambda v: None if v is None else finish(decode(v))


@dataclass(frozen=True)
class Derived:
    """A stored column computed from other columns of its group when a group is read (not a register).

    A model that has no register for a value the vocabulary stores (Renogy's battery current
    is its charging current minus its load current) derives it, so that the column, the
    InfluxDB field and the API key mean one thing for every model. `compute(values)` gets the
    group's decoded values. `kind`/`divisor` give the column's type as a register's would.
    """

    name: str
    group: str
    inputs: tuple[str, ...]
    compute: Callable[[Mapping[str, Any]], Any] = attribute(hash=False, compare=False)
    kind: str = "s32"
    divisor: int = 1
    unit: str = ""
    doc: str = ""
    optional: bool = False

    @property
    def is_float(self) -> bool:
        return self.divisor != 1


class Catalogue:
    """A device model: its registers (the stored columns) and its fields, with the lookups the code needs.

    `derived`: columns computed from the registers of their group (see `Derived`). `max_gap`: the
    unused addresses a read may span (Renogy's live block is read whole, as its spec advises).
    `reported_model`: the column holding the model string the device reports, if it has one.
    """

    def __init__(self, model: str, registers: tuple[Register, ...], fields: tuple[Field, ...], *,
                 derived: tuple[Derived, ...] = (), max_gap: int = MAX_GAP, reported_model: str | None = None,
                 summary: tuple[Field, ...] = ()):
        self.model = model
        self.summary = summary  # the codes `kammthaar status` shows beside the live figures
        self.registers = registers
        self.fields = fields
        self.derived = derived
        self.max_gap = max_gap
        self.reported_model = reported_model
        self._registers: dict[str, Register | Derived] = {r.name: r for r in (*registers, *derived)}
        if len(self._registers) != len(registers) + len(derived):
            raise ValueError(f"{model}: two registers share a name")
        for d in derived:
            missing = [c for c in d.inputs if c not in self._registers or self._registers[c].group != d.group]
            if missing:
                raise ValueError(f"{model}: {d.name} is derived from {missing}, no columns of its group")
        if reported_model is not None and reported_model not in self._registers:
            raise ValueError(f"{model}: the reported model is read from {reported_model}, which is no register")
        for f in fields:
            if f.column not in self._registers:
                raise ValueError(f"{model}: field {f.key} reads {f.column}, which is no register")
        self._named = {(f.column, f.name): f for f in fields}
        seen = set()
        for f in fields:
            for obj in f.objects:
                if (obj, f.key) in seen:
                    raise ValueError(f"{model}: two fields are {obj}.{f.key}")
                seen.add((obj, f.key))

    # -- lookups ------------------------------------------------------------------------

    def register(self, column: str) -> Register | Derived:
        """The register a column is read from, or the `Derived` line computing it."""
        return self._registers[column]

    def has_column(self, column: str) -> bool:
        return column in self._registers

    def columns(self, group: str) -> tuple[Register | Derived, ...]:
        """The stored columns of a group: its registers in address order, then its derived columns."""
        return registers_of(group, self.registers) + tuple(d for d in self.derived if d.group == group)

    def groups(self) -> tuple[str, ...]:
        """The register groups the model has (a model without a clock has no clock group)."""
        return tuple(g for g in GROUPS if any(r.group == g for r in self.registers))

    def derive(self, group: str, values: dict[str, Any]) -> dict[str, Any]:
        """`values` of a group read whole, with its derived columns added (in place)."""
        for d in self.derived:
            if d.group == group:
                values[d.name] = d.compute(values)
        return values

    def group(self, f: Field) -> str:
        """The register group (live, stats, settings, clock) a field's column is read with."""
        return self._registers[f.column].group

    def unit(self, f: Field) -> str:
        return "" if f.coded else self._registers[f.column].unit

    def objects(self) -> tuple[str, ...]:
        """The API objects, in the order of their first field."""
        return tuple(dict.fromkeys(obj for f in self.fields for obj in f.objects))

    def object_fields(self, obj: str) -> tuple[Field, ...]:
        """The fields of an API object, in the order of its keys."""
        out = tuple(f for f in self.fields if obj in f.objects)
        if not out:
            raise KeyError(f"{self.model} has no API object {obj!r}")
        return out

    def field(self, obj: str, key: str) -> Field:
        for f in self.object_fields(obj):
            if f.key == key:
                return f
        raise KeyError(f"{self.model} has no field {obj}.{key}")

    def column_fields(self, column: str) -> tuple[Field, ...]:
        """The fields derived from one column (every code and flag of a status word)."""
        return tuple(f for f in self.fields if f.column == column)

    def replicated(self, group: str) -> dict[str, tuple[Field, ...]]:
        """measurement -> its fields written from a row of `group`, in the order a row yields them."""
        out: dict[str, list[Field]] = {}
        for f in self.fields:
            if f.measurement is not None and self.group(f) == group:
                out.setdefault(f.measurement, []).append(f)
        return {m: tuple(fs) for m, fs in out.items()}

    def stamp(self, group: str) -> Field | None:
        """A field written with every row of `group`: its newest point is the group's newest row
        (None: the model writes nothing from that group, as a Rover has no clock)."""
        return next((fs[0] for fs in self.replicated(group).values()), None)

    def minute_columns(self) -> tuple[str, ...]:
        """The live columns kept in one-minute buckets, in the order of the fields table."""
        return tuple(dict.fromkeys(f.column for f in self.fields if f.minute_bucketed))

    # -- values -------------------------------------------------------------------------

    @staticmethod
    def nest(fields: tuple[Field, ...], value: Callable[[Field], Any]) -> dict:
        """`value(field)` under each field's key, nested where a key says so (`status.battery_status`)."""
        out: dict = {}
        for f in fields:
            *path, name = f.key.split(".")
            target = out
            for part in path:
                target = target.setdefault(part, {})
            target[name] = value(f)
        return out

    def decode_word(self, column: str, word: int) -> dict:
        """Every field derived from a status word, as the API nests them (`{"status": {...}}`, `errors`)."""
        return self.nest(self.column_fields(column), lambda f: f.decode()(word))

    def enum_name(self, column: str, code: int) -> str:
        """The name of a settings enum value, e.g. enum_name('battery_type', 2) == 'GEL'."""
        (f,) = (f for f in self.column_fields(column) if f.meanings is not None and not f.width)
        return code_name(f.meanings, int(code))

    def code(self, column: str, name: str, value: str | bool | int) -> int:
        """The code of field `name` of `column` (unshifted) that reads `value` (the simulator's side).

        `value` is a code's name (its lowest code), a flag's boolean, or a code itself.
        """
        f = self._named[(column, name)]
        if isinstance(value, str):
            return min(c for c, n in (f.meanings or {}).items() if n == value)
        if f.type == BOOLEAN:
            return int(bool(value) != f.invert)
        return int(value)

    def word(self, column: str, **values: str | bool | int) -> int:
        """A status word from its fields' values, by field name; the fields not given are 0."""
        out = 0
        for name, value in values.items():
            out |= self.code(column, name, value) << self._named[(column, name)].shift
        return out
