"""Failures injected between the replicator and a real influxd: what is retried, split, bisected or stopped.

Sleeps are recorded, not slept: each one is noted with how many requests the
proxy had seen at that moment, so the tests assert the order of events.
"""

from __future__ import annotations

import email.utils

from edge_store.outbox import Outbox
from replicator.points import LIVE_STREAM
from replicator.policy import Policy
from replicator.influxql import InfluxQLReader
from replicator.replicator import Replicator, fingerprint
from replicator.influx_writer import V1Writer, WriteError, parse_retry_after
from tests.fault_proxy import FaultProxy
from tests.fixtures_influx import SITE, assert_cloud_equals_store, cli_env, reader_of
from tests.samples import add_live
from tests.support import free_port, kammthaar


class Sleeps:
    """A sleep that records (requests seen so far, seconds) and returns at once."""

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy
        self.calls: list[tuple[int, float]] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append((len(self.proxy.seen), seconds))


def through_proxy(db_path, proxy, database, *, batch_size=5000, max_attempts=5, **writer_kw):
    sleeps = Sleeps(proxy)
    writer = V1Writer(proxy.url, database=database, **writer_kw)
    policy = Policy(writer, sleep=sleeps, max_attempts=max_attempts, base_backoff_s=0.5, max_backoff_s=30)
    rep = Replicator(Outbox(db_path), writer, site=SITE, batch_size=batch_size, policy=policy)
    return rep, sleeps


def test_429_retry_after_is_honoured_before_the_next_attempt(fault_proxy, influxd, influx_db, store, db_path):
    add_live(store, 10)
    rep, sleeps = through_proxy(db_path, fault_proxy, influx_db)
    fault_proxy.script = [(429, 7)]
    done = rep.drain()
    rep.close()
    assert done.error is None and done.points == 70
    assert fault_proxy.answers() == [429, 204]
    assert sleeps.calls == [(1, 7.0)]  # after the 429, the 7 s it asked for; then the second attempt
    assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)


def test_503_retry_after_is_honoured_as_seconds_or_as_a_date(fault_proxy, influxd, influx_db, store, db_path):
    add_live(store, 10)
    rep, sleeps = through_proxy(db_path, fault_proxy, influx_db)
    fault_proxy.script = [(503, 3), (503, 120)]
    done = rep.drain()
    rep.close()
    assert done.error is None
    assert fault_proxy.answers() == [503, 503, 204]
    assert sleeps.calls == [(1, 3.0), (2, 120.0)]
    assert parse_retry_after(email.utils.formatdate(1_000_090, usegmt=True), now_s=1_000_000) == 90.0
    assert parse_retry_after("soon") is None and parse_retry_after("-5") == 0.0


def test_5xx_and_dropped_connections_back_off_exponentially_with_jitter(fault_proxy, influxd, influx_db, store,
                                                                       db_path):
    add_live(store, 10)
    rep, sleeps = through_proxy(db_path, fault_proxy, influx_db, max_attempts=6)
    fault_proxy.script = [500, "drop", 502, "drop"]
    done = rep.drain()
    rep.close()
    assert done.error is None and done.points == 70
    assert fault_proxy.answers() == [500, "dropped", 502, "dropped", 204]
    assert [seen for seen, _ in sleeps.calls] == [1, 2, 3, 4]
    # 0.5 s doubling, plus up to 0.5 s of jitter.
    for n, (_, seconds) in enumerate(sleeps.calls):
        assert 0.5 * 2 ** n <= seconds <= 0.5 * 2 ** n + 0.5
    assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)


def test_when_retries_run_out_the_watermark_stays_and_the_error_is_recorded(fault_proxy, influxd, influx_db, store,
                                                                           db_path):
    add_live(store, 10)
    rep, sleeps = through_proxy(db_path, fault_proxy, influx_db, max_attempts=3)
    fault_proxy.script = [503, 503, 503]
    result = rep.sync_once()
    assert isinstance(result.error, WriteError) and result.error.status == 503 and result.error.retryable
    assert fault_proxy.answers() == [503, 503, 503] and len(sleeps.calls) == 2
    assert rep.outbox.watermarks()[LIVE_STREAM] == 0
    state = rep.outbox.state()
    assert state["last_status"] == 503 and "injected 503" in state["last_error"] and state["last_success_ms"] is None
    assert rep.drain().points == 70  # the next pass sends it all
    rep.close()
    assert rep.outbox.summary()["backlog_rows"] == 0


def test_413_splits_the_batch_until_it_fits(fault_proxy, influxd, influx_db, store, db_path):
    add_live(store, 40)  # 280 lines, about 60 kB
    rep, sleeps = through_proxy(db_path, fault_proxy, influx_db)
    fault_proxy.max_body_bytes = 16_000
    done = rep.drain()
    rep.close()
    assert done.error is None and done.points == 280 and done.dead == 0
    answers = fault_proxy.answers()
    assert answers[0] == 413 and answers.count(204) >= 4
    assert all(s.bytes <= 16_000 for s in fault_proxy.seen if s.answer == 204)
    assert sum(s.lines for s in fault_proxy.seen if s.answer == 204) == 280  # each line sent once
    assert sleeps.calls == []  # splitting is not waiting
    assert_cloud_equals_store(reader_of(influxd, influx_db), db_path, SITE)


def test_a_single_line_too_large_becomes_a_dead_letter(fault_proxy, influxd, influx_db, store, db_path):
    add_live(store, 2)
    rep, _ = through_proxy(db_path, fault_proxy, influx_db)
    fault_proxy.max_body_bytes = 300  # the charging and discharging status points are longer
    done = rep.drain()
    rep.close()
    dead = rep.outbox.dead_letters()
    assert done.dead == len(dead) == 4 and {d["status"] for d in dead} == {413}
    assert {d["line"].split(",")[0] for d in dead} == {"chargingEquipmentStatus", "dischargingEquipmentStatus"}
    assert done.points == 10


# -- 401 and 403 stop sending until the credentials change ----------------------------------


def auth_replicator(db_path, proxy, user, password, **kw):
    writer = V1Writer(proxy.url, database="site", username=user, password=password)
    return Replicator(Outbox(db_path), writer, site=SITE, credentials=fingerprint(proxy.url, "v1", user, password),
                      policy=Policy(writer, sleep=lambda s: None), **kw)


def test_401_stops_sending_says_so_in_status_until_the_credentials_change(influxd_auth, store, db_path):
    proxy = FaultProxy(influxd_auth.url)
    try:
        add_live(store, 10)
        rep = auth_replicator(db_path, proxy, "writer", "wrong-pw")
        result = rep.sync_once()
        assert result.blocked and result.error.status == 401
        assert proxy.answers() == [401]  # not retried: retrying cannot help
        for _ in range(3):
            assert rep.sync_once().blocked
        assert proxy.answers() == [401]  # stopped: nothing more was sent
        state = rep.outbox.state()
        assert state["blocked"].startswith("the server refused the credentials (HTTP 401")
        rep.close()

        # Started again with the same credentials: still stopped.
        rep = auth_replicator(db_path, proxy, "writer", "wrong-pw")
        assert rep.sync_once().blocked and proxy.answers() == [401]
        rep.close()

        env = cli_env(db_path, cloud_url=proxy.url, cloud_api="v1", cloud_database="site",
                      cloud_username="writer", cloud_password="wrong-pw")
        out = kammthaar("status", env=env).stdout
        assert "!! REPLICATION STOPPED since" in out and "HTTP 401" in out
        assert "last error: " in out and "(HTTP 401)" in out

        # The credentials change: sending starts again, the block is lifted.
        rep = auth_replicator(db_path, proxy, "writer", "writer-pw")
        done = rep.drain()
        assert done.error is None and done.points == 70 and not done.blocked
        assert proxy.answers() == [401, 204]
        assert rep.outbox.state()["blocked"] is None
        rep.close()
        reader = InfluxQLReader(influxd_auth.url, database="site", username="admin", password="admin-pw")
        assert_cloud_equals_store(reader, db_path, SITE)
    finally:
        proxy.close()


def test_403_a_user_without_write_rights_stops_sending_and_is_rechecked_hourly(influxd_auth, store, db_path):
    proxy = FaultProxy(influxd_auth.url)
    now = [1_000_000_000]
    try:
        add_live(store, 3)
        rep = auth_replicator(db_path, proxy, "reader", "reader-pw", clock_ms=lambda: now[0])
        result = rep.sync_once()
        assert result.blocked and result.error.status == 403
        assert "not authorized" in rep.outbox.state()["last_error"]
        now[0] += 59 * 60_000
        assert rep.sync_once().blocked and proxy.answers() == [403]
        now[0] += 2 * 60_000  # an hour later: one more try, in case the rights were fixed on the server
        assert rep.sync_once().blocked and proxy.answers() == [403, 403]
        assert rep.outbox.summary()["backlog_rows"] == 3
        rep.close()
    finally:
        proxy.close()


def test_no_answer_at_all_is_recorded_without_a_status(store, db_path):
    add_live(store, 1)
    writer = V1Writer(f"http://127.0.0.1:{free_port()}", database="x", timeout_s=1)  # nobody listens there
    rep = Replicator(Outbox(db_path), writer, site=SITE, policy=Policy(writer, sleep=lambda s: None, max_attempts=2))
    result = rep.sync_once()
    rep.close()
    assert result.error.status is None and result.error.retryable
    state = rep.outbox.state()
    assert state["last_status"] is None and "connection failed" in state["last_error"]
    assert rep.outbox.watermarks()[LIVE_STREAM] == 0
