"""The site around the simulated controller: the sun on the array, the outside temperature, the load's demand.

Pure functions of the local time (and a weather offset): the model in model.py integrates them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

LATITUDE_DEG = 48.0


def irradiance(local: datetime) -> float:
    """Clear-sky irradiance on the array, 0..1, from the sun's elevation at LATITUDE_DEG."""
    doy = local.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    dst = local.dst() or timedelta(0)
    solar_hours = local.hour + local.minute / 60 + local.second / 3600 - dst.total_seconds() / 3600
    hour_angle = math.radians(15.0 * (solar_hours - 12.0))
    lat = math.radians(LATITUDE_DEG)
    sin_alt = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
    return max(0.0, sin_alt) ** 1.15


def ambient(local: datetime, weather_c: float) -> float:
    """Outside temperature: a seasonal mean, a daily swing peaking mid-afternoon, weather."""
    doy = local.timetuple().tm_yday
    season = 9.0 - 9.0 * math.cos(2 * math.pi * (doy - 20) / 365)
    hours = local.hour + local.minute / 60
    return season + 5.0 * math.cos(2 * math.pi * (hours - 15.0) / 24) + weather_c


def load_demand(local: datetime, t: float) -> float:
    """What the load draws: a router all day, lights in the evening, a little in the morning."""
    hours = local.hour + local.minute / 60
    watts = 9.0 + 1.5 * math.sin(2 * math.pi * t / 600)
    if 18.0 <= hours < 23.0:
        watts += 30.0
    elif 6.0 <= hours < 8.0:
        watts += 15.0
    return watts
