"""The controller itself: /controller/..."""

from __future__ import annotations

from ..families import family
from .base import object_routes

CONTROLLER = family("controller", "controller")


def routes(api) -> list:
    return object_routes(api, CONTROLLER, "/controller", "Controller", tag="controller")
