"""What the reconciliation tests share: a store holding two devices over two and a half days,
replicated to a fresh influxd database, and ways to damage the cloud."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from edge_store.registers import LIVE, STATS
from replicator.influxql import ident, literal
from tests.fixtures_influx import cli_env, replicator_on, v1
from tests.samples import STATS_VALUES, ZONE, live

DEVICES = ("epever", "rover")
STEP_S = 60
HOURS = 60
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Recent days (the figures of /health and status cover the last 30): from 16:00 UTC three days ago
# to 04:00 UTC yesterday. DAYS: the four UTC days touched; DAY_STARTS: their starts.
START_MS = (int(time.time() * 1000) // DAY_MS - 3) * DAY_MS + 16 * HOUR_MS
DAY_STARTS = tuple(START_MS - 16 * HOUR_MS + k * DAY_MS for k in range(4))
DAYS = tuple(datetime.fromtimestamp(d / 1000, timezone.utc).strftime("%Y-%m-%d") for d in DAY_STARTS)


def fill(store, hours: int = HOURS, start_ms: int = START_MS, devices=DEVICES) -> None:
    """A live sample per device every minute and a statistics row every ten minutes, for `hours` hours."""
    for n, device in enumerate(devices):
        store.insert_samples(LIVE, ({"ts_ms": start_ms + i * STEP_S * 1000 + n, "ntp_synced": True, "device": device,
                                     **live(i + 1000 * n)} for i in range(hours * 3600 // STEP_S)))
        store.insert_samples(STATS, ({"ts_ms": start_ms + i * 600_000 + 5 + n, "ntp_synced": True, "device": device,
                                      **STATS_VALUES, "generated_today": 0.1 * i} for i in range(hours * 6)))


def delete(influxd, database: str, measurement: str, device: str, start_ms: int, end_ms: int) -> None:
    """Points of one device of one measurement gone from the cloud, in [start_ms, end_ms)."""
    influxd.query(f"DELETE FROM {ident(measurement)} WHERE {ident('device')} = {literal(device)} "
                  f"AND time >= {start_ms}ms AND time < {end_ms}ms", database)


@pytest.fixture
def replicated(open_store, db_path, influxd, influx_db):
    """(store, env): the two devices' samples and statistics, drained to a fresh influxd database."""
    store = open_store(tz=ZONE, max_gap_s=3 * STEP_S)
    fill(store)
    rep = replicator_on(db_path, v1(influxd, influx_db), batch_size=5000)
    done = rep.drain()
    rep.close()
    assert done.error is None and done.rows > 0
    return store, cli_env(db_path, cloud_url=influxd.url, cloud_api="v1", cloud_database=influx_db)

