"""The EPEVER Tracer's status words and settings enums decoded by name, as the tests compare them.

Status words are stored raw (one integer each) and decoded when read, from
the catalogue's fields (epever_tracer.py holds the bits and what the codes
mean). Key spellings, misspellings included, are the ones existing clients read.
"""

from __future__ import annotations

from edge_store.catalogue.epever_tracer import BATTERY_WORD, CHARGING_WORD, DISCHARGING_WORD, EPEVER_TRACER


def battery_status(word: int) -> dict:
    """0x3200: the battery object's `status`."""
    return EPEVER_TRACER.decode_word(BATTERY_WORD, word)["status"]


def charging_status(word: int) -> dict:
    """0x3201: the charging object."""
    return EPEVER_TRACER.decode_word(CHARGING_WORD, word)


def discharging_status(word: int) -> dict:
    """0x3202: the discharging object."""
    return EPEVER_TRACER.decode_word(DISCHARGING_WORD, word)


def enum_name(column: str, code: int) -> str:
    """The name of a settings enum value, e.g. enum_name('battery_type', 2) == 'GEL'."""
    return EPEVER_TRACER.enum_name(column, code)
