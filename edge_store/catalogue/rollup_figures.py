"""The edge's own statistics of a local day or month (the rollups): every figure, in the API's order.

Model-independent: the rollups are computed from the live samples on the
edge (edge_store/rollups/). A figure is a column of `rollup_daily` (and of
the `rollup_monthly` view), a field of the InfluxDB measurement of the same
name (every number a float), and a key of the API's statistics object, with
its rounding there. The object starts with its period: `date` of a day,
`month` of a month.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .fields import FLOAT, INTEGER

DAY, MONTH = "day", "month"
# period column of the rollup -> the key of the API object and InfluxDB field
PERIOD_FIELD = {DAY: "date", MONTH: "month"}


@dataclass(frozen=True)
class Figure:
    """One figure: its API key (= InfluxDB field), the column it comes from and how it is answered.

    `column`/`divisor`: covered_s is covered_ms / 1000. `missing`: the answer when there is no
    value (None, or 0 for the counts). `nullable`: the API may answer null.
    """

    name: str
    decimals: int
    type: str = FLOAT
    nullable: bool = False
    missing: Any = None
    column: str = ""
    divisor: int = 1
    minimum: float | None = None
    description: str = ""

    def __post_init__(self):
        if not self.column:
            object.__setattr__(self, "column", self.name)

    def stored(self, row: dict) -> Any:
        """The figure's value in a rollup row (before rounding)."""
        value = row.get(self.column)
        return value if value is None or self.divisor == 1 else value / self.divisor

    def answer(self, value: Any) -> Any:
        """The API's value: rounded, or `missing` when there is none."""
        if value is None:
            return self.missing
        if self.type == INTEGER:
            return int(value)
        return round(float(value) + 0.0, self.decimals)


_SAMPLES = "from the samples; null without samples"
_BATTERY_KWH = ("battery voltage x current integrated by sign, a positive number; absent from InfluxDB (null "
                "from the cloud) for periods replicated before migration 0015 whose samples were pruned")

FIGURES: tuple[Figure, ...] = (
    *(Figure(f"{quantity}_{end}", 2, nullable=True, description=_SAMPLES)
      for quantity in ("battery_voltage", "pv_voltage", "soc", "battery_temperature") for end in ("min", "max")),
    Figure("energy_generated_kwh", 3),
    Figure("energy_consumed_kwh", 3),
    Figure("battery_charge_ah", 3),
    Figure("battery_discharge_ah", 3),
    # The battery power integrated by sign (kWh, migration 0015). The cloud may lack them for periods
    # replicated before it whose raw samples were pruned: null there.
    Figure("battery_charge_kwh", 3, nullable=True, description=_BATTERY_KWH),
    Figure("battery_discharge_kwh", 3, nullable=True, description=_BATTERY_KWH),
    Figure("samples", 0, type=INTEGER, missing=0, minimum=0),
    Figure("covered_s", 3, missing=0.0, column="covered_ms", divisor=1000, minimum=0),
    Figure("device_generated_kwh", 3, nullable=True),
    Figure("device_consumed_kwh", 3, nullable=True),
)

# Each figure's (key, column, divisor, integer, decimals, missing): `answer_row` reads a row
# with these once per figure instead of two method calls, since the API's statistics
# paths answer up to hundreds of rows per request.
_PLAN = tuple((f.name, f.column, f.divisor, f.type == INTEGER, f.decimals, f.missing) for f in FIGURES)


def answer_row(row: Mapping[str, Any], out: dict) -> dict:
    """Every figure of a rollup row as the API answers it, added to `out`: the same values as
    `figure.answer(figure.stored(row))` for each figure (a test keeps them equal)."""
    for name, column, divisor, integer, decimals, missing in _PLAN:
        value = row.get(column)
        if value is None:
            out[name] = missing
            continue
        if divisor != 1:
            value = value / divisor
        out[name] = int(value) if integer else round(float(value) + 0.0, decimals)
    return out
