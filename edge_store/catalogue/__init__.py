"""Measurement catalogues, one per device model: what each field is everywhere (fields.py says how).

`EPEVER_TRACER` is the catalogue of the one model supported today; adding a
model is adding a module like epever_tracer.py.
"""

from .epever_tracer import EPEVER_TRACER
from .fields import BOOLEAN, FLOAT, INTEGER, STRING, Catalogue, Field

MODELS: dict[str, Catalogue] = {EPEVER_TRACER.model: EPEVER_TRACER}  # a [[devices]] model -> its catalogue

__all__ = ["EPEVER_TRACER", "MODELS", "BOOLEAN", "FLOAT", "INTEGER", "STRING", "Catalogue", "Field"]
