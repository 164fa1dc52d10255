"""Where answers come from: switching between the store and influxd as either goes away, the retention
window, the unreachable cloud remembered, and injection through `site` into InfluxQL."""

from __future__ import annotations

import sqlite3
import time
import urllib.parse

import pytest
from influxdb_client import Point, WritePrecision

from api.sources import REMEMBER_S
from edge_store.store import Store
from tests.fixtures_api import SITE, snapshot_copy
from tests.fault_proxy import FaultProxy
from tests.fixtures_influx import Influxd
from tests.support import clean_env, kammthaar

DATA_PATHS = ("/battery/last", "/battery/last/24h/voltage", "/solarData/last/24h/power", "/statistics/daily",
              "/statistics/energy/7days", "/controller/last")


def wait_for(predicate, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout_s}s")
        time.sleep(0.1)


class Switch:
    """A static copy of the edge store, its own influxd holding the same data, and two APIs on both:
    local first, and cloud first (through a proxy that counts what reaches influxd)."""

    def __init__(self, directory, edge, api_servers):
        self.dir = directory
        self.db = snapshot_copy(edge.db, directory / "copy.db")
        with sqlite3.connect(self.db) as conn:  # the copy goes to a new influxd: all of it
            conn.execute("DELETE FROM replication_watermarks")
        self.moved = directory / "moved-away.db"
        self.influxd = Influxd(directory / "influxd").start()
        self.database = self.influxd.create_database()
        done = kammthaar("replicate", "--once", env=clean_env(
            store_path=self.db, site_id=SITE, site_timezone="Europe/Paris", cloud_url=self.influxd.url,
            cloud_api="v1", cloud_database=self.database))
        assert done.returncode == 0, done.stderr[-2000:]
        self.proxy = FaultProxy(self.influxd.url)
        common = dict(store_path=self.db, cloud_api="v1", cloud_database=self.database, cloud_timeout_s=2)
        self.local_first = api_servers(directory, "local-first", api_sources="local,cloud",
                                       cloud_url=self.influxd.url, **common)
        self.cloud_first = api_servers(directory, "cloud-first", api_sources="cloud,local",
                                       cloud_url=self.proxy.url, **common)
        self.tokens = {s: s.client().login() for s in (self.local_first, self.cloud_first)}

    def get(self, server, path):
        resp = server.client().get(path, token=self.tokens[server])
        assert resp.status != 500 and resp.body and resp.headers["content-type"].startswith("application/json")
        return resp

    def sources(self, server) -> set:
        """The X-Data-Source of every data path (the status instead, for an answer other than 200)."""
        out = set()
        for path in DATA_PATHS:
            resp = self.get(server, path)
            out.add(resp.source if resp.status == 200 else resp.status)
        return out

    def close(self):
        self.proxy.close()
        self.influxd.stop()


@pytest.fixture(scope="module")
def switch(tmp_path_factory, edge, api_servers):
    s = Switch(tmp_path_factory.mktemp("switch"), edge, api_servers)
    yield s
    s.close()


def test_answers_move_between_sources_and_say_which(switch):
    lf, cf = switch.local_first, switch.cloud_first
    # Both up: each server answers from its first source, and the two agree.
    assert switch.sources(lf) == {"local"} and switch.sources(cf) == {"cloud"}
    for path in ("/battery/last", "/controller/last", "/statistics/daily", "/statistics/energy/7days",
                 "/battery/last/24h/voltage"):
        assert switch.get(lf, path).json() == switch.get(cf, path).json(), path

    # influxd stopped: the cloud-first server moves to the store.
    switch.influxd.kill()
    assert wait_for(lambda: switch.sources(cf) == {"local"}, "cloud-first did not fall back to the store")
    assert switch.sources(lf) == {"local"}

    # ... then the store made unreadable: nothing can answer: 503 with Retry-After, in JSON, never a 500.
    switch.db.rename(switch.moved)
    for server in (lf, cf):
        for path in DATA_PATHS + ("/battery/realtime",):
            resp = switch.get(server, path)
            assert resp.status == 503 and int(resp.headers["retry-after"]) > 0, (path, resp.status)
            body = resp.json()
            assert set(body) == {"error", "message"} and body["error"] == "unavailable"
            assert "local" in body["message"] and "cloud" in body["message"]
        status = server.client().get("/serveur/status")
        assert status.status == 200 and status.json()["status"] is False
        health = server.client().get("/health")
        assert health.status == 503 and health.json()["status"] == "down"

    # influxd back (same port, same data): both move to the cloud once the verdict expires.
    switch.influxd.start()
    for server in (lf, cf):
        assert wait_for(lambda: switch.sources(server) == {"cloud"}, "no move to the cloud",
                        timeout_s=REMEMBER_S * 4)

    # The store back: the local-first server returns to it, the cloud-first one stays on the cloud.
    switch.moved.rename(switch.db)
    assert wait_for(lambda: switch.sources(lf) == {"local"}, "no move back to the store")
    assert switch.sources(cf) == {"cloud"}


def test_realtime_of_a_store_nobody_fills_is_503_and_last_still_answers(switch):
    lf = switch.local_first
    resp = switch.get(lf, "/battery/realtime")
    assert resp.status == 503 and resp.headers["retry-after"] == "1"
    assert "use /last" in resp.json()["message"]
    assert switch.get(lf, "/battery/last").status == 200
    status = lf.client().get("/serveur/status").json()
    assert status["status"] is False and "no live data" in status["message"]


def test_an_unreachable_cloud_is_probed_once_per_few_seconds_not_per_request(switch):
    cf = switch.cloud_first
    wait_for(lambda: switch.sources(cf) == {"cloud"}, "the cloud is not answering to begin with")
    switch.influxd.freeze()  # connections accepted, nothing answers: the probe's short timeout
    try:
        before = len(switch.proxy.seen)
        started = time.monotonic()
        answered = [switch.get(cf, "/battery/last") for _ in range(30)]
        elapsed = time.monotonic() - started
        assert all(r.status == 200 for r in answered[-20:])
        assert {r.source for r in answered[-20:]} == {"local"}
        asked = [s.path.split("?")[0] for s in switch.proxy.seen[before:]]
        # Each of the 2 workers asks influxd at most once per remembered verdict (plus the request in flight).
        assert len(asked) <= 2 * (2 + elapsed / REMEMBER_S), asked
    finally:
        switch.influxd.thaw()


def test_a_window_older_than_the_stores_retention_goes_to_the_cloud(tmp_path, edge, api_servers):
    db = snapshot_copy(edge.db, tmp_path / "pruned.db")
    server = api_servers(tmp_path, "retention", store_path=db, api_sources="local,cloud",
                         cloud_url=edge.influxd.url, cloud_api="v1", cloud_database=edge.database)
    c = server.client()
    token = c.login()
    assert c.get("/battery/last/24h/voltage", token=token).source == "local"
    with Store(db) as store:  # what the collector's retention does, with a short retention
        store.prune(before_ms=int(time.time() * 1000) - 3_600_000)
    series = c.get("/battery/last/24h/voltage", token=token)
    assert series.status == 200 and series.source == "cloud" and series.json()
    raw = c.get("/battery/last/24h/voltage?raw=true", token=token)
    assert raw.source == "cloud"
    # Objects and statistics are still the store's: the newest record and the rollups are kept.
    for path in ("/battery/last", "/statistics/daily", "/statistics/energy/7days"):
        assert c.get(path, token=token).source == "local", path


# -- injection ---------------------------------------------------------------------------------------

OTHER_SITE = "other-site"
ODD_SITE = "o'brien \"q\" \\x; DROP"
INJECTIONS = [
    f"{OTHER_SITE}' OR site='{SITE}",
    f"{SITE}' OR '1'='1",
    "x'; DROP DATABASE \"db\"; --",
    "x\\' OR site=~/.*/ --",
    "' OR ''='",
    "/.*/",
    f"{OTHER_SITE}\\",
    f"{OTHER_SITE}' GROUP BY * --",
    "\\\"site\\\" =~ /.*/",
    f"{OTHER_SITE}'",
]


@pytest.fixture(scope="module")
def injection(edge, cloud_api):
    """Two more sites in the cloud database, with values no other site has."""
    now_ms = int(time.time() * 1000)
    lines = []
    for site, volts in ((OTHER_SITE, 99.99), (ODD_SITE, 77.77)):
        for k in range(3):
            point = Point("batteryStatus").tag("device", "epever").tag("site", site).time(now_ms - k * 1000,
                                                                                          WritePrecision.MS)
            for name, value in (("voltage", volts), ("current", 1.0), ("power", 2.0), ("state_of_charge", 50.0),
                                ("temperature", 20.0), ("wrong_identifaction_for_rated_voltage", False),
                                ("battery_inner_resistence_abnormal", False),
                                ("temperature_warning_status", "NORMAL"), ("battery_status", "NORMAL")):
                point.field(name, value)
            lines.append(point.to_line_protocol())
    status, body = edge.influxd.write_lines(edge.database, "\n".join(lines))
    assert status == 204, body
    c = cloud_api.client()
    c.token = c.login()
    return c


def q(site: str) -> str:
    return urllib.parse.quote(site, safe="")


def test_another_site_is_answered_only_when_asked_by_its_exact_name(injection):
    c = injection
    assert c.get(f"/battery/last?site={OTHER_SITE}", token=c.token).json()["voltage"] == 99.99
    # Quotes, backslash and a semicolon in a site name: escaped, so that site (and only it) is found.
    odd = c.get(f"/battery/last?site={q(ODD_SITE)}", token=c.token)
    assert odd.status == 200 and odd.json()["voltage"] == 77.77
    assert {p["value"] for p in c.get(f"/battery/last/24h/voltage?every=1m&site={q(ODD_SITE)}",
                                      token=c.token).json()} == {77.77}


@pytest.mark.parametrize("site", INJECTIONS)
def test_site_crafted_to_break_out_of_influxql_gets_nothing(injection, edge, site):
    c = injection
    ours = c.get("/battery/last", token=c.token).json()["voltage"]
    for path in ("/battery/last", "/battery/last/24h/voltage", "/battery/last/24h/voltage?raw=true",
                 "/statistics/daily", "/statistics/energy/7days", "/charging/realtime"):
        sep = "&" if "?" in path else "?"
        resp = c.get(f"{path}{sep}site={q(site)}", token=c.token)
        assert resp.status in (200, 400, 404), (path, resp.status, resp.body[:300])
        text = resp.body.decode()
        assert "99.99" not in text and "77.77" not in text, (path, text[:300])
        if resp.status == 200:
            body = resp.json()
            assert body in ([], {}) or all(v == {"consumed_today": None, "generated_today": None}
                                           for v in body.values()), (path, body)
        else:
            assert resp.json()["error"] in ("bad_request", "not_found")
            assert str(ours) not in text
    # Nothing was dropped or changed on the way.
    assert edge.influxd.query(f"SELECT count(voltage) FROM batteryStatus WHERE site = '{OTHER_SITE}'",
                              db=edge.database)["results"][0]["series"][0]["values"][0][1] == 3


@pytest.mark.parametrize("site", ["van\ntest", "van\x00", "x" * 129, ""])
def test_site_with_control_characters_or_too_long_is_400(injection, site):
    resp = injection.get(f"/battery/last?site={q(site)}", token=injection.token)
    assert resp.status == 400 and "site" in resp.json()["message"]
