"""The discharging (load) equipment status word, decoded: /discharging/..."""

from __future__ import annotations

from ..families import family
from .base import object_routes

DISCHARGING = family("discharging", "discharging")


def routes(api) -> list:
    return object_routes(api, DISCHARGING, "/discharging", "Discharging equipment", tag="discharging")
