"""What reconciliation keeps: migration 0012 up, down and up with findings in it, the view, and the
figures /health and /metrics answer after a repair (in-process, through the real app)."""

from __future__ import annotations

import sqlite3

from api.app import Settings, create_app
from api.sources import LocalSource, Sources
from api.users import Users
from edge_store import migrate
from edge_store.reconcile_log import DayFinding, ReconcileLog, utc_day
from edge_store.store import now_ms
from tests.fixtures_api import SECRET, add_user
from tests.fixtures_app import AppClient
from tests.fixtures_influx import SITE


def test_migration_0012_goes_down_and_up_and_its_view_reads_the_findings(db_path):
    log = ReconcileLog(db_path)
    log.record_day(DayFinding("2026-11-30", points_local=1000, points_cloud=900, hours_differing=2,
                              hours_repaired=2, repaired=["a epever 2026-11-30 10:00-11:00", "b"]))
    log.close()
    conn = sqlite3.connect(db_path)
    row = conn.execute("SELECT day, points_missing, completeness_pct, hours_repaired, repaired "
                       "FROM v_reconciliation").fetchone()
    conn.close()
    assert row == ("2026-11-30", 100, 90.0, 2, "a epever 2026-11-30 10:00-11:00\nb")
    migrate.downgrade(db_path, "0007")
    conn = sqlite3.connect(db_path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert not names & {"reconcile_days", "reconcile_state", "v_reconciliation"}
    migrate.upgrade(db_path)
    assert migrate.current(db_path) == migrate.HEAD
    assert ReconcileLog(db_path, readonly=True).days() == []


def test_health_and_metrics_report_the_clouds_completeness_over_30_days(db_path):
    now = now_ms()
    log = ReconcileLog(db_path)
    assert log.summary(now)["completeness"] is None  # before the first check
    log.record_day(DayFinding(utc_day(now - 86_400_000), points_local=3000, points_cloud=2970, hours_differing=1,
                              hours_repaired=1, repaired=["batteryStatus epever"]))
    log.record_day(DayFinding(utc_day(now - 40 * 86_400_000), points_local=1000, points_cloud=0))  # too old
    log.record_pass(True, now)
    log.close()
    add_user(db_path)
    users = Users(db_path)
    users.connect()
    settings = Settings(site=SITE, device="epever", timezone="UTC", jwt_secret=SECRET, interval_s=5,
                        slow_interval_s=60, store_path=str(db_path))
    app = create_app(settings, Sources([LocalSource(str(db_path), site=SITE, device="epever")]), users)
    client = AppClient(app)
    body = client.get("/health").json()
    assert body["reconciliation"] == {
        "completeness_30d": 0.99, "days_checked": 1, "points_missing": 30, "ranges_repaired": 1,
        "ranges_still_differing": 0, "last_pass": body["reconciliation"]["last_pass"], "last_pass_ok": True,
        "unsupported": None}
    assert body["reconciliation"]["last_pass"].startswith(utc_day(now)[:4])
    metrics = client.get("/metrics", token=client.login()).body.decode()
    users.close()
    assert "kammthaar_cloud_completeness_ratio 0.99" in metrics, metrics[:500]
    assert "kammthaar_reconcile_unsupported 0.0" in metrics


def test_the_heartbeat_calls_a_device_fresh_while_its_samples_wait_in_the_commit_window(store, db_path):
    """[store] commit_window_s: a sample reaches the store up to a window after its read (the API's rule)."""
    from edge_store.outbox import Outbox
    from replicator.heartbeat import Heartbeat
    from tests.samples import device, live

    now = now_ms()
    store.insert_sample("live", now - 20_000, True, "epever", live(0))
    outbox = Outbox(db_path)
    try:
        for window_s, fresh in ((0.0, "false"), (30.0, "true")):
            beat = Heartbeat(outbox, None, site=SITE, devices=(device("epever", 1.0),), clock_ms=lambda: now,
                             ntp=lambda: True, commit_window_s=window_s)
            (device_line,) = [line for line in beat.lines() if ",device=epever" in line]
            assert f"fresh={fresh}" in device_line, device_line
    finally:
        outbox.close()
