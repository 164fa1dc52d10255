"""Local alerts (issue 13): rules as data, evaluated by the collector on every sample it stores.

rules.py: the built-in table and the custom rules of the config; engine.py: the
state machine (ok -> pending -> firing -> resolved) writing its events in the
sample's transaction; events.py: reading them back (API, status, notifier).
This package imports neither replicator nor api.
"""

from .engine import Engine
from .rules import AlertsConfig, Rule, load_alerts

__all__ = ["AlertsConfig", "Engine", "Rule", "load_alerts"]
