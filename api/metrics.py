"""Prometheus figures (prometheus-client): request counts and latencies, plus the store's figures.

Requests are counted in every worker process of the server; with
`multiprocess_dir` set (what `kammthaar serve` does, for gunicorn's workers)
prometheus-client keeps them in files there and /metrics adds up every
worker's, whichever worker answers the scrape. The store's figures (collector
freshness, Modbus errors, rows stored, replicator backlog and lag, cloud
reachability) are read when /metrics is asked, from `health_snapshot.snapshot()`.

Every label value comes from a fixed set, whatever a client sends: the HTTP
methods, the app's route templates (`unmatched` for any other path) and the
statuses the API answers (any other as its class, `4xx`); anything else is
`other`. A client inventing methods or paths cannot grow /metrics.
"""

from __future__ import annotations

import time

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import health_snapshot

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = frozenset({200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 408, 411, 413, 415, 429, 431, 500, 503})
OTHER = "other"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PREFIX = "kammthaar"


class Metrics:
    """The request metrics of this process and how to render every figure."""

    def __init__(self, multiprocess_dir: str | None = None):
        self.multiprocess_dir = multiprocess_dir
        self.routes: frozenset[str] = frozenset()  # the app's route templates (create_app sets them)
        self._own = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests answered",
                                ("method", "route", "status"), registry=self._own)
        self.latency = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ("method", "route"), buckets=LATENCY_BUCKETS_S, registry=self._own)

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER
        route = "unmatched" if route is None else route if route in self.routes else OTHER
        status_label = str(status) if status in STATUSES else f"{status // 100}xx" if 100 <= status < 600 else OTHER
        self.requests.labels(method, route, status_label).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, api) -> bytes:
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        else:
            registry = CollectorRegistry()
            registry.register(_Registered(self._own))
        registry.register(StoreCollector(api))
        return generate_latest(registry)


class _Registered:
    """This process's request metrics, when there is no multiprocess directory."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def _gauge(name: str, doc: str, value, labels: dict | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), float(value))
    return family


class StoreCollector:
    """The figures of /health, as Prometheus metrics, read at scrape time."""

    def __init__(self, api):
        self.api = api

    def describe(self):
        return []

    def collect(self):
        snap = health_snapshot.snapshot(self.api)
        store, collector, cloud, rep = snap["store"], snap["collector"], snap["cloud"], snap["replicator"]
        if store["configured"]:
            yield _gauge("store_up", "1 when the SQLite store can be read", 1 if store["reachable"] else 0)
            yield _gauge("store_size_bytes", "Size of the store file and its WAL", store.get("size_bytes"))
            writes = store.get("writes")
            if writes is not None:
                yield _gauge("store_writes_failing", "1 while the collector cannot write the store",
                             1 if writes["failing"] else 0)
                failed = CounterMetricFamily(f"{PREFIX}_store_write_failures",
                                             "Writes the collector could not make since it started")
                failed.add_metric([], writes["failed_writes"])
                yield failed
        if collector.get("newest_ms") is not None:
            yield _gauge("collector_last_sample_timestamp_seconds", "Time of the newest live sample (UTC)",
                         collector["newest_ms"] / 1000)
            yield _gauge("collector_sample_age_seconds", "Age of the newest live sample", collector["age_s"])
        yield _gauge("collector_fresh",
                     "1 when the newest live sample is at most two poll intervals (plus the commit window) old",
                     1 if collector["fresh"] else 0)
        yield from _device_metrics(snap["devices"])
        errors = CounterMetricFamily(f"{PREFIX}_modbus_errors", "Modbus read errors by kind (the counters table)",
                                     labels=["kind"])
        for kind, value in snap["modbus_errors"].items():
            errors.add_metric([kind], value)
        yield errors
        stored = CounterMetricFamily(f"{PREFIX}_samples_stored", "Rows ever stored per sample table "
                                     "(row ids are never reused)", labels=["table"])
        for table, value in sorted(snap["stored"].items()):
            stored.add_metric([table], value)
        yield stored
        if rep is not None:
            yield _gauge("replicator_backlog_rows", "Rows not acknowledged by the cloud yet", rep["backlog_rows"])
            yield _gauge("replicator_lag_seconds", "Age of the oldest sample the cloud does not have (0: none)",
                         rep["lag_s"] or 0)
            if rep["last_success_ms"] is not None:
                yield _gauge("replicator_last_success_timestamp_seconds", "Last acknowledged batch",
                             rep["last_success_ms"] / 1000)
            if rep["last_error_ms"] is not None:
                yield _gauge("replicator_last_error_timestamp_seconds", "Last failed batch",
                             rep["last_error_ms"] / 1000)
            yield _gauge("replicator_blocked", "1 while the cloud refuses the credentials", 1 if rep["blocked"] else 0)
            sent = CounterMetricFamily(f"{PREFIX}_replicator_points_sent", "Points the cloud acknowledged")
            sent.add_metric([], rep["points_sent"])
            yield sent
            dead = CounterMetricFamily(f"{PREFIX}_replicator_dead_letters", "Points the cloud refused")
            dead.add_metric([], rep["dead_letters"])
            yield dead
        rec = snap["reconciliation"]
        if rec is not None:
            if rec["completeness_30d"] is not None:
                yield _gauge("cloud_completeness_ratio", "Cloud completeness over the last 30 days: points the "
                             "cloud held when reconciled / points the Pi sent", rec["completeness_30d"])
            yield _gauge("reconcile_ranges_still_differing", "Ranges (measurement, device, hour) still different "
                         "in the cloud after re-sending them, last 30 days", rec["ranges_still_differing"])
            yield _gauge("reconcile_unsupported", "1 when the cloud cannot answer InfluxQL (reconciliation off)",
                         1 if rec["unsupported"] else 0)
        if snap.get("alerts") is not None:
            active = GaugeMetricFamily(f"{PREFIX}_alerts_active", "Alerts firing now, by rule and severity",
                                       labels=["rule", "severity"])
            for a in snap["alerts"]["by_rule"]:
                active.add_metric([a["rule"], a["severity"]], a["devices"])
            yield active
        if cloud["configured"]:
            yield _gauge("cloud_reachable", "1 when InfluxDB answers (probed, remembered a few seconds)",
                         1 if cloud["reachable"] else 0)
        up = GaugeMetricFamily(f"{PREFIX}_source_up", "1 when a data source can answer", labels=["source"])
        for name in snap["sources"]:
            ok = store["reachable"] if name == "local" else cloud["reachable"]
            up.add_metric([name], 1 if ok else 0)
        yield up


def _device_metrics(devices: list[dict]):
    """Per device: its newest sample's age, whether it is fresh, its read errors by kind."""
    age = GaugeMetricFamily(f"{PREFIX}_device_sample_age_seconds", "Age of a device's newest live sample",
                            labels=["device"])
    fresh = GaugeMetricFamily(f"{PREFIX}_device_fresh", "1 when a device's newest live sample is at most two of "
                              "its poll intervals old", labels=["device"])
    errors = CounterMetricFamily(f"{PREFIX}_device_modbus_errors", "Modbus read errors per device and kind",
                                 labels=["device", "kind"])
    for d in devices:
        if d["age_s"] is not None:
            age.add_metric([d["name"]], d["age_s"])
        fresh.add_metric([d["name"]], 1 if d["fresh"] else 0)
        for kind, value in sorted((d["errors"] or {}).items()):
            errors.add_metric([d["name"], kind], value)
    yield from (age, fresh, errors)


class MetricsMiddleware:
    """Counts and times every request, by method, route template and status."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        self.metrics.observe(req.method, req.uri_template, resp.status_code, time.perf_counter() - started)


CONTENT_TYPE = CONTENT_TYPE_LATEST
