"""Reconciliation: the Pi checks that the cloud holds what it was sent, and repairs it.

For each UTC day the Pi still holds, one InfluxQL request asks, per measurement,
the points (`count()` of the first field each stream writes to it: never null) and
`sum()` of every numeric field, per device and UTC hour (`GROUP BY time(1h),
device`: one statement per measurement for the whole day, never one per hour); the
same figures come from the local rows in SQL (one range scan per stream). An hour whose
count or sum differs (missing points, or a value overwritten: the sum is the
checksum, compared to 1e-9 relative) is re-sent from the local rows through the
same renderer and delivery policy (same points, same timestamps: idempotent), and
the day is asked again. Daily and monthly statistics are compared value by value,
each with the UTC day of its date (a month: its first day).

Only hours the Pi holds whole and the cloud acknowledged are checked: from the
first whole hour held (rows deleted before it may have taken part of it) to the
hour of the first row above the stream's watermark or the open hour, whichever
comes first. What each day showed is kept (edge_store/reconcile_log.py).

A cloud that cannot answer InfluxQL (a 4xx to /query: a write-only token; answers
that are not results of the statements asked: VictoriaMetrics answers every /query
with a list of databases) raises `Unsupported`. Flags and strings other than a
measurement's first field are counted with it but not checksummed: a changed flag
alone is not seen.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping

from edge_store.catalogue.fields import as_float
from edge_store.outbox import STREAMS, Outbox
from edge_store.reconcile_log import DayFinding, ReconcileLog, utc_day
from edge_store.store import now_ms

from .influxql import InfluxQLReader, NotAnAnswer, QueryError, ident, literal
from .points import DEFAULT_MODEL, FLOAT, MEASUREMENTS, MODEL_MEASUREMENTS, Renderer
from .points import SAMPLE_STREAMS as CATALOGUE_STREAMS
from .policy import Policy

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
REL_TOL = 1e-9
ABS_TOL = 1e-6
REPAIR_ROUNDS = 3
ZONE_SLACK_MS = 14 * 3_600_000
PERIOD = {"rollup_daily": "day", "rollup_monthly": "month"}
# The catalogue's samples, checked per hour, and the statistics, checked value by value. The outbox's other
# streams (alert_events, issue 13) are replicated by the watermarks but not reconciled: a few rows, and a
# test event has no value to count.
SAMPLE_STREAMS = tuple(s for s in STREAMS if s.samples and s.name in CATALOGUE_STREAMS)
STAT_STREAMS = tuple(s for s in STREAMS if not s.samples)


class Unsupported(QueryError):
    """The cloud does not answer InfluxQL queries: reconciliation cannot run there."""


@dataclass(frozen=True)
class Checked:
    """A field compared per hour: its measurement, its name, the column it comes from, and whether its
    points are counted (the first field of each measurement a stream writes: its columns are never null,
    so its count is the measurement's points) and its values summed (numbers: the column as a float)."""

    measurement: str
    field: str
    column: str
    counted: bool
    summed: bool


def _checked_fields(measurements: Mapping[str, tuple]) -> dict[str, tuple[Checked, ...]]:
    """Per sample stream, the fields of one model counted or summed (strings and flags but the first: neither)."""
    out = {}
    for stream in SAMPLE_STREAMS:
        checks = []
        for m in measurements.get(stream.name, ()):
            for k, (name, i, convert) in enumerate(m.specs):
                summed = m.types[name] == FLOAT and convert is as_float
                if k == 0 or summed:
                    checks.append(Checked(m.name, name, m.inputs[i], k == 0, summed))
        out[stream.name] = tuple(checks)
    return out


# A device is checked against its model's fields (a field its model lacks is never written).
CHECKED_BY_MODEL = {model: _checked_fields(tables) for model, tables in MODEL_MEASUREMENTS.items()}


def _asked() -> dict[str, tuple[Checked, ...]]:
    """Per measurement, the fields the cloud is asked for over every model: each once, counted (summed)
    when any model counts (sums) it."""
    out: dict[str, dict[str, Checked]] = {}
    for by_stream in CHECKED_BY_MODEL.values():
        for checks in by_stream.values():
            for c in checks:
                known = out.setdefault(c.measurement, {})
                k = known.setdefault(c.field, c)
                known[c.field] = replace(k, counted=k.counted or c.counted, summed=k.summed or c.summed)
    return {name: tuple(fields.values()) for name, fields in out.items()}


ASKED = _asked()


def floor_hour(ms: int) -> int:
    return ms // HOUR_MS * HOUR_MS


def day_start(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)


day_of = utc_day  # the UTC day of a time, as the findings are kept


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%H:%M")


def same(a, b) -> bool:
    """Two values of a field: strings and booleans equal, numbers to 1e-9 relative."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


@dataclass
class Difference:
    """Something to re-send: (stream, device, start, end) and how it reads in the summary."""

    stream: str
    device: str
    start_ms: int
    end_ms: int
    label: str


class Reconciler:
    """Checks and repairs one UTC day at a time (`check_day`); `days()` says which days are held."""

    def __init__(self, outbox: Outbox, reader: InfluxQLReader, policy: Policy, *, site: str,
                 log_: ReconcileLog | None = None, batch_size: int = 5000, max_backlog_age_days: int = 0,
                 clock_ms: Callable[[], int] = now_ms, pause_factor: float = 0.0, pause_always: bool = False,
                 sleep: Callable[[float], object] = time.sleep, models: Mapping[str, str] | None = None):
        self.outbox = outbox
        self.reader = reader
        self.policy = policy
        self.site = site
        self.models = dict(models or {})  # device -> model; a device not named is the default model
        self.renderer = Renderer(site, models=self.models)
        self.log = log_ or ReconcileLog(outbox.db)
        self.batch_size = batch_size
        self.max_backlog_age_days = max_backlog_age_days
        self._clock_ms = clock_ms
        # After each day, while the store has rows to send (or always), a pause of pause_factor x the
        # day's time: a pass beside a replicator draining a backlog leaves it (and the server) most of
        # the CPU (bench/reconcile.py).
        self.pause_factor = pause_factor
        self.pause_always = pause_always
        self._sleep = sleep
        self.statements = 0  # InfluxQL statements asked, and the requests carrying them
        self.requests = 0

    # -- which hours ------------------------------------------------------------------

    def bounds(self) -> dict[str, tuple[int, int]]:
        """Per sample stream, [first whole hour held, first hour not to check) (empty when start >= end)."""
        now = self._clock_ms()
        out = {}
        for stream in SAMPLE_STREAMS:
            oldest, newest, deleted_before, first_unsent = self.outbox.held(stream)
            if oldest is None:
                continue
            start = floor_hour(oldest) + (HOUR_MS if deleted_before and oldest % HOUR_MS else 0)
            if self.max_backlog_age_days:  # older rows were skipped, never sent
                start = max(start, floor_hour(now - self.max_backlog_age_days * DAY_MS) + HOUR_MS)
            end = min(floor_hour(now), floor_hour(newest) + HOUR_MS)
            if first_unsent is not None:
                end = min(end, floor_hour(first_unsent))
            out[stream.name] = (start, end)
        return out

    def days(self, first: str | None = None, last: str | None = None) -> list[str]:
        """The UTC days with hours to check (held samples), within [first, last]; every day of [first, last]
        when both are given (the daily and monthly statistics are kept longer than the samples)."""
        spans = [b for b in self.bounds().values() if b[0] < b[1]]
        if not spans and (first is None or last is None):
            return []
        if first is not None and last is not None:  # asked for: statistics may be older than the samples
            spans = []
        lo = day_of(min(s for s, _ in spans)) if spans else first
        hi = day_of(max(e for _, e in spans) - 1) if spans else last
        lo, hi = max(lo, first or lo), min(hi, last or hi)
        out, day = [], lo
        while day <= hi:
            out.append(day)
            day = day_of(day_start(day) + DAY_MS)
        return out

    # -- one day ----------------------------------------------------------------------

    def _cloud(self, start: int, end: int) -> tuple[dict, dict]:
        """What the cloud holds for the day: per (measurement, field, device, hour) (count, sum), and the
        statistics points per (measurement, device, time) -> fields. One request."""
        site, window = literal(self.site), f"time >= {start}ms AND time < {end}ms"
        statements, names = [], []
        for name, checks in ASKED.items():
            what = []
            for i, c in enumerate(checks):
                if c.counted:
                    what.append(f"count({ident(c.field)}) AS {ident(f'c{i}')}")
                if c.summed:
                    what.append(f"sum({ident(c.field)}) AS {ident(f's{i}')}")
            statements.append(f"SELECT {', '.join(what)} FROM {ident(name)} WHERE \"site\" = {site} AND {window} "
                              "GROUP BY time(1h), \"device\" fill(none)")
            names.append(name)
        stat_names = [m.name for s in STAT_STREAMS for m in MEASUREMENTS[s.name]]
        # A local period's start is within 14 h of its UTC day's (UTC-12 to UTC+14).
        wide = f"time >= {start - ZONE_SLACK_MS}ms AND time < {end + ZONE_SLACK_MS}ms"
        for name in stat_names:
            statements.append(f"SELECT * FROM {ident(name)} WHERE \"site\" = {site} AND {wide} GROUP BY \"device\"")
        answers = self._ask(statements, names + stat_names)
        hourly: dict[tuple, tuple] = {}
        for name, series_list in zip(names, answers):
            checks = ASKED[name]
            for series in series_list:
                device = (series.get("tags") or {}).get("device", "")
                cols = series["columns"]
                for values in series.get("values", []):
                    row = dict(zip(cols, values))
                    for i, c in enumerate(checks):
                        hourly[(name, c.field, device, row["time"])] = (row.get(f"c{i}"), row.get(f"s{i}"))
        stats: dict[tuple, dict] = {}
        for name, series_list in zip(stat_names, answers[len(names):]):
            for series in series_list:
                device = (series.get("tags") or {}).get("device", "")
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values))
                    ts = row.pop("time")
                    stats[(name, device, ts)] = {k: v for k, v in row.items() if v is not None and k != "site"}
        return hourly, stats

    def _ask(self, statements: list[str], measurements: list[str]) -> list[list[dict]]:
        """The series of each statement, each from the measurement it asked for."""
        self.statements += len(statements)
        self.requests += 1
        try:
            answers = self.reader.query_each(statements)
            for name, series_list in zip(measurements, answers):
                if any(series.get("name") != name for series in series_list):
                    raise NotAnAnswer(f"asked for {name}, got {series_list[0].get('name')}")
            return answers
        except NotAnAnswer as exc:
            raise Unsupported(f"the cloud does not answer InfluxQL at {self.reader.url}/query: its answers are not "
                              f"results of the statements asked ({exc}; a server without a query API such as "
                              "VictoriaMetrics)") from exc
        except QueryError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                raise Unsupported(f"the cloud does not answer InfluxQL at {self.reader.url}/query ({exc})",
                                  status=exc.status) from exc
            raise

    def compare(self, day: str) -> tuple[DayFinding, list[Difference]]:
        """What the cloud holds of `day` against the local rows: the finding and the ranges that differ.

        The hours held are read again each time: the collector prunes and the replicator drains meanwhile."""
        bounds = self.bounds()
        start = day_start(day)
        end = start + DAY_MS
        hourly, stats = self._cloud(start, end)
        finding, diffs = DayFinding(day), []
        for stream in SAMPLE_STREAMS:
            lo, hi = bounds.get(stream.name, (0, 0))
            lo, hi = max(lo, start), min(hi, end)
            if lo >= hi:
                continue
            every = [c for by_stream in CHECKED_BY_MODEL.values() for c in by_stream.get(stream.name, ())]
            summed = tuple(dict.fromkeys(c.column for c in every if c.summed))
            local = self.outbox.hourly(stream, summed, lo, hi)
            measurements = {c.measurement for c in every}
            cloud_keys = {(d, h) for (m, f, d, h) in hourly if lo <= h < hi and m in measurements}
            for device, hour in sorted(set(local) | cloud_keys):
                figures = local.get((device, hour), (0,) + (0.0,) * len(summed))
                n = figures[0]
                bad: set[str] = set()
                for c in CHECKED_BY_MODEL[self.models.get(device, DEFAULT_MODEL)].get(stream.name, ()):
                    got_n, got_sum = hourly.get((c.measurement, c.field, device, hour), (None, None))
                    if c.counted:
                        finding.points_local += n
                        finding.points_cloud += min(n, got_n or 0)
                        if (got_n or 0) != n:
                            bad.add(c.measurement)
                    if c.summed and n and not same(figures[1 + summed.index(c.column)], got_sum or 0.0):
                        bad.add(c.measurement)
                if bad:
                    diffs.append(Difference(stream.name, device, hour, hour + HOUR_MS,
                                            f"{','.join(sorted(bad))} {device} {day} {_hhmm(hour)}-"
                                            f"{_hhmm(hour + HOUR_MS) if hour + HOUR_MS < end else '24:00'}"))
        for stream in STAT_STREAMS:
            column = PERIOD[stream.name]
            for row in self.outbox.settled_statistics(stream, start - ZONE_SLACK_MS, end + ZONE_SLACK_MS):
                # A statistics row is checked with the UTC day of its date (a month: its first day).
                if row[column] != day[:len(row[column])] or (column == "month" and not day.endswith("-01")):
                    continue
                for m in MEASUREMENTS[stream.name]:
                    want = {k: v for k, v in m.fields(*m.args(row)).items()
                            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
                    got = stats.get((m.name, row["device"], row["start_ms"]))
                    finding.points_local += 1
                    finding.points_cloud += got is not None
                    if got is None or set(got) != set(want) or not all(same(want[k], got[k]) for k in want):
                        period = want.get("date") or want.get("month")
                        diffs.append(Difference(stream.name, row["device"], row["start_ms"], row["start_ms"] + 1,
                                                f"{m.name} {row['device']} {period}"))
        return finding, diffs

    def repair(self, diffs: Iterable[Difference]) -> int:
        """Re-send the local rows of each range, in batches of about `batch_size` lines; the points sent."""
        sent = 0
        lines: list[str] = []
        for d in diffs:
            stream = next(s for s in STREAMS if s.name == d.stream)
            if stream.samples:
                rows = self.outbox.rows_between(stream, d.device, d.start_ms, d.end_ms)
            else:
                rows = [r for r in self.outbox.settled_statistics(stream, d.start_ms, d.end_ms)
                        if r["device"] == d.device]
            log.debug("repairing %s: %d rows", d.label, len(rows))
            for row in rows:
                lines.extend(self.renderer.lines(d.stream, row))
                if len(lines) >= self.batch_size:
                    sent += self._send(lines)
                    lines = []
        if lines:
            sent += self._send(lines)
        return sent

    def _send(self, lines: list[str]) -> int:
        delivery = self.policy.deliver(lines)
        if delivery.dead:
            log.warning("repair: %d point(s) refused by the server (first: %s)", len(delivery.dead),
                        delivery.dead[0].message)
        return delivery.lines

    def check_day(self, day: str) -> DayFinding:
        """Check one day, re-send what differs and check again (up to REPAIR_ROUNDS times: a server may
        lose a write it acknowledged, the very thing checked); keep and return the finding."""
        started = time.monotonic()
        finding, diffs = self.compare(day)
        finding.repaired = list(dict.fromkeys(d.label for d in diffs))  # a measurement fed by two streams: once
        finding.hours_differing = len(finding.repaired)
        still = diffs
        for _ in range(REPAIR_ROUNDS if diffs else 0):
            self.repair(still)
            still = self.compare(day)[1]
            if not still:
                break
        left = list(dict.fromkeys(d.label for d in still))
        finding.hours_still_differing = len(left)
        finding.hours_repaired = finding.hours_differing - len(left)
        for label in left:
            log.warning("reconciliation: %s still differs after re-sending it", label)
        self.log.record_day(finding, self._clock_ms())
        if self.pause_factor and (self.pause_always or self._backlog()):
            self._sleep(self.pause_factor * (time.monotonic() - started))
        return finding

    def _backlog(self) -> bool:
        return any(head > mark for mark, head in self.outbox.pending().values())

    def run_pass(self) -> list[DayFinding]:
        """Every day held; records the pass; raises QueryError/Unsupported/WriteError."""
        out = [self.check_day(day) for day in self.days()]
        self.log.record_pass(all(f.hours_still_differing == 0 for f in out), self._clock_ms())
        return out

