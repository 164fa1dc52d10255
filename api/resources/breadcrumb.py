"""Day or night and the device clock, for the dashboard's header: /breadcrumb/..."""

from __future__ import annotations

from ..families import family
from .base import object_routes

BREADCRUMB = family("breadcrumb", "breadcrumb")


def routes(api) -> list:
    return object_routes(api, BREADCRUMB, "/breadcrumb", "Day or night, device clock", tag="breadcrumb")
