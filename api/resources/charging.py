"""The charging equipment status word, decoded: /charging/..."""

from __future__ import annotations

from ..families import family
from .base import object_routes

CHARGING = family("charging", "charging")


def routes(api) -> list:
    return object_routes(api, CHARGING, "/charging", "Charging equipment", tag="charging")
