"""influxd killed (SIGKILL) and frozen (SIGSTOP) while the real collector keeps writing: nothing lost, nothing doubled."""

from __future__ import annotations

import signal
import time

from edge_store.outbox import Outbox
from tests.fixtures_influx import SITE, assert_cloud_equals_store, cli_env, reader_of
from tests.samples import ZONE
from tests.support import KAMMTHAAR, free_port, rows_in


count = rows_in


def state(db) -> dict:
    outbox = Outbox(db, readonly=True)
    try:
        return outbox.summary()
    finally:
        outbox.close()


def wait_for(predicate, what: str, procs, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            p.assert_alive()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout_s}s")


def grows_while(db, procs, seconds: float) -> int:
    """Live rows the collector stored during `seconds`."""
    before = count(db, "live_samples")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for p in procs:
            assert p.poll() is None
        time.sleep(0.05)
    return count(db, "live_samples") - before


def test_influxd_sigkilled_and_sigstopped_while_collecting_then_the_cloud_equals_the_store(
        own_influxd, start_simulator, tmp_path, processes):
    database = own_influxd.create_database()
    port = free_port()
    start_simulator("--tcp", f"127.0.0.1:{port}", "--framer", "rtu", "--speed", "600", "--seed", "7",
                    "--timezone", ZONE)
    db = tmp_path / "k.db"
    env = cli_env(db, modbus_port=f"rtu+tcp://127.0.0.1:{port}", modbus_interval_s="0.05",
                  modbus_slow_interval_s="0.5", modbus_timeout_s="0.5", cloud_url=own_influxd.url, cloud_api="v1",
                  cloud_database=database, cloud_batch_size="300", cloud_interval_s="0.2", cloud_timeout_s="1")
    collector = processes.start([*KAMMTHAAR, "collect"], "collect", env=env)
    replicator = None
    try:
        wait_for(lambda: count(db, "live_samples") > 0, "the collector stores", [collector])
        replicator = processes.start([*KAMMTHAAR, "replicate"], "replicate", env=env)
        both = [collector, replicator]
        wait_for(lambda: state(db)["points_sent"] > 0, "the first points reach influxd", both)

        # 1. influxd killed: connections refused. The collector does not notice.
        own_influxd.kill()
        assert grows_while(db, both, 1.5) >= 10
        wait_for(lambda: "connection failed" in replicator.log(), "a refused write", both)
        assert state(db)["backlog_rows"] > 0
        own_influxd.start()  # same port, same data: what was acknowledged before is still there
        sent = state(db)["points_sent"]
        wait_for(lambda: state(db)["points_sent"] > sent, "sending again", both)

        # 2. influxd frozen: connections accepted, no answer; requests time out (timeout_s = 1).
        own_influxd.freeze()
        assert grows_while(db, both, 1.5) >= 10
        wait_for(lambda: "timeout (" in replicator.log(), "a write timing out", both)
        own_influxd.thaw()  # the requests it queued are answered now, and sent again: overwritten
        collector.send_signal(signal.SIGTERM)
        code = collector.wait(30)
        err = collector.log()
        assert code == 0, err[-3000:]
        assert "could not store" not in err  # never slowed or blocked by the replicator
        wait_for(lambda: state(db)["backlog_rows"] == 0, "the backlog is sent", [replicator], 90)
        replicator.send_signal(signal.SIGTERM)
        assert replicator.wait(30) == 0, replicator.log()[-3000:]
    finally:
        for proc in (collector, replicator):
            if proc is not None:
                proc.kill()

    counts = assert_cloud_equals_store(reader_of(own_influxd, database), db, SITE)
    assert counts["batteryStatus"] == count(db, "live_samples") > 50
    assert counts["energyStatistics"] == count(db, "device_statistics")
