"""The replicator against real servers: InfluxDB 1.x (influxd) on the v1 path, victoria-metrics on v2."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from edge_store import config
from edge_store.outbox import BY_NAME, STREAMS, Outbox
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS
from edge_store.rollups import RollupSettings
from edge_store.alerts import load_alerts
from edge_store.alerts.engine import write_test_event
from edge_store.store import Store
from replicator import points
from replicator.points import LIVE_STREAM, MEASUREMENTS
from replicator.policy import Policy
from replicator.influxql import InfluxQLReader, ident, literal
from replicator.influx_writer import V2Writer
from tests.fixtures_influx import SITE, assert_cloud_equals_store, cli_env, expected_points, reader_of, replicator_on, v1
from tests.fixtures_serial import wait_for_rows
from tests.samples import STATS_VALUES, T0, ZONE, add_live, live
from tests.support import KAMMTHAAR, free_port, kammthaar


SETTINGS_VALUES = dict(
    rated_charging_current=40.0, rated_load_current=40.0, battery_type=2, battery_capacity=200,
    temp_compensation_coefficient=3.0, over_voltage_disconnect=16.0, charging_limit_voltage=15.0,
    over_voltage_reconnect=15.0, equalize_charging_voltage=14.2, boost_charging_voltage=14.2,
    float_charging_voltage=13.8, boost_reconnect_voltage=13.2, low_voltage_reconnect=12.6,
    under_voltage_recover=12.2, under_voltage_warning=12.0, low_voltage_disconnect=11.1,
    discharging_limit_voltage=10.6, battery_rated_voltage=1, default_load_mode=0, equalize_duration=0,
    boost_duration=120, battery_discharge=30, battery_charge=100, charging_mode=0,
)




def field_types(influxd, database: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for series in influxd.query("SHOW FIELD KEYS", database)["results"][0].get("series", []):
        out[series["name"]] = dict(series["values"])
    return out


# -- v1 end to end: the real collector, the real simulator, influxd ------------------------


def test_v1_end_to_end_collector_to_influxd_point_by_point(start_simulator, influxd, influx_db, tmp_path, processes):
    port = free_port()
    start_simulator("--tcp", f"127.0.0.1:{port}", "--framer", "rtu", "--speed", "600", "--seed", "5",
                    "--timezone", ZONE)
    db = tmp_path / "k.db"
    env = cli_env(db, modbus_port=f"rtu+tcp://127.0.0.1:{port}", modbus_interval_s="0.05",
                  modbus_slow_interval_s="0.3", modbus_timeout_s="0.5", cloud_url=influxd.url, cloud_api="v1",
                  cloud_database=influx_db, cloud_batch_size="100")
    collector = processes.start([*KAMMTHAAR, "collect"], "collect", env=env)
    try:
        wait_for_rows(db, "live_samples", 60, collector)
        wait_for_rows(db, "device_clock", 2, collector)
    finally:
        code, err = collector.stop(30), collector.log()
    assert code == 0, err[-3000:]
    with Store(db) as store, store.db.writing("a test alert event") as conn:  # alerts reach the cloud too
        device, ts = conn.execute("SELECT device, max(ts_ms) FROM live_samples").fetchone()
        write_test_event(conn, load_alerts({}).rule("battery_voltage_low"), device, ts)

    proc = kammthaar("replicate", "--once", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "replicating" in proc.stderr  # the progress bar
    counts = assert_cloud_equals_store(reader_of(influxd, influx_db), db, SITE)
    with Store(db, readonly=True) as store:
        live_rows = store.count(LIVE)
        assert counts["batteryStatus"] == counts["loadData"] == counts["chargingEquipmentStatus"] == live_rows
        assert counts["energyStatistics"] == store.count(STATS)
        assert counts["batteryParameters"] == store.count(SETTINGS)
    assert counts["rollup_daily"] >= 1 and counts["rollup_monthly"] >= 1 and counts["alerts"] == 1
    # One type per field, the pinned ones, as influxd itself reports them.
    pinned, reported = points.field_types(), field_types(influxd, influx_db)
    assert set(reported) == set(pinned)
    for measurement, fields in reported.items():
        assert {f: pinned[measurement][f] for f in fields} == fields, measurement
    assert reported["batteryStatus"] == pinned["batteryStatus"]
    outbox = Outbox(db, readonly=True)
    summary = outbox.summary()
    renderer = points.Renderer(SITE)
    lines = sum(len(renderer.lines(s.name, r)) for s in STREAMS for r in outbox.rows_after(s, 0, 10**6))
    # Every line acknowledged once. (Two lines of one measurement with the same time, e.g. the live
    # and the clock controllerData polled in the same millisecond, are one point in InfluxDB.)
    assert summary["backlog_rows"] == 0 and summary["points_sent"] == lines >= sum(counts.values())
    assert summary["bytes_sent"] > 0 and summary["last_success_ms"] and summary["dead_letters"] == 0


# -- v2 through influxdb-client, against victoria-metrics ------------------------------------


def test_v2_through_influxdb_client_to_victoria_metrics_read_back_by_export(victoria, store, db_path):
    add_live(store, 300)
    store.insert_sample(STATS, T0 + 500, True, "epever", STATS_VALUES)
    store.insert_sample(SETTINGS, T0 + 600, True, "epever", SETTINGS_VALUES)
    site = f"v2-{os.getpid()}-{time.monotonic_ns()}"
    rep = replicator_on(db_path, V2Writer(victoria.url, token="secret", org="o", bucket="b"), site=site,
                        batch_size=500)
    done = rep.drain()
    rep.close()
    assert done.error is None and done.rows == 302

    exported = victoria.export(f'{{site="{site}"}}')
    got: dict[tuple[str, str, int], dict] = {}
    names = sorted({m.name for ms in MEASUREMENTS.values() for m in ms}, key=len, reverse=True)
    for series in exported:
        metric = series["metric"]["__name__"]
        measurement = next(n for n in names if metric.startswith(n + "_"))
        field = metric[len(measurement) + 1:]
        for ts, value in zip(series["timestamps"], series["values"]):
            fields = got.setdefault((measurement, series["metric"]["device"], ts), {})
            assert field not in fields, f"two values for {measurement}.{field} at {ts}"
            fields[field] = value
    expected = expected_points(db_path, site)
    assert set(got) == set(expected)
    types = points.field_types()
    for key, fields in expected.items():
        # victoria-metrics keeps numbers: floats as they are, booleans as 1/0; strings have no number.
        numeric = {k: (float(v) if types[key[0]][k] != points.STRING else None) for k, v in fields.items()}
        assert {k: v for k, v in got[key].items() if numeric[k] is not None} == \
            {k: v for k, v in numeric.items() if v is not None}, key
    assert len([k for k in got if k[0] == "batteryStatus"]) == 300


# -- resending, poison, pruning, statistics ----------------------------------------------------


def test_a_batch_sent_again_after_a_crash_before_the_watermark_moved_doubles_nothing(influxd, influx_db, store,
                                                                                     db_path):
    add_live(store, 50)
    rep = replicator_on(db_path, v1(influxd, influx_db), batch_size=10_000)
    # What a replicator that died right after the 2xx did: the points reached the server,
    # the watermark did not move.
    stream = BY_NAME[LIVE_STREAM]
    lines = [line for r in rep.outbox.rows_after(stream, 0, 1000) for line in rep.renderer.lines(LIVE_STREAM, r)]
    Policy(rep.writer).deliver(lines)
    assert rep.outbox.watermarks()[LIVE_STREAM] == 0
    done = rep.drain()
    assert done.points == 350  # sent again, whole
    rep.close()
    counts = assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)
    assert counts["batteryStatus"] == 50


def test_poison_batch_good_points_arrive_bad_ones_are_dead_letters_with_the_servers_message(
        influxd, influx_db, store, db_path):
    add_live(store, 20)
    # The cloud already has batteryStatus.voltage as an integer (a previous deployment wrote 13i).
    status, body = influxd.write_lines(influx_db, f"batteryStatus,device=old,site={SITE} voltage=13i {T0 - 60_000}")
    assert status == 204, body
    rep = replicator_on(db_path, v1(influxd, influx_db), batch_size=5000)
    done = rep.drain()
    assert done.error is None and done.rows == 20
    assert done.dead == 20 and done.points == 20 * 6
    dead = rep.outbox.dead_letters()
    assert len(dead) == 20 and {d["status"] for d in dead} == {400}
    assert all("field type conflict" in d["message"] for d in dead), dead[0]["message"]
    assert all(d["line"].startswith("batteryStatus,") for d in dead)
    assert sorted(d["row_key"] for d in dead) == [r["id"] for r in store.rows(LIVE)]
    assert rep.outbox.watermarks()[LIVE_STREAM] == max(r["id"] for r in store.rows(LIVE))  # the rest flows on
    summary = rep.outbox.summary()
    assert summary["dead_letters"] == 20 and summary["backlog_rows"] == 0
    rep.close()
    reader = reader_of(influxd, influx_db)
    expected = {k: v for k, v in expected_points(db_path, SITE).items() if k[0] != "batteryStatus"}
    for measurement in {k[0] for k in expected}:
        got = reader.select(measurement, tags={"site": SITE})
        assert len(got) == 20, measurement
    assert [r["device"] for r in reader.select("batteryStatus", tags={"site": SITE})] == ["old"]  # only its own


def test_all_rows_pruned_then_new_rows_still_replicate(influxd, influx_db, store, db_path):
    add_live(store, 10)
    rep = replicator_on(db_path, v1(influxd, influx_db))
    assert rep.drain().rows == 10
    first_mark = rep.outbox.watermarks()[LIVE_STREAM]
    assert store.prune(before_ms=10**15, keep_unsent=True) >= 10  # all sent: all may go
    assert store.count(LIVE) == 0
    add_live(store, 5, start=100)
    assert min(r["id"] for r in store.rows(LIVE)) > first_mark  # ids are never reused
    assert rep.drain().rows == 5
    rep.close()
    got = reader_of(influxd, influx_db).select("batteryStatus", ["voltage"], tags={"site": SITE})
    assert [r["time"] for r in got] == [T0 + i * 1000 for i in (*range(10), *range(100, 105))]


def test_statistics_are_resent_when_they_change(influxd, influx_db, tmp_path, db_path):
    store = Store(db_path, rollups=RollupSettings(ZONE, 60.0))
    add_live(store, 30)
    rep = replicator_on(db_path, v1(influxd, influx_db))
    rep.drain()
    reader = reader_of(influxd, influx_db)
    (first,) = reader.select("rollup_daily", tags={"site": SITE})
    add_live(store, 30, start=30)  # the same local day goes on: its statistics change
    assert rep.outbox.summary()["backlog_by_stream"]["rollup_daily"] == 1
    rep.drain()
    (second,) = reader.select("rollup_daily", tags={"site": SITE})  # overwritten: still one point
    assert first["time"] == second["time"] and second["samples"] == 60 and first["samples"] == 30
    day = sqlite3.connect(db_path).execute("SELECT day, start_ms, battery_charge_ah FROM rollup_daily").fetchone()
    assert second["date"] == day[0] and second["time"] == day[1]  # the period's local start, in UTC
    assert second["battery_charge_ah"] == day[2]
    assert rep.drain().rows == 0  # nothing changed since: nothing sent
    rep.close()
    store.close()
    assert_cloud_equals_store(reader, db_path, SITE)


def test_slow_groups_replicate_with_their_measurements(influxd, influx_db, store, db_path):
    store.insert_sample(STATS, T0, True, "epever", STATS_VALUES)
    store.insert_sample(SETTINGS, T0 + 1, True, "epever", SETTINGS_VALUES)
    store.insert_sample(CLOCK, T0 + 2, True, "epever", {"device_time": "2025-11-24 17:00:02"})
    rep = replicator_on(db_path, v1(influxd, influx_db))
    assert rep.drain().rows == 3
    rep.close()
    reader = reader_of(influxd, influx_db)
    (params,) = reader.select("batteryParameters", tags={"site": SITE})
    assert params["battery_type"] == "GEL" and params["battery_rated_voltage"] == "12V"
    assert params["charging_mode"] == "VOLTAGE_COMPENSATION" and params["boost_duration"] == 120
    (clock,) = reader.select("controllerData", ["current_device_time"], tags={"site": SITE})
    assert clock == {"time": T0 + 2, "current_device_time": "2025-11-24 17:00:02", "_measurement": "controllerData"}
    (solar,) = reader.select("solarData", tags={"site": SITE})
    assert solar["maximum_voltage_today"] == 20.0 and solar["device"] == "epever"
    assert_cloud_equals_store(reader, db_path, SITE)


def test_reader_escapes_identifiers_and_literals(influxd, influx_db, store, db_path):
    odd_site = "van \"lisa\"; DROP DATABASE x; 'o'\\n=,"
    add_live(store, 3, device="tracer, 2=b")
    rep = replicator_on(db_path, v1(influxd, influx_db), site=odd_site)
    rep.drain()
    rep.close()
    reader = reader_of(influxd, influx_db)
    got = reader.select("batteryStatus", ["voltage", "battery_status"],
                        tags={"site": odd_site, "device": "tracer, 2=b"})
    assert [r["voltage"] for r in got] == [live(i)["battery_voltage"] for i in range(3)]
    assert ident('a"b') == '"a\\"b"' and literal("it's") == "'it\\'s'"
    assert influxd.query("SHOW DATABASES")["results"][0]["series"][0]["values"]  # nothing was dropped
    assert_cloud_equals_store(reader, db_path, odd_site)


# -- visibility: status, views, the CLI --------------------------------------------------------


def test_status_shows_the_replicator_figures(fault_proxy, influx_db, store, db_path):
    add_live(store, 30)
    store.increment("store.dropped_unsent", 4)
    rep = replicator_on(db_path, v1(fault_proxy, influx_db), batch_size=70,
                        policy=None)
    rep.sync_once()  # 10 rows sent
    fault_proxy.script = [500] * 5
    rep.policy = Policy(rep.writer, sleep=lambda s: None, max_attempts=5)
    result = rep.sync_once()
    assert result.error is not None and result.error.status == 500
    rep.close()
    out = kammthaar("status", env=cli_env(db_path, cloud_url=fault_proxy.url, cloud_api="v1",
                                          cloud_database=influx_db)).stdout
    section = out[out.index("replication:"):]
    assert f"replication: {fault_proxy.url}" in section
    assert "backlog: 20 rows (live_samples 20)" in section
    assert "oldest unsent sample" in section and " d old" in section  # T0 is a long time ago
    assert "last success: " in section and "never" not in section.split("last success:")[1].split("\n")[0]
    assert "last error: " in section and "(HTTP 500): HTTP 500: injected 500" in section
    assert "points sent 70, bytes sent " in section and "dead letters 0, dropped rows 4" in section


def test_field_views_show_the_backlog_and_the_dead_letters_in_the_sqlite3_shell(influxd, influx_db, store, db_path):
    add_live(store, 4)
    status, body = influxd.write_lines(influx_db, f"loadData,device=x,site={SITE} power=1i {T0 - 1}")
    assert status == 204, body
    rep = replicator_on(db_path, v1(influxd, influx_db), batch_size=14)  # 2 rows
    rep.sync_once()
    rep.close()
    out = subprocess.run(
        ["sqlite3", str(db_path),
         "SELECT stream, watermark, unsent_rows FROM v_replication_backlog WHERE stream = 'live_samples';"
         "SELECT stream, row_key, status, substr(line, 1, 9), instr(message, 'field type conflict') > 0 "
         "FROM v_dead_letters;"
         "SELECT state, last_status, points_sent, dead_letters FROM v_replication;"],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == ["live_samples|2|2", "live_samples|2|400|loadData,|1", "live_samples|1|400|loadData,|1",
                   "ok||12|2"]


def test_replicate_without_cloud_url_idles_and_says_so(db_path, processes):
    env = cli_env(db_path)
    once = kammthaar("replicate", "--once", env=env)
    assert once.returncode == 0 and "no [cloud] url configured" in once.stdout
    proc = processes.start([*KAMMTHAAR, "replicate"], "replicate", env=env)
    line = proc.wait_for(lambda: "\n" in proc.log() and proc.log().split("\n", 1)[0], 30, "no line logged")
    assert "no [cloud] url configured: the replicator has nothing to do and idles" in line
    assert proc.poll() is None  # idles, does not exit (systemd would restart it in a loop)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_replicate_daemon_sends_then_stops_on_sigterm(influxd, influx_db, store, db_path, processes):
    add_live(store, 40)
    env = cli_env(db_path, cloud_url=influxd.url, cloud_api="v1", cloud_database=influx_db, cloud_interval_s="0.1")
    proc = processes.start([*KAMMTHAAR, "replicate"], "replicate", env=env)
    try:
        deadline = time.monotonic() + 30
        while Outbox(db_path, readonly=True).summary()["backlog_rows"] and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.05)
        add_live(store, 5, start=40)  # caught up: new rows go out on the next pass
        while Outbox(db_path, readonly=True).summary()["backlog_rows"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        err = proc.log()
    assert code == 0, err[-3000:]
    assert "replicator stopped" in err
    assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)


def test_cloud_settings_validate_and_secrets_are_masked(tmp_path, db_path):
    path = tmp_path / "k.toml"
    path.write_text('[cloud]\nurl = "https://influx.example.com:8086"\ntoken = "tok-SECRET-123"\n'
                    'password = "pw-SECRET-456"\nusername = "pi"\nbatch_size = 1000\n')
    cfg = config.load(str(path), environ={})
    assert cfg.cloud.api == "v2" and cfg.cloud.batch_size == 1000 and cfg.cloud.timeout_s == 10.0
    shown = kammthaar("-c", str(path), "config", "show", env=cli_env(db_path))
    assert shown.returncode == 0, shown.stderr
    assert "SECRET" not in shown.stdout
    assert 'token = "********"' in shown.stdout and 'password = "********"' in shown.stdout
    assert 'username = "pi"' in shown.stdout
    defaults = config.load(None, environ={})
    assert defaults.cloud.url == "" and defaults.cloud.token == "" and defaults.cloud.password == ""
    assert defaults.cloud.batch_size == 5000 and defaults.cloud.max_backlog_age_days == 0
    for text, named in (('[cloud]\napi = "v3"\n', "[cloud] api"), ('[cloud]\nurl = "influx:8086"\n', "[cloud] url"),
                        ('[cloud]\nbatch_size = 0\n', "[cloud] batch_size")):
        path.write_text(text)
        with pytest.raises(config.ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
            config.load(str(path), environ={})
    # v2 without a bucket: one line naming the key, exit 2.
    proc = kammthaar("replicate", "--once", env=cli_env(db_path, cloud_url="http://127.0.0.1:9"))
    assert proc.returncode == 2 and "[cloud] bucket is required" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_v1_writes_into_the_configured_retention_policy(influxd, influx_db, store, db_path):
    influxd.query(f'CREATE RETENTION POLICY "forever" ON "{influx_db}" DURATION INF REPLICATION 1', influx_db)
    add_live(store, 3)
    rep = replicator_on(db_path, v1(influxd, influx_db, retention_policy="forever"))
    assert rep.drain().points == 21
    rep.close()
    in_rp = InfluxQLReader(influxd.url, database=influx_db, retention_policy="forever")
    assert len(in_rp.select("batteryStatus", tags={"site": SITE})) == 3
    assert reader_of(influxd, influx_db).select("batteryStatus") == []  # not in the default policy
    assert_cloud_equals_store(in_rp, db_path, SITE)
