"""The replicator daemon's reconciliation (on schedule, after a long outage) and heartbeat, and clouds that
cannot answer InfluxQL (victoria-metrics, a write-only user): said once, replication goes on."""

from __future__ import annotations

import os
import time

from edge_store.outbox import Outbox
from edge_store.reconcile_log import ReconcileLog
from replicator import heartbeat
from tests.fixtures_influx import SITE, assert_cloud_equals_store, cli_env, reader_of
from tests.fixtures_reconcile import DAY_STARTS, DAYS, HOUR_MS, delete, fill
from tests.support import kammthaar, wait_until


def state(db_path) -> dict:
    log = ReconcileLog(db_path, readonly=True)
    try:
        return {**log.state(), "days": log.days()}
    finally:
        log.close()


def test_the_daemon_reconciles_on_schedule_repairs_and_beats_its_heartbeat(replicated, db_path, influxd, influx_db,
                                                                           start_kammthaar):
    store, env = replicated
    delete(influxd, influx_db, "loadData", "rover", DAY_STARTS[2] + 5 * HOUR_MS, DAY_STARTS[2] + 7 * HOUR_MS)
    daemon = start_kammthaar("replicate", env={**env, "KAMMTHAAR_CLOUD_HEARTBEAT_S": "1",
                                               "KAMMTHAAR_CLOUD_INTERVAL_S": "0.2"})
    daemon.wait_for(lambda: state(db_path)["last_pass_ms"], 60, "the daemon reconciled nothing")
    reader = reader_of(influxd, influx_db)
    # A heartbeat after the pass carries its completeness: two hours of loadData were missing.
    daemon.wait_for(lambda: [p for p in reader.select("edge_health", ["completeness"]) if (p["completeness"] or 1) < 1],
                    30, "no heartbeat after the pass")
    assert daemon.stop() == 0, daemon.log()[-3000:]
    assert_cloud_equals_store(reader, db_path, SITE)
    repaired = {d["day"]: d["repaired"] for d in state(db_path)["days"]}
    assert repaired == {DAYS[0]: "", DAYS[1]: "", DAYS[2]: f"loadData rover {DAYS[2]} 05:00-06:00\n"
                        f"loadData rover {DAYS[2]} 06:00-07:00", DAYS[3]: ""}
    assert state(db_path)["last_pass_ok"]

    # The heartbeat: a point of the site, one per device (the config's one device), as agreed.
    site_points = [p for p in reader.select("edge_health", tags={"site": SITE}) if p.get("device") is None]
    assert len(site_points) >= 2
    newest = site_points[-1]
    expected = {name for name, _, _ in heartbeat.SITE_FIELDS}
    assert {k for k, v in newest.items() if v is not None} - {"time", "_measurement", "site"} == expected
    assert newest["version"] == heartbeat.software_version() != "unknown"
    assert newest["backlog_rows"] == 0 and newest["oldest_unsent_age_s"] == 0 and newest["dead_letters"] == 0
    assert newest["db_bytes"] > 0
    assert newest["free_bytes"] > 0 and isinstance(newest["ntp_synced"], bool)
    assert 0.99 < newest["completeness"] < 1  # the two hours of loadData were missing
    types = {s["name"]: dict(s["values"]) for s in influxd.query("SHOW FIELD KEYS FROM edge_health",
                                                                   influx_db)["results"][0]["series"]}
    declared = {n: t for n, t, _ in heartbeat.SITE_FIELDS + heartbeat.DEVICE_FIELDS}
    assert types["edge_health"] == declared
    device = reader.select("edge_health", tags={"device": "epever"})[-1]
    assert device["fresh"] is False and device["errors"] == 0 and device["newest_sample_age_s"] > 3600
    assert device["model"] == "epever-tracer"  # its [[devices]] model, as a string field (issue 15)



def test_victoria_metrics_cannot_answer_influxql_said_once_and_replication_and_heartbeat_go_on(
        victoria, open_store, db_path, start_kammthaar):
    site = f"vm-{os.getpid()}-{time.monotonic_ns()}"
    fill(open_store(), hours=3, devices=("epever",))
    env = cli_env(db_path, cloud_url=victoria.url, cloud_api="v2", cloud_token="t", cloud_org="o",
                  cloud_bucket="b", cloud_heartbeat_s="1", cloud_interval_s="0.2",
                  cloud_reconcile_every_h="0.0002")  # a pass due every 0.7 s
    env["KAMMTHAAR_SITE_ID"] = site  # the session's victoria-metrics: this test's own site
    daemon = start_kammthaar("replicate", env=env)
    daemon.wait_for(lambda: Outbox(db_path, readonly=True).summary()["backlog_rows"] == 0, 60, "backlog not sent")
    daemon.wait_for(lambda: victoria.export(f'{{__name__=~"edge_health_.*",site="{site}"}}'), 30, "no heartbeat")
    time.sleep(2)  # passes fall due again meanwhile
    assert daemon.stop() == 0
    log = daemon.log()
    assert log.count("RECONCILIATION OFF: the cloud does not answer InfluxQL") == 1, log[-3000:]
    assert "replication and the heartbeat go on" in log
    assert state(db_path)["unsupported"].startswith("the cloud does not answer InfluxQL")
    status = kammthaar("status", env=env)
    assert "!! RECONCILIATION OFF: the cloud does not answer InfluxQL" in status.stdout
    assert victoria.export(f'{{__name__="batteryStatus_voltage",site="{site}"}}')[0]["values"]
    proc = kammthaar("reconcile", env=env)
    assert proc.returncode == 1
    assert "reconciliation impossible: the cloud does not answer InfluxQL at " in proc.stderr
    assert "replication does not need it and goes on" in proc.stderr


def test_a_write_only_user_gets_a_clear_reconcile_error_exit_1(influxd_auth, open_store, db_path):
    influxd_auth.query("CREATE USER wonly WITH PASSWORD 'wonly-pw'", **influxd_auth.admin)
    influxd_auth.query('GRANT WRITE ON "site" TO wonly', **influxd_auth.admin)
    fill(open_store(), hours=2, devices=("epever",))
    env = cli_env(db_path, cloud_url=influxd_auth.url, cloud_api="v1", cloud_database="site",
                  cloud_username="wonly", cloud_password="wonly-pw")
    env["KAMMTHAAR_SITE_ID"] = f"wo-{os.getpid()}-{time.monotonic_ns()}"
    assert kammthaar("replicate", "--once", env=env).returncode == 0  # writing is allowed
    proc = kammthaar("reconcile", env=env)
    assert proc.returncode == 1
    assert "reconciliation impossible: the cloud does not answer InfluxQL at " in proc.stderr
    assert "HTTP 403" in proc.stderr, proc.stderr
    assert state(db_path)["unsupported"]


def test_after_a_long_outage_the_replicator_reconciles_once_the_backlog_is_sent(own_influxd, open_store, db_path):
    import threading

    from replicator.influx_writer import V1Writer
    from replicator.policy import Policy
    from replicator.reconcile import Reconciler
    from replicator.reconcile_schedule import ReconcileSchedule
    from replicator.replicator import Replicator
    from tests.fixtures_reconcile import START_MS

    store = open_store()
    fill(store, hours=4, devices=("epever",))
    database = own_influxd.create_database()
    writer = V1Writer(own_influxd.url, database=database, timeout_s=1)
    outbox = Outbox(db_path)
    reconciler = Reconciler(outbox, reader_of(own_influxd, database), Policy(writer, max_attempts=1), site=SITE)
    schedule = ReconcileSchedule(reconciler, every_h=0)  # no pass on a schedule: only after outages
    rep = Replicator(outbox, writer, site=SITE, interval_s=0.05, max_backoff_s=0.2, long_outage_s=0.5,
                     policy=Policy(writer, max_attempts=1), reconcile=schedule)
    thread = threading.Thread(target=rep.run)
    thread.start()
    try:
        wait_until(lambda: outbox.summary()["backlog_rows"] == 0, 30, "the backlog was not sent")
        time.sleep(0.5)
        assert state(db_path)["last_pass_ms"] is None  # caught up, but nothing due
        own_influxd.kill()
        fill(store, hours=2, start_ms=START_MS + 4 * HOUR_MS, devices=("epever",))  # a backlog meanwhile
        wait_until(lambda: rep.failures_in_a_row >= 3, 30, "the replicator did not notice the outage")
        time.sleep(0.6)  # longer than long_outage_s
        own_influxd.start()
        wait_until(lambda: state(db_path)["last_pass_ms"], 60, "no reconciliation after the outage")
        assert outbox.summary()["backlog_rows"] == 0  # sent first
        assert {d["day"] for d in state(db_path)["days"]} == {DAYS[0]}
    finally:
        rep.stop()
        thread.join(30)
        rep.close()
