"""A simulated Renogy Rover: the same battery, array, sun and load as the EPEVER model, seen through the
Rover's register table (edge_store/catalogue/renogy_rover.py).

`RoverDay` is a `SolarDay` (model.py): the physics are integrated the same way;
what differs is what the device reports. The Rover counts its day in Ah and
Wh and keeps the day's maxima of its charging and load side, which the EPEVER
does not: they are integrated here beside the model's own state.
"""

from __future__ import annotations

from ..catalogue.epever_tracer import CHARGING_WORD, EPEVER_TRACER
from ..catalogue.renogy_rover import FAULTS, OVER_TEMPERATURE_BIT, RENOGY_ROVER
from .model import SETTINGS, SolarDay, _Electrics, _State

MODEL_STRING = "RNG-CTRL-RVR40"
UNDER_VOLTAGE_WARNING_BIT = next(bit for bit, name in FAULTS.items() if name == "battery_under_voltage_warning")
# The EPEVER model's charging stage -> the Rover's charging state (bulk is its MPPT state).
CHARGING_STATE = {"NO_CHARGING": "DEACTIVATED", "BOOST": "MPPT", "FLOAT": "FLOAT", "EQUALIZATION": "EQUALIZING"}
_HISTORY_DAYS = 400
_NOMINAL_V = 12.8  # Ah counters of a history of kWh
GEL = RENOGY_ROVER.code("renogy_battery_type", "renogy_battery_type", "GEL")


class RoverDay(SolarDay):
    """A Rover 40A on the SolarDay battery and array; `snapshot()` gives a value for every Rover register.

    `unit` is the Modbus unit id it holds (0x001A)."""

    def __init__(self, *args, unit: int = 1, **kwargs):
        self.unit = unit
        super().__init__(*args, **kwargs)

    def _initial_state(self) -> _State:
        st = super()._initial_state()
        self._day = {"charged_ah": 0.0, "discharged_ah": 0.0, "max_charging_a": 0.0, "max_charging_w": 0.0,
                     "max_load_a": 0.0, "max_load_w": 0.0}
        total_kwh = {name: value for name, value in st.energy.items() if name.startswith("total_")}
        self._totals = {"charged_ah": total_kwh["total_generated"] * 1000 / _NOMINAL_V,
                        "discharged_ah": total_kwh["total_consumed"] * 1000 / _NOMINAL_V}
        self._days = _HISTORY_DAYS + self._rng.randrange(100)
        return st

    def _integrate(self, st: _State, e: _Electrics, dt: float) -> None:
        super()._integrate(st, e, dt)
        day = self._day
        for name, amps in (("charged_ah", e.charger_current), ("discharged_ah", e.load_current)):
            day[name] += amps * dt / 3600
            self._totals[name] += amps * dt / 3600
        day["max_charging_a"] = max(day["max_charging_a"], e.charger_current)
        day["max_charging_w"] = max(day["max_charging_w"], e.charger_current * e.battery_voltage)
        day["max_load_a"] = max(day["max_load_a"], e.load_current)
        day["max_load_w"] = max(day["max_load_w"], e.load_power)

    def _roll_over(self, st: _State, e: _Electrics) -> None:
        day_before = st.day
        super()._roll_over(st, e)
        if st.day != day_before:
            self._day = dict.fromkeys(self._day, 0.0)
            self._days += 1

    def snapshot(self) -> dict[str, object]:
        """A value for every register of the Rover's table, from the same moment of the same model."""
        epever = super().snapshot()
        v = float(epever["battery_voltage"])
        charging_a = float(epever["battery_power"]) / v
        load_on = float(epever["load_voltage"]) > 0
        faults = (int(bool(epever["device_over_temperature"])) << OVER_TEMPERATURE_BIT
                  | int(v < SETTINGS["under_voltage_warning"]) << UNDER_VOLTAGE_WARNING_BIT)
        epever_stage = EPEVER_TRACER.decode_word(CHARGING_WORD, int(epever[CHARGING_WORD]))["charging_status"]
        stage = RENOGY_ROVER.code("charging_state", "charging_state", CHARGING_STATE[epever_stage])
        day = self._day
        values: dict[str, object] = {
            **self._settings(),
            **{name: epever[name] for name in (
                "state_of_charge", "battery_voltage", "load_voltage", "load_current", "load_power", "pv_voltage",
                "pv_current", "pv_power", "minimum_battery_voltage_today", "maximum_battery_voltage_today",
                "generated_today", "consumed_today", "total_generated", "total_consumed")},
            # Whole degrees, as the Rover reports them.
            "controller_temperature": round(float(epever["controller_temperature"])),
            "battery_temperature": round(float(epever["battery_temperature"])),
            "charging_current": charging_a,
            "load_state": (0x80 | 100) if load_on else 0,
            "charging_state": stage,
            "fault_bits": faults,
            "maximum_charging_current_today": max(day["max_charging_a"], charging_a),
            "maximum_discharging_current_today": max(day["max_load_a"], float(epever["load_current"])),
            "maximum_charging_power_today": round(max(day["max_charging_w"], charging_a * v)),
            "maximum_discharging_power_today": round(max(day["max_load_w"], float(epever["load_power"]))),
            "charged_today_ah": int(day["charged_ah"]),
            "discharged_today_ah": int(day["discharged_ah"]),
            "operating_days": self._days,
            "over_discharges": 2,
            "full_charges": self._days // 3,
            "total_charged_ah": int(self._totals["charged_ah"]),
            "total_discharged_ah": int(self._totals["discharged_ah"]),
        }
        return values

    def _settings(self) -> dict[str, object]:
        """System info and settings: a 12 V gel battery, as the EPEVER model's."""
        return {
            "max_system_voltage": 24, "rated_charging_current": 40, "rated_load_current": 20, "product_type": 0,
            "device_model": MODEL_STRING, "software_version": 0x00030201, "hardware_version": 0x00010000,
            "serial_number": 0x15010000 + self.seed % 0x10000, "device_address": self.unit, "system_voltage_setting": 255,
            "recognized_voltage": 12, "renogy_battery_type": GEL,
            **{name: SETTINGS[name] for name in (
                "battery_capacity", "over_voltage_disconnect", "charging_limit_voltage", "equalize_charging_voltage",
                "boost_charging_voltage", "float_charging_voltage", "boost_reconnect_voltage", "low_voltage_reconnect",
                "under_voltage_warning", "low_voltage_disconnect", "discharging_limit_voltage",
                "equalize_duration", "boost_duration")},
            "end_of_charge_soc": 100, "end_of_discharge_soc": 20, "over_discharge_delay_s": 5,
            "equalize_interval_days": 0, "temp_compensation_coefficient": 5,
        }

