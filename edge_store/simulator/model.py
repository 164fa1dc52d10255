"""The physics of a simulated EPEVER Tracer: a 12 V 200 Ah gel battery, a 400 W PV array, a load.

Pure and deterministic: the state is integrated on a fixed grid of simulated
time (`STEP_S`, aligned to the epoch so local midnights fall on grid points),
so the same seed, start and clock readings give the same values however often
`snapshot()` is called. Between grid points the instantaneous values (sun,
clouds, load) are evaluated at the exact simulated time.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..catalogue.epever_tracer import BATTERY_WORD, CHARGING_WORD, DISCHARGING_WORD, EPEVER_TRACER as CATALOGUE
from . import environment

STEP_S = 30.0
PV_PEAK_W = 400.0
PV_VOC_V = 22.4  # open-circuit voltage of the array at full sun
CAPACITY_AH = 200.0
RATED_CHARGING_A = 40.0
RATED_LOAD_A = 40.0
CHARGER_EFFICIENCY = 0.96
CHARGE_EFFICIENCY = 0.97  # coulombic, lead acid
R_INTERNAL_OHM = 0.012
NIGHT_THRESHOLD_V = 5.0  # EPEVER calls it night below this PV voltage
FLOAT_CURRENT_A = 0.4

# Status words and enums are encoded from their names: the catalogue holds the bits and codes.
# The charging stage (0x3201 D3-D2), as the model integrates it.
NO_CHARGING, FLOAT, BOOST, EQUALIZATION = (CATALOGUE.code(CHARGING_WORD, "charging_status", stage)
                                           for stage in ("NO_CHARGING", "FLOAT", "BOOST", "EQUALIZATION"))


def _enum(column: str, name: str) -> int:
    return CATALOGUE.code(column, column, name)


# What the controller is configured for: EPEVER's gel defaults, 12 V.
SETTINGS: dict[str, float | int] = {
    "rated_charging_current": RATED_CHARGING_A,
    "rated_load_current": RATED_LOAD_A,
    "battery_real_rated_voltage": 12.0,
    "battery_type": _enum("battery_type", "GEL"),
    "battery_capacity": int(CAPACITY_AH),
    "temp_compensation_coefficient": 3.0,
    "over_voltage_disconnect": 16.0,
    "charging_limit_voltage": 15.0,
    "over_voltage_reconnect": 15.0,
    "equalize_charging_voltage": 14.4,
    "boost_charging_voltage": 14.4,
    "float_charging_voltage": 13.8,
    "boost_reconnect_voltage": 13.2,
    "low_voltage_reconnect": 12.6,
    "under_voltage_recover": 12.2,
    "under_voltage_warning": 12.0,
    "low_voltage_disconnect": 11.1,
    "discharging_limit_voltage": 10.6,
    "battery_rated_voltage": _enum("battery_rated_voltage", "12V"),
    "default_load_mode": _enum("default_load_mode", "ON"),
    "equalize_duration": 0,  # gel is never equalized
    "boost_duration": 120,
    "battery_discharge": 30,
    "battery_charge": 100,
    "charging_mode": _enum("charging_mode", "VOLTAGE_COMPENSATION"),
}

# Rough daily energy used to make the counters look like a device with a history.
_DAILY_GENERATED_KWH = 1.1
_DAILY_CONSUMED_KWH = 0.4
_HISTORY_KWH = 1500.0

_ENERGY_KEYS = tuple(f.column for f in CATALOGUE.object_fields("energy"))


@dataclass
class _State:
    """What is integrated: everything that has memory."""

    t: float  # epoch seconds of this grid point
    soc: float  # 0..1
    battery_voltage: float
    battery_temperature: float
    controller_temperature: float
    weather_c: float  # slow random offset of the ambient temperature
    cloud: float  # clearness 0..1 at t
    cloud_next: float  # clearness at t + STEP_S
    stage: int
    load_on: bool
    day: date
    energy: dict[str, float] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)
    minima: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Electrics:
    """The instantaneous electrical quantities at one moment."""

    pv_voltage: float
    pv_current: float
    pv_power: float
    charger_current: float  # into battery and load
    battery_current: float  # net, + charging
    battery_voltage: float
    load_on: bool
    load_power: float
    load_current: float
    stage: int
    ambient: float


class SolarDay:
    """An EPEVER Tracer on a 12 V ~200 Ah battery with a ~400 W PV array, in simulated time.

    Simulated time is `start + (clock() - clock_at_construction) * speed`;
    `speed=0` freezes it. `tz` is the zone of the device clock, which is where
    daily/monthly/yearly counters roll over.
    """

    def __init__(
        self,
        seed: int = 1,
        start: datetime | None = None,
        speed: float = 1.0,
        tz: ZoneInfo | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if start is None:
            start = datetime.now(timezone.utc)
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.seed = seed
        self.start = start.astimezone(timezone.utc)
        self.speed = speed
        self.tz = tz or ZoneInfo("UTC")
        self._clock = clock
        self._clock0 = clock()
        self._rng = random.Random(seed)
        self._cloud_mean = self._rng.uniform(0.55, 0.95)
        self._state = self._initial_state()

    @property
    def sim_time(self) -> datetime:
        """The current simulated time (aware, UTC)."""
        return self.start + timedelta(seconds=(self._clock() - self._clock0) * self.speed)

    def snapshot(self) -> dict[str, object]:
        """Step up to the current simulated time and return a value for every register name."""
        now = self.sim_time
        t = now.timestamp()
        self._advance_to(t)
        st = self._state
        frac = min(1.0, max(0.0, (t - st.t) / STEP_S))
        cloud = st.cloud + (st.cloud_next - st.cloud) * frac
        e = self._electrics(t, st, cloud)
        local = now.astimezone(self.tz)
        values: dict[str, object] = dict(SETTINGS)
        values.update(
            pv_voltage=e.pv_voltage,
            pv_current=e.pv_current,
            pv_power=e.pv_power,
            battery_power=e.charger_current * e.battery_voltage,
            load_voltage=e.battery_voltage if e.load_on else 0.0,
            load_current=e.load_current,
            load_power=e.load_power,
            battery_temperature=st.battery_temperature,
            controller_temperature=st.controller_temperature,
            state_of_charge=int(round(st.soc * 100)),
            remote_battery_temperature=st.battery_temperature,
            battery_status=self._battery_status(e, st),
            charging_equipment_status=self._charging_status(e),
            discharging_equipment_status=self._discharging_status(e),
            battery_voltage=e.battery_voltage,
            battery_current=e.battery_current,
            device_over_temperature=st.controller_temperature > 85.0,
            night=e.pv_voltage < NIGHT_THRESHOLD_V,
            maximum_pv_voltage_today=max(st.maxima["pv"], e.pv_voltage),
            minimum_pv_voltage_today=min(st.minima["pv"], e.pv_voltage),
            maximum_battery_voltage_today=max(st.maxima["battery"], e.battery_voltage),
            minimum_battery_voltage_today=min(st.minima["battery"], e.battery_voltage),
            device_time=local.replace(tzinfo=None, microsecond=0),
        )
        values.update(st.energy)
        return values

    # -- integration ---------------------------------------------------------

    def _initial_state(self) -> _State:
        t0 = math.floor(self.start.timestamp() / STEP_S) * STEP_S
        local = datetime.fromtimestamp(t0, self.tz)
        soc = self._rng.uniform(0.45, 0.75)
        ambient = environment.ambient(local, 0.0)
        cloud = self._cloud_mean
        st = _State(
            t=t0, soc=soc, battery_voltage=_ocv(soc), battery_temperature=ambient,
            controller_temperature=ambient + 2.0, weather_c=0.0, cloud=cloud,
            cloud_next=self._next_cloud(cloud), stage=NO_CHARGING, load_on=True, day=local.date(),
        )
        # A device with a history: counters consistent with today <= month <= year <= total.
        hours = local.hour + local.minute / 60
        for kind, daily in (("consumed", _DAILY_CONSUMED_KWH), ("generated", _DAILY_GENERATED_KWH)):
            today = daily * hours / 24
            month = daily * (local.day - 1) + today
            year = daily * (local.timetuple().tm_yday - 1) + today
            names = [n for n in _ENERGY_KEYS if kind in n]
            st.energy.update(zip(names, (today, month, year, year + _HISTORY_KWH)))
        e = self._electrics(t0, st, cloud)
        st.maxima = {"pv": e.pv_voltage, "battery": e.battery_voltage}
        st.minima = {"pv": e.pv_voltage, "battery": e.battery_voltage}
        return st

    def _next_cloud(self, cloud: float) -> float:
        # Seeded random walk with a pull toward this seed's typical clearness.
        cloud += self._rng.gauss(0.0, 0.025) + (self._cloud_mean - cloud) * 0.01
        return min(1.0, max(0.08, cloud))

    def _advance_to(self, t: float) -> None:
        st = self._state
        while st.t + STEP_S <= t:
            e = self._electrics(st.t, st, st.cloud)
            self._integrate(st, e, STEP_S)
            st.t += STEP_S
            st.cloud, st.cloud_next = st.cloud_next, self._next_cloud(st.cloud_next)
            st.weather_c += self._rng.gauss(0.0, 0.03) - st.weather_c * 0.0005
            self._roll_over(st, e)

    def _integrate(self, st: _State, e: _Electrics, dt: float) -> None:
        i = e.battery_current
        gain = CHARGE_EFFICIENCY if i > 0 else 1.0
        st.soc = min(1.0, max(0.0, st.soc + i * gain * dt / 3600 / CAPACITY_AH))
        st.battery_voltage = e.battery_voltage
        st.stage = e.stage
        st.load_on = e.load_on
        # First-order lags: the battery sits in a box, the controller heats with throughput.
        st.battery_temperature += (e.ambient + 0.002 * i * i - st.battery_temperature) * dt / (4 * 3600)
        target = e.ambient + 3.0 + 0.035 * e.pv_power + 0.02 * e.load_power
        st.controller_temperature += (target - st.controller_temperature) * dt / 900
        charge_w = e.charger_current * e.battery_voltage
        for name in _ENERGY_KEYS:
            st.energy[name] += (charge_w if "generated" in name else e.load_power) * dt / 3.6e6
        st.maxima["pv"] = max(st.maxima["pv"], e.pv_voltage)
        st.minima["pv"] = min(st.minima["pv"], e.pv_voltage)
        st.maxima["battery"] = max(st.maxima["battery"], e.battery_voltage)
        st.minima["battery"] = min(st.minima["battery"], e.battery_voltage)

    def _roll_over(self, st: _State, e: _Electrics) -> None:
        """Reset the device's daily/monthly/yearly statistics at its local midnight."""
        today = datetime.fromtimestamp(st.t, self.tz).date()
        if today == st.day:
            return
        periods = ["today"]
        if (today.year, today.month) != (st.day.year, st.day.month):
            periods.append("this_month")
        if today.year != st.day.year:
            periods.append("this_year")
        for name in _ENERGY_KEYS:
            if any(name.endswith(p) for p in periods):
                st.energy[name] = 0.0
        st.maxima = {"pv": e.pv_voltage, "battery": e.battery_voltage}
        st.minima = {"pv": e.pv_voltage, "battery": e.battery_voltage}
        st.day = today

    # -- instantaneous electrics --------------------------------------------

    def _electrics(self, t: float, st: _State, cloud: float) -> _Electrics:
        local = datetime.fromtimestamp(t, self.tz)
        ambient = environment.ambient(local, st.weather_c)
        sun = environment.irradiance(local) * cloud  # 0..1 of full sun on the array
        cell_c = ambient + 25.0 * sun
        available_w = PV_PEAK_W * sun * (1 - 0.004 * (cell_c - 25.0))
        voc = 0.0 if sun <= 0 else max(0.0, PV_VOC_V * (1 + 0.05 * math.log(sun)) - 0.08 * (cell_c - 25.0))
        v_prev = st.battery_voltage

        # The load output: disconnect on low voltage, reconnect when recovered.
        load_on = st.load_on
        if load_on and v_prev < SETTINGS["low_voltage_disconnect"]:
            load_on = False
        elif not load_on and v_prev >= SETTINGS["low_voltage_reconnect"]:
            load_on = True
        load_w = environment.load_demand(local, t) if load_on else 0.0
        load_a = load_w / v_prev

        can_charge = voc > v_prev + 1.0 and available_w > 1.0
        stage = st.stage
        if not can_charge:
            stage = NO_CHARGING
        elif stage == NO_CHARGING:
            stage = FLOAT if st.soc >= 0.97 else BOOST
        elif stage == BOOST and st.soc >= 0.995:
            stage = FLOAT
        elif stage == FLOAT and st.soc < 0.90:
            stage = BOOST

        charger_a = 0.0
        limited_by_pv = False
        if stage != NO_CHARGING:
            accept = _acceptance(st.soc) if stage == BOOST else FLOAT_CURRENT_A
            pv_max_a = available_w * CHARGER_EFFICIENCY / v_prev
            wanted = min(load_a + accept, RATED_CHARGING_A)
            limited_by_pv = pv_max_a < wanted
            charger_a = min(pv_max_a, wanted)
        battery_a = charger_a - load_a

        natural = _ocv(st.soc) + R_INTERNAL_OHM * battery_a
        if battery_a > 0:
            # Charge overpotential rises steeply toward full: the absorption knee.
            natural += 1.6 * st.soc ** 8 * min(1.0, battery_a / (0.05 * CAPACITY_AH)) ** 0.3
        if stage == BOOST:
            battery_v = min(natural, SETTINGS["boost_charging_voltage"])
        elif stage == FLOAT and not limited_by_pv:
            battery_v = SETTINGS["float_charging_voltage"]
        else:
            battery_v = min(natural, SETTINGS["float_charging_voltage"])

        pv_w = charger_a * battery_v / CHARGER_EFFICIENCY
        if pv_w > 0:
            # MPPT sits near Vmp when it takes all it can, nearer Voc when it throttles.
            loading = min(1.0, pv_w / available_w)
            pv_v = voc * (0.82 + 0.16 * (1 - loading))
            pv_a = pv_w / pv_v
        else:
            pv_v, pv_a = voc, 0.0
        return _Electrics(
            pv_voltage=pv_v, pv_current=pv_a, pv_power=pv_a * pv_v, charger_current=charger_a,
            battery_current=battery_a, battery_voltage=battery_v, load_on=load_on,
            load_power=load_w, load_current=load_a, stage=stage, ambient=ambient,
        )

    # -- status words ---------------------------------------------------------

    @staticmethod
    def _battery_status(e: _Electrics, st: _State) -> int:
        v = e.battery_voltage
        if v > SETTINGS["over_voltage_disconnect"]:
            state = "OVER_VOLTAGE"
        elif not e.load_on or v < SETTINGS["low_voltage_disconnect"]:
            state = "OVER_DISCHARGE"
        elif v < SETTINGS["under_voltage_warning"]:
            state = "UNDER_VOLTAGE"
        else:
            state = "NORMAL"
        temp = st.battery_temperature
        warning = "OVER_TEMP" if temp > 50.0 else "LOW_TEMP" if temp < -10.0 else "NORMAL"
        return _word(BATTERY_WORD, ("battery_status", state), ("temperature_warning_status", warning))

    @staticmethod
    def _charging_status(e: _Electrics) -> int:
        no_input = e.pv_voltage < NIGHT_THRESHOLD_V
        return _word(CHARGING_WORD, ("input_voltage_status", "NO_INPUT_POWER" if no_input else "NORMAL"),
                     ("charging_status", e.stage), ("running", e.stage != NO_CHARGING))

    @staticmethod
    def _discharging_status(e: _Electrics) -> int:
        v = e.battery_voltage
        low, high = v < SETTINGS["under_voltage_warning"], v > SETTINGS["over_voltage_disconnect"]
        share = e.load_current / RATED_LOAD_A
        load = "LIGHT" if share < 0.25 else "MODERATE" if share < 0.75 else "RATED" if share <= 1.0 else "OVERLOAD"
        return _word(DISCHARGING_WORD, ("input_voltage_status", "LOW" if low else "HIGH" if high else "NORMAL"),
                     ("output_power_load", load), ("running", e.load_on))


@functools.lru_cache(maxsize=1024)
def _word(column: str, *values: tuple[str, str | bool | int]) -> int:
    """`CATALOGUE.word(column, **dict(values))`, remembered: a status word takes few values, asked at every
    snapshot (a history of days asks it ten thousands of times)."""
    return CATALOGUE.word(column, **dict(values))


def _ocv(soc: float) -> float:
    """Open-circuit voltage of a 12 V gel battery: 12.85 V full, steep below 20 %."""
    return 11.6 + 1.25 * soc - 0.6 * (1 - soc) ** 6


def _acceptance(soc: float) -> float:
    """Current a lead-acid battery accepts in boost: C/4 in bulk, tapering near full."""
    if soc < 0.85:
        return 0.25 * CAPACITY_AH
    return max(2.0, 0.25 * CAPACITY_AH * (1 - soc) / 0.15)
