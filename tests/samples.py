"""Sample values the tests share: plausible decoded values for store-level tests (what the reader would
hand over), a store filled with them, what the frozen simulator serves, and a `[[devices]]` entry (`device`).

The frozen simulator (`FROZEN`: speed 0, a fixed start, seed and zone) serves the same values at every
poll; `expected_values()` is what it serves, at the device's own resolution.
"""

from __future__ import annotations

from datetime import datetime

from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS, decode_register, encode

LIVE_VALUES = dict(
    device_over_temperature=False, night=False, pv_voltage=18.2, pv_current=3.1, pv_power=56.42,
    battery_power=54.0, load_voltage=13.1, load_current=1.0, load_power=13.1,
    battery_temperature=-3.5, controller_temperature=25.0, state_of_charge=80,
    remote_battery_temperature=None, battery_real_rated_voltage=12.0, battery_status=0,
    charging_equipment_status=9, discharging_equipment_status=1, battery_voltage=13.1,
    battery_current=-1.5,
)

STATS_VALUES = dict(
    maximum_pv_voltage_today=20.0, minimum_pv_voltage_today=0.0, maximum_battery_voltage_today=14.0,
    minimum_battery_voltage_today=12.0, consumed_today=0.5, consumed_this_month=5.0, consumed_this_year=50.0,
    total_consumed=500.0, generated_today=1.0, generated_this_month=10.0, generated_this_year=100.0,
    total_generated=1000.0,
)

T0 = 1_764_000_000_000  # 2025-11-24 16:00 UTC


def live(i: int, **extra) -> dict:
    """A live sample that differs from its neighbours."""
    return {**LIVE_VALUES, "battery_voltage": round(12.0 + (i % 250) / 100, 2), "pv_power": round(i * 0.37 % 400, 2),
            "state_of_charge": 40 + i % 60, "night": bool(i % 2), "charging_equipment_status": (i % 4) << 2 | 1,
            **extra}


def add_live(store, n: int, start: int = 0, device: str = "epever") -> None:
    """`n` live samples one second apart from T0 + `start` s, in one transaction."""
    store.insert_samples(LIVE, ({"ts_ms": T0 + (start + i) * 1000, "ntp_synced": True, "device": device,
                                 **live(start + i)} for i in range(n)))


# -- the frozen simulator ------------------------------------------------------------------------

START = "2026-06-21T10:00:00+00:00"
SEED = "3"
ZONE = "Europe/Paris"
FROZEN = ["--speed", "0", "--start", START, "--seed", SEED, "--timezone", ZONE]
GROUPS = (LIVE, STATS, SETTINGS, CLOCK)


def expected_values() -> dict:
    """What the frozen simulator serves (one EPEVER at unit 1), decoded as the device's own resolution gives it."""
    return expected_unit_values("epever-tracer", int(SEED), 1)


def expected_unit_values(model: str, seed: int, unit: int) -> dict:
    """What a unit of the frozen multi-unit simulator serves (`--device unit=U,model=M,seed=S`), decoded."""
    from edge_store.catalogue import MODELS
    from edge_store.simulator.options import SimOptions, UnitOptions
    from edge_store.simulator.serving import device_model

    options = SimOptions(port="/dev/null", speed=0, start=datetime.fromisoformat(START), timezone=ZONE)
    snap = device_model(options, UnitOptions(unit, model, seed)).snapshot()
    return {r.name: decode_register(r, encode(r, snap[r.name])) for r in MODELS[model].registers}


def device(name: str, interval_s: float, model: str = "epever-tracer"):
    """A `[[devices]]` entry as the config gives it (edge_store/devices.py), on a serial port."""
    from edge_store.devices import DeviceConfig
    from edge_store.ports import ModbusPort

    return DeviceConfig(name, model, 1, ModbusPort.parse("/dev/ttyUSB0"), 115200, interval_s, 60.0, 1)
