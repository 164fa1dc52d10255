"""Home Assistant's names for the controllers the publisher speaks for (`cfg.devices`): topic level,
node id, the model each reports, and its device block."""

from __future__ import annotations

import re

from edge_store.catalogue import MODELS
from edge_store.devices import DeviceConfig

# model string -> (manufacturer, model name shown in Home Assistant)
MAKERS = {"epever-tracer": ("EPEVER", "Tracer (epever-tracer)"), "renogy-rover": ("Renogy", "Rover (renogy-rover)")}


def topic_part(name: str) -> str:
    """A site or device name as one topic level: MQTT's separator and wildcards replaced."""
    return re.sub(r"[/+#\x00]", "_", name)


def node_id(site: str, device: str) -> str:
    """Home Assistant's identifier of a controller: site and device name, which never change."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"kammthaar_{site}_{device}")


def reported_model(device: DeviceConfig, settings_row: dict | None) -> str | None:
    """The model string the device reports (its newest settings row), where its model has one."""
    column = MODELS[device.model].reported_model
    value = None if column is None or settings_row is None else settings_row.get(column)
    return value.strip() or None if isinstance(value, str) else None


def ha_device(site: str, device: DeviceConfig, reported: str | None = None) -> dict:
    """The `device` block of every discovery config of `device`; its model is the one the device
    reports (`RNG-CTRL-RVR40`) where it has one, else the register table's."""
    manufacturer, model = MAKERS.get(device.model, (device.model, device.model))
    return {"identifiers": [node_id(site, device.name)], "name": f"{device.name} ({site})",
            "manufacturer": manufacturer, "model": reported or model}
