"""Reconciliation against a real influxd: damaged ranges found exactly, repaired, the cloud equal again."""

from __future__ import annotations

from edge_store.reconcile_log import ReconcileLog
from tests.fixtures_influx import SITE, assert_cloud_equals_store, reader_of
from tests.fixtures_reconcile import HOUR_MS, delete
from tests.samples import T0
from tests.support import kammthaar

DAY2 = 1_764_028_800_000  # 2025-11-25 00:00 UTC


def test_reconcile_finds_exactly_the_deleted_ranges_repairs_them_and_the_cloud_equals_the_store(
        replicated, db_path, influxd, influx_db):
    store, env = replicated
    reader = reader_of(influxd, influx_db)
    assert_cloud_equals_store(reader, db_path, SITE)
    delete(influxd, influx_db, "batteryStatus", "epever", T0 + 3 * HOUR_MS, T0 + 4 * HOUR_MS)
    delete(influxd, influx_db, "energyStatistics", "rover", DAY2, DAY2 + 24 * HOUR_MS)

    proc = kammthaar("reconcile", env=env)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_cloud_equals_store(reader, db_path, SITE)
    log = ReconcileLog(db_path, readonly=True)
    days = {d["day"]: d for d in log.days()}
    assert sorted(days) == ["2025-11-24", "2025-11-25", "2025-11-26", "2025-11-27"]
    repaired = {d: set(filter(None, days[d]["repaired"].split("\n"))) for d in days}
    assert repaired["2025-11-24"] == {"batteryStatus epever 2025-11-24 19:00-20:00"}
    assert repaired["2025-11-25"] == {f"energyStatistics rover 2025-11-25 {h:02d}:00-"
                                      + (f"{h + 1:02d}:00" if h < 23 else "24:00") for h in range(24)}
    assert repaired["2025-11-26"] == repaired["2025-11-27"] == set()
    assert days["2025-11-24"]["points_missing"] == 60 and days["2025-11-25"]["points_missing"] == 144
    assert all(d["hours_still_differing"] == 0 for d in days.values())
