"""Kammthaar edge store: config, the SQLite store, the EPEVER collector and its simulator."""

__version__ = "0.1.0"
