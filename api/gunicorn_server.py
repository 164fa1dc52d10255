"""`kammthaar serve`: the app under gunicorn, a production WSGI server, with worker processes.

`build(cfg)` turns the validated config (`cfg.require_serve()` passed) into
the factory's arguments (the sources in `[api] sources` order, the users in
`[api] state_url`, default the store's file); `serve(cfg)` runs gunicorn programmatically: `[api]
workers` processes of `THREADS` threads each (gthread: keep-alive), each
request read within `[api] read_timeout_s` (api/gunicorn_worker.py: a slow
client is disconnected instead of holding a thread).
Each worker builds its own app after the fork, so no SQLite connection or
HTTP pool crosses a fork. Request metrics are shared between workers through
prometheus-client's multiprocess directory, wiped at start and when a
worker exits.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import shutil
import tempfile

from edge_store.errors import StoreError

log = logging.getLogger("kammthaar.api")

THREADS = 4
QUERY_TIMEOUT_S = 5.0  # a dashboard request waits at most this for InfluxDB ([cloud] timeout_s if shorter)
GRACEFUL_TIMEOUT_S = 10
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client itself


def build_sources(cfg):
    """The data sources the config describes, in order (cloud only when [cloud] url is set)."""
    from replicator.influxql import reader_for

    from .sources import CloudSource, LocalSource, Sources

    out = []
    models = cfg.device_models
    for name in cfg.api.sources:
        if name == "local":
            out.append(LocalSource(cfg.store.path, site=cfg.site.id, device=cfg.default_device, models=models))
        elif name == "cloud" and cfg.cloud.url:
            def make(c=cfg.cloud):
                return reader_for(c, min(c.timeout_s, QUERY_TIMEOUT_S))

            out.append(CloudSource(make, device=cfg.default_device, timezone_name=cfg.site.timezone, models=models))
    return Sources(out)


def build(cfg, *, metrics_dir: str | None = None):
    """The WSGI app for `cfg` (the state database holds the users; it must be migrated)."""
    from .app import Settings, create_app
    from .commands import state_target
    from .users import Users

    users = Users(state_target(cfg))
    try:
        users.connect()
    except StoreError as exc:  # answered 503 per request until the file can be read
        log.error("%s", exc)
    app = create_app(Settings.from_config(cfg, metrics_dir=metrics_dir), build_sources(cfg), users)
    # What exists now (modules, the app) lives as long as the worker: frozen out of the collector's full
    # passes, which a large answer (/sites of 1,000 sites: ~20,000 objects) would otherwise make walk it all
    # again, about half of that request's CPU (bench/sites.py).
    gc.freeze()
    return app


def serve(cfg, *, on_ready=None) -> None:
    """Run gunicorn until SIGTERM/SIGINT (graceful: requests in hand finish)."""
    from gunicorn.app.base import BaseApplication

    from .gunicorn_worker import DeadlineWorker

    metrics_dir = tempfile.mkdtemp(prefix="kammthaar-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # before any worker imports prometheus-client
    DeadlineWorker.read_timeout_s = cfg.api.read_timeout_s  # the workers fork from here: they inherit it

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, metrics_dir)

    def when_ready(server):
        log.info("serving the API on http://%s with %d workers x %d threads", cfg.api.listen, cfg.api.workers,
                 THREADS)
        if on_ready is not None:
            on_ready()

    class Application(BaseApplication):
        def load_config(self):
            settings = {
                "bind": str(cfg.api.listen), "workers": cfg.api.workers,
                "worker_class": "api.gunicorn_worker.DeadlineWorker",
                # gunicorn's own X-Forwarded-Proto trust (wsgi.url_scheme): [api] trusted_proxies, not its
                # default of every local client.
                "forwarded_allow_ips": ",".join(str(ipaddress.ip_network(p, strict=False))
                                                for p in cfg.api.trusted_proxies),
                "threads": THREADS, "graceful_timeout": GRACEFUL_TIMEOUT_S, "keepalive": 5,
                "child_exit": child_exit, "when_ready": when_ready, "accesslog": None,
                "errorlog": "-", "loglevel": logging.getLevelName(logging.getLogger().level).lower(),
                "proc_name": "kammthaar-serve", "preload_app": False,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return build(cfg, metrics_dir=metrics_dir)

    try:
        Application().run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
