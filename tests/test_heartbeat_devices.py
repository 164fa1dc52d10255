"""The heartbeat of a Pi with several devices (issue 12 with issue 14): one `edge_health` point per
configured device, each with its model, its own newest sample, errors and freshness."""

from __future__ import annotations

from edge_store.outbox import Outbox
from replicator.heartbeat import Heartbeat
from tests.fixtures_reconcile import START_MS, fill
from tests.samples import device


def test_each_device_has_its_own_point_with_its_own_figures(open_store, db_path):
    store = open_store()
    fill(store, hours=1, devices=("roof", "rover"))
    newest = {d: store.latest("live", d)["ts_ms"] for d in ("roof", "rover")}
    now = newest["roof"] + 60_000
    for _ in range(2):
        store.record_error("timeout", "holding:0x0100+2", "no answer", device="rover", ts_ms=now - 1000)
    outbox = Outbox(db_path)
    try:
        beat = Heartbeat(outbox, None, site="van-lisa", devices=(device("roof", 5.0), device("rover", 600.0, "renogy-rover"), device("side", 5.0)),
                         clock_ms=lambda: now, ntp=lambda: True)
        lines = beat.lines()
    finally:
        outbox.close()
    per_device = {line.split(" ")[0]: dict(f.split("=") for f in line.split(" ")[1].split(",")) for line in lines[1:]}
    assert per_device == {
        # 60 s old: stale at a 5 s interval, fresh at 600 s; the errors are each device's own.
        "edge_health,device=roof,site=van-lisa": {"model": '"epever-tracer"', "newest_sample_age_s": "60",
                                                  "errors": "0i", "fresh": "false"},
        "edge_health,device=rover,site=van-lisa": {"model": '"renogy-rover"',
                                                   "newest_sample_age_s": f"{(now - newest['rover']) / 1000:g}",
                                                   "errors": "2i", "fresh": "true"},
        # Configured, never read: no age (absent, never a zero), not fresh.
        "edge_health,device=side,site=van-lisa": {"model": '"epever-tracer"', "errors": "0i", "fresh": "false"},
    }, lines
    assert lines[0].startswith("edge_health,site=van-lisa ") and newest["roof"] > START_MS
