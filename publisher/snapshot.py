"""What the store holds now for one controller, read-only through edge_store/db.py.

`Snapshot.take()` reads in one snapshot: the newest row of every register group,
the newest collector error, and the edge's lifetime energy totals summed over
`rollup_daily` (kept forever): the edge's own integration of PV power, load
power and battery power (in and out by sign) between consecutive live samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_store.db import Database, dicts
from edge_store.schema import SAMPLE_TABLES
from edge_store.registers import GROUPS

_NEWEST = "SELECT * FROM {t} WHERE device = ? ORDER BY ts_ms DESC, id DESC LIMIT 1"
_LAST_ERROR = ("SELECT ts_ms, kind, block, detail FROM collector_errors WHERE device = ? "
               "ORDER BY ts_ms DESC, id DESC LIMIT 1")
_ENERGY = ("SELECT total(energy_generated_kwh) AS generated_kwh, total(energy_consumed_kwh) AS consumed_kwh, "
           "total(battery_charge_kwh) AS battery_in_kwh, total(battery_discharge_kwh) AS battery_out_kwh "
           "FROM rollup_daily WHERE device = ?")


@dataclass(frozen=True)
class Snapshot:
    """One controller's newest rows by group (None: none stored), newest error and energy totals (kWh)."""

    newest: dict[str, dict[str, Any] | None]
    last_error: dict[str, Any] | None
    energy: dict[str, float]


class StoreReader:
    """The store, opened read-only: a reader never makes the collector wait (WAL)."""

    def __init__(self, path: str):
        self.db = Database(path, readonly=True)

    def take(self, device: str) -> Snapshot:
        db = self.db
        with db.reading(f"could not read the newest values of {device}"):
            newest = {}
            for group in GROUPS:
                rows = dicts(db.query(f"could not read the newest {group} sample",
                                      _NEWEST.format(t=SAMPLE_TABLES[group]), (device,)))
                newest[group] = rows[0] if rows else None
            errors = dicts(db.query("could not read the collector errors", _LAST_ERROR, (device,)))
            (energy,) = dicts(db.query("could not read the daily statistics", _ENERGY, (device,)))
        return Snapshot(newest, errors[0] if errors else None, {k: round(v, 3) for k, v in energy.items()})

    def close(self) -> None:
        self.db.close()
