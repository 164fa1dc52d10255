"""The alert state machine: ok -> pending -> firing -> resolved, O(1) per sample and rule.

The collector's Store calls `on_sample` inside the transaction that stores a
live sample, so an event is written with its sample or not at all; figures
that are no sample (silent polls, free space, replication backlog) come
through `observe`. Only transitions write: a firing rule writes one event,
one `alert_state` row and one notification; its resolution one event and one
notification. A restart reads `alert_state` back (`load`), so an alert that
was firing stays firing and is not notified again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..catalogue import DEFAULT_MODEL
from .rules import MEASURED, AlertsConfig, Rule

_EVENT = ("INSERT INTO alert_events (ts_ms, rule, device, severity, state, value, threshold, message) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_NOTIFY = "INSERT INTO notifications (event_id, created_ms) VALUES (?, ?)"


@dataclass(frozen=True)
class Transition:
    rule: Rule
    device: str
    ts_ms: int
    state: str  # "firing" | "resolved"
    value: float


def _value(rule: Rule, raw) -> float:
    return float((int(raw) >> rule.shift) & ((1 << rule.width) - 1)) if rule.width else float(raw)


@dataclass(frozen=True)
class _Column:
    """The sample rules reading one column, with what lets a quiet sample skip them all at once:
    a flag's word with none of its bits set, a number between every rule's thresholds."""

    column: str
    rules: tuple[Rule, ...]
    flag_mask: int  # the bits the flag rules watch (0: numbers)
    below_max: float  # the highest `below` threshold (-inf: none)
    above_min: float  # the lowest `above` threshold (inf: none)


def _columns(rules: Iterable[Rule]) -> tuple[_Column, ...]:
    by: dict[str, list[Rule]] = {}
    for r in rules:
        if r.column is not None:
            by.setdefault(r.column, []).append(r)
    out = []
    for column, rs in by.items():
        # Only flags watched for a set bit (above 0.5) can share the bit test; others go through thresholds.
        flags = all(r.width == 1 and r.op == "above" and 0 <= r.threshold < 1 for r in rs)
        mask = sum(1 << r.shift for r in rs) if flags else 0
        numbers = [r for r in rs if not r.width]
        if not flags and len(numbers) != len(rs):  # codes inside a word, with other rules: never skipped
            out.append(_Column(column, tuple(rs), 0, float("inf"), float("-inf")))
            continue
        out.append(_Column(column, tuple(rs), mask,
                           max((r.threshold for r in rs if r.op == "below"), default=float("-inf")),
                           min((r.threshold for r in rs if r.op == "above"), default=float("inf"))))
    return tuple(out)


class _Model:
    """The sample rules of one device model, grouped by the column they read."""

    def __init__(self, rules: Iterable[Rule]):
        self.columns = _columns(rules)
        self.checks = tuple((i, c.column, c.flag_mask, c.below_max, c.above_min) for i, c in enumerate(self.columns))
        self.column_of = {r.name: i for i, c in enumerate(self.columns) for r in c.rules}


class Engine:
    """Evaluates the rules of an AlertsConfig for every device, each with its model's binding of the rules
    (`models`: device name -> model; a device not named there is a DEFAULT_MODEL); not thread-safe (the
    collector's)."""

    def __init__(self, config: AlertsConfig, models: Mapping[str, str] | None = None):
        self.config = config
        self.rules = config.rules
        self.models = dict(models or {})
        self._by_model: dict[str, _Model] = {}
        self._by_device: dict[str, _Model] = {}
        self._hot: set[tuple[int, str]] = set()  # (column index in the device's model, device): pending or firing
        self._measured = {f: tuple(r for r in config.rules if r.field == f) for f in MEASURED}
        self._pending: dict[tuple[str, str], int] = {}  # (rule, device) -> since ts_ms
        self._firing: dict[tuple[str, str], int] = {}  # (rule, device) -> event id
        self.loaded = False

    def model(self, device: str) -> _Model:
        """The rules as they bind to the device's model (built once per model)."""
        m = self._by_device.get(device)
        if m is None:
            name = self.models.get(device, DEFAULT_MODEL)
            m = self._by_model.get(name)
            if m is None:
                m = self._by_model[name] = _Model(self.config.for_model(name))
            self._by_device[device] = m
        return m

    # -- state ------------------------------------------------------------------------------

    def load(self, conn) -> None:
        """Re-establish the alerts firing in the store (after a restart or a rolled-back write)."""
        self._firing = {(r, d): e for r, d, e in conn.execute("SELECT rule, device, event_id FROM alert_state")}
        # Pending conditions stay (a new process has none): after a rolled-back round, its samples are
        # evaluated again and a condition about to fire does not wait a second for_s.
        self._hot = {(self.model(d).column_of[r], d) for r, d in self._firing if r in self.model(d).column_of}
        self.loaded = True

    def reset(self) -> None:
        """The transaction rolled back: the state is read again before the next evaluation."""
        self.loaded = False

    def firing(self) -> set[tuple[str, str]]:
        return set(self._firing)

    # -- evaluation -------------------------------------------------------------------------

    def step(self, rule: Rule, device: str, ts_ms: int, value: float) -> Transition | None:
        """One value of one rule: the transition it causes, if any (the in-memory state moves)."""
        key = (rule.name, device)
        if key in self._firing:
            if rule.cleared(value):
                del self._firing[key]
                return Transition(rule, device, ts_ms, "resolved", value)
            return None
        if not rule.breached(value):
            self._pending.pop(key, None)
            return None
        since = self._pending.setdefault(key, ts_ms)
        if ts_ms - since < rule.for_s * 1000:
            return None
        del self._pending[key]
        self._firing[key] = 0  # the event id once written
        return Transition(rule, device, ts_ms, "firing", value)

    def on_sample(self, conn, group: str, ts_ms: int, device: str, row: Mapping[str, Any]) -> int:
        """Evaluate the sample rules on a stored live sample, in its transaction; events written."""
        if group != "live":
            return 0
        if not self.loaded:
            self.load(conn)
        hot = self._hot
        model = self._by_device.get(device) or self.model(device)
        # The usual sample: one comparison per column for all of its rules, nothing else (bench/alerts.py).
        loud = [i for i, column, mask, low, high in model.checks
                if (raw := row[column]) is not None and (int(raw) & mask if mask else not low <= raw <= high)]
        if hot:
            loud = sorted(set(loud) | {i for i, d in hot if d == device})
        if not loud:
            return 0
        out = []
        for i in loud:
            col = model.columns[i]
            raw = row.get(col.column)
            if raw is None:
                continue
            still_hot = False
            for rule in col.rules:
                if rule.device is not None and rule.device != device:
                    continue
                t = self.step(rule, device, ts_ms, _value(rule, raw))
                if t is not None:
                    out.append(t)
                key = (rule.name, device)
                still_hot = still_hot or key in self._pending or key in self._firing
            if still_hot:
                hot.add((i, device))
            else:
                hot.discard((i, device))
        return self.write(conn, out, ts_ms) if out else 0

    def decide(self, field: str, device: str, ts_ms: int, value: float) -> list[Transition]:
        """The transitions a measured figure causes (write them with `write`)."""
        out = []
        for rule in self._measured.get(field, ()):
            if rule.device is None or rule.device == device:
                t = self.step(rule, device, ts_ms, value)
                if t is not None:
                    out.append(t)
        return out

    def on_figure(self, conn, field: str, device: str, ts_ms: int, value: float) -> int:
        """A measured figure in the caller's transaction (the collector's poll round); events written."""
        if not self.loaded:
            self.load(conn)
        transitions = self.decide(field, device, ts_ms, value)
        return self.write(conn, transitions, ts_ms) if transitions else 0

    def observe(self, db, field: str, device: str, value: float, ts_ms: int) -> int:
        """A measured figure (rules.MEASURED) on the store's Database `db`; events written in one transaction."""
        if not self.loaded:  # the alerts firing before a restart are known before deciding
            with db.reading("could not read the alert state") as conn:
                self.load(conn)
        transitions = self.decide(field, device, ts_ms, value)
        if not transitions:
            return 0
        try:
            with db.writing(f"could not record alert on {field}") as conn:
                return self.write(conn, transitions, ts_ms)
        except BaseException:
            self.reset()
            raise

    def write(self, conn, transitions: Iterable[Transition], now_ms: int) -> int:
        """Write events, the firing state and the notifications of `transitions`; how many."""
        if not self.loaded:
            self.load(conn)
        n = 0
        for t in transitions:
            r = t.rule
            event_id = conn.execute(_EVENT, (t.ts_ms, r.name, t.device, r.severity, t.state, t.value,
                                             r.threshold, r.message(t.device, t.value, t.state))).lastrowid
            if t.state == "firing":
                conn.execute("INSERT OR REPLACE INTO alert_state (rule, device, event_id, since_ms) "
                             "VALUES (?, ?, ?, ?)", (r.name, t.device, event_id, t.ts_ms))
                self._firing[(r.name, t.device)] = event_id
            else:
                conn.execute("DELETE FROM alert_state WHERE rule = ? AND device = ?", (r.name, t.device))
            conn.execute(_NOTIFY, (event_id, now_ms))
            n += 1
        return n


def write_test_event(conn, rule: Rule, device: str, ts_ms: int) -> int:
    """`kammthaar alerts test RULE`: a firing event marked as a test, notified, never active; its id."""
    message = f"TEST of {rule.name} on {device} (kammthaar alerts test): the wiring works"
    event_id = conn.execute(_EVENT, (ts_ms, rule.name, device, rule.severity, "firing", None, rule.threshold,
                                     message)).lastrowid
    conn.execute(_NOTIFY, (event_id, ts_ms))
    return event_id
