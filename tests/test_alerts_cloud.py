"""Alert events beside the cloud's other paths (issues 13 and 14 merged): the reconciliation still runs with
alert events in the outbox, the heartbeat counts the alerts firing now, and the fleet reads those counts."""

from __future__ import annotations

import re

from api.fleet import ALERTS_MS, Scope, fleet
from edge_store.alerts import Engine, load_alerts
from edge_store.alerts.engine import write_test_event
from edge_store.outbox import Outbox
from edge_store.store import now_ms
from replicator.heartbeat import Heartbeat
from replicator.influxql import InfluxQLReader
from tests.fixtures_fleet import alert_line, heartbeat_lines, line
from tests.fixtures_influx import SITE, replicator_on, v1
from tests.fixtures_reconcile import DAYS, HOUR_MS, START_MS
from tests.samples import device
from tests.support import kammthaar

RULES = {"builtin": {"device_silent": {"threshold": 1, "severity": "critical"}},
         "rules": [{"name": "gone_long", "field": "collector.silent_polls", "above": 3, "clear_at": 0}]}


def fire(store, device: str, n: int, ts_ms: int) -> None:
    store.alerts.observe(store.db, "collector.silent_polls", device, n, ts_ms)


def test_reconcile_runs_with_alert_events_in_the_outbox(replicated, db_path, influxd, influx_db):
    store, env = replicated
    store.alerts = Engine(load_alerts(RULES))
    for k, n in enumerate((2, 5, 0)):  # fires both rules, then resolves them
        fire(store, "rover", n, START_MS + 5 * HOUR_MS + k * 60_000)
    with store.db.writing("test event") as conn:  # a test event has no value: nothing to count in the cloud
        write_test_event(conn, store.alerts.config.rule("gone_long"), "epever", START_MS + 6 * HOUR_MS)
    rep = replicator_on(db_path, v1(influxd, influx_db))
    assert rep.drain().error is None
    rep.close()
    proc = kammthaar("reconcile", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line[:4].isdigit()]
    assert [line.split(":", 1)[0] for line in lines] == list(DAYS)
    assert all(re.search(r"missing 0 \(100\.00 % held\)$", line) for line in lines), lines
    reader = InfluxQLReader(influxd.url, database=influx_db)
    try:
        [series] = reader.query(f'SELECT count("event_id") FROM "alerts" WHERE "site" = \'{SITE}\'')
        assert series["values"][0][1] == 5  # two firings, two resolutions, the test event
    finally:
        reader.close()


def test_the_heartbeat_counts_the_alerts_firing_now(store, db_path):
    outbox = Outbox(db_path)
    try:
        beat = Heartbeat(outbox, None, site=SITE, devices=(device("epever", 1.0),), clock_ms=now_ms, ntp=lambda: True)
        assert " alerts_active=0i,alerts_critical=0i," in beat.lines()[0]
        store.alerts = Engine(load_alerts(RULES))
        fire(store, "epever", 5, 1000)  # device_silent (critical) and gone_long (warning)
        fire(store, "rover", 2, 2000)  # device_silent
        assert " alerts_active=3i,alerts_critical=2i," in beat.lines()[0]
        fire(store, "epever", 0, 3000)
        assert " alerts_active=1i,alerts_critical=1i," in beat.lines()[0]
    finally:
        outbox.close()


def test_the_fleet_counts_an_alert_fired_before_its_window_from_the_heartbeat(influxd):
    now = now_ms()
    database = influxd.create_database()
    lines = [*heartbeat_lines("old-fault", now - 1_000, alerts=(2, 1)), *heartbeat_lines("quiet", now - 1_000),
             line("batteryStatus", {"site": "old-fault", "device": "epever"}, {"voltage": 12.5}, now - 2_000),
             line("batteryStatus", {"site": "quiet", "device": "epever"}, {"voltage": 12.5}, now - 2_000),
             # Fired before the list's 30 days: no event in its window, the heartbeat still counts it.
             alert_line("old-fault", now - ALERTS_MS - 86_400_000, rule="battery_voltage_low", severity="critical",
                        state="firing", event_id=1)]
    status, body = influxd.write_lines(database, "\n".join(lines))
    assert status == 204, body
    reader = InfluxQLReader(influxd.url, database=database)
    try:
        sites = fleet(reader, Scope(None), now_ms=now, stale_after_s=900.0)
    finally:
        reader.close()
    assert [s["site"] for s in sites] == ["old-fault", "quiet"]  # the critical one first
    by = {s["site"]: s for s in sites}
    assert by["old-fault"]["alerts"]["active"] == 2 and by["old-fault"]["alerts"]["critical"] == 1
    assert by["old-fault"]["heartbeat"]["alerts_critical"] == 1
    assert by["quiet"]["alerts"] == {"active": 0, "critical": 0, "firing": []}
    assert by["quiet"]["heartbeat"]["alerts_active"] is None  # a Pi before issue 13: absent
