"""Reconciliation against a real influxd: damaged ranges found exactly, repaired, the cloud equal again."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import termios

from edge_store.reconcile_log import ReconcileLog
from replicator.influxql import ident, literal
from tests.fixtures_influx import SITE, assert_cloud_equals_store, reader_of
from tests.fixtures_reconcile import DAY_STARTS, DAYS, HOUR_MS, START_MS, delete
from tests.support import KAMMTHAAR, REPO, kammthaar


def repaired_by_day(db_path) -> dict[str, set[str]]:
    log = ReconcileLog(db_path, readonly=True)
    try:
        days = log.days()
    finally:
        log.close()
    assert all(d["hours_still_differing"] == 0 for d in days)
    return {d["day"]: set(filter(None, d["repaired"].split("\n"))) for d in days}


def test_reconcile_finds_exactly_the_deleted_ranges_repairs_them_and_the_cloud_equals_the_store(
        replicated, db_path, influxd, influx_db):
    store, env = replicated
    reader = reader_of(influxd, influx_db)
    assert_cloud_equals_store(reader, db_path, SITE)
    # An hour of one measurement of one device; a whole day of another measurement of the other device.
    delete(influxd, influx_db, "batteryStatus", "epever", START_MS + 3 * HOUR_MS, START_MS + 4 * HOUR_MS)
    delete(influxd, influx_db, "energyStatistics", "rover", DAY_STARTS[1], DAY_STARTS[2])

    proc = kammthaar("reconcile", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Per day: points checked (7000 to 21000: the live and statistics points of the hours held, and the
    # daily and monthly statistics dated that day), missing, and the ranges re-sent.
    lines = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines() if line[:4].isdigit()}
    assert re.fullmatch(r"checked \d{4,5} points, missing 60 \(99\.\d\d % held\); 1 range\(s\) differed, 1 repaired",
                        lines[DAYS[0]].split(": ", 1)[1])
    assert re.fullmatch(r"checked \d{5} points, missing 144 \(99\.\d\d % held\); 24 range\(s\) differed, "
                        r"24 repaired", lines[DAYS[1]].split(": ", 1)[1])
    assert re.fullmatch(r"checked \d{5} points, missing 0 \(100\.00 % held\)", lines[DAYS[2]].split(": ", 1)[1])
    assert "reconciling" not in proc.stderr  # no progress bar without a terminal
    assert_cloud_equals_store(reader, db_path, SITE)
    repaired = repaired_by_day(db_path)
    assert sorted(repaired) == sorted(DAYS)
    assert repaired[DAYS[0]] == {f"batteryStatus epever {DAYS[0]} 19:00-20:00"}
    assert repaired[DAYS[1]] == {f"energyStatistics rover {DAYS[1]} {h:02d}:00-"
                                 + (f"{h + 1:02d}:00" if h < 23 else "24:00") for h in range(24)}
    assert repaired[DAYS[2]] == repaired[DAYS[3]] == set()

    again = kammthaar("reconcile", "--from", DAYS[1], "--to", DAYS[1], env=env)
    assert again.returncode == 0 and re.match(rf"{DAYS[1]}: checked \d+ points, missing 0 ", again.stdout)
    checked = sum(int(line.split()[2]) for line in lines.values())
    status = kammthaar("status", env=env)
    assert status.returncode == 0, status.stderr
    # Day 2 checked again found everything: of 52566 points, the 60 of day 1 were missing.
    assert f"cloud completeness {100 * (1 - 60 / checked):.2f} % over the last 30 days (4 days checked, " \
           "60 points were missing, 1 ranges repaired)" in status.stdout
    assert "last reconciliation: " in status.stdout and "the cloud matches" in status.stdout
    assert f"last repair ({DAYS[0]}): batteryStatus epever {DAYS[0]} 19:00-20:00\n" in status.stdout


def test_a_value_overwritten_in_the_cloud_is_found_by_its_checksum_and_repaired(replicated, db_path, influxd,
                                                                               influx_db):
    store, env = replicated
    reader = reader_of(influxd, influx_db)
    ts = START_MS + 30 * HOUR_MS + 17 * 60_000  # a live sample of epever, 22:17 on the second day
    point = reader.select("batteryStatus", ["voltage"], tags={"device": "epever"}, start_ms=ts, end_ms=ts + 1)
    assert len(point) == 1
    status, _ = influxd.write_lines(influx_db, f"batteryStatus,device=epever,site={SITE} voltage=99.5 {ts}")
    assert status == 204
    daily = reader.records(f"SELECT * FROM {ident('rollup_daily')} WHERE device = {literal('rover')} LIMIT 1")[0]
    status, _ = influxd.write_lines(
        influx_db, f"rollup_daily,device=rover,site={SITE} energy_generated_kwh=1234.5 {daily['time']}")
    assert status == 204

    proc = kammthaar("reconcile", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "missing 0 " in proc.stdout and "missing 1" not in proc.stdout  # nothing missing: changed
    assert "re-sent batteryStatus epever" in proc.stdout
    repaired = repaired_by_day(db_path)
    found = set().union(*repaired.values())
    assert found == {f"batteryStatus epever {DAYS[1]} 22:00-23:00", f"rollup_daily rover {daily['date']}"}
    assert_cloud_equals_store(reader, db_path, SITE)


def test_reconcile_shows_a_progress_bar_on_a_terminal(replicated):
    store, env = replicated
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    try:
        proc = subprocess.run([*KAMMTHAAR, "reconcile"], env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=slave, timeout=120, text=True)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"reconciling" in seen and b"days" in seen
    assert proc.stdout.count("\n") >= 5  # a line per day and the total, on stdout


def test_a_pass_pauses_after_each_day_only_while_the_store_has_a_backlog(replicated, db_path, influxd, influx_db):
    from edge_store.outbox import Outbox
    from replicator.policy import Policy
    from replicator.reconcile import Reconciler
    from tests.fixtures_influx import v1
    from tests.fixtures_reconcile import fill

    store, env = replicated
    pauses: list[float] = []
    outbox = Outbox(db_path)
    reconciler = Reconciler(outbox, reader_of(influxd, influx_db), Policy(v1(influxd, influx_db)), site=SITE,
                            pause_factor=3.0, sleep=pauses.append)
    assert len(reconciler.run_pass()) == 4 and pauses == []  # nothing to send: full speed
    fill(store, hours=1, start_ms=DAY_STARTS[3] + 12 * HOUR_MS, devices=("epever",))  # a backlog
    assert len(reconciler.run_pass()) == 4 and len(pauses) == 4 and all(p > 0 for p in pauses)
    outbox.close()
