"""`kammthaar demo --history DAYS`: the simulator's model of the past days, stored through the Store and its
rollups before the demo starts, so the 24 h charts and the statistics answer at once."""

from __future__ import annotations

import re

from datetime import datetime, timezone

import pytest

from edge_store import migrate
from edge_store.errors import DecodeError
from edge_store.catalogue.epever_tracer import REGISTERS as EPEVER_TRACER
from edge_store.registers import CLOCK, LIVE, SETTINGS, STATS, decode_register, encode
from edge_store.rollups import RollupSettings
from edge_store.simulator import history
from edge_store.simulator.model import SolarDay
from edge_store.store import Store
from tests.fixtures_api import Client
from tests.support import KAMMTHAAR, clean_env, free_port, kammthaar

NOW_MS = 1_782_043_200_000  # 2026-06-21 12:00 UTC: a fixed clock


def test_history_is_the_models_past_at_the_collectors_intervals_with_rollups(tmp_path):
    db = tmp_path / "k.db"
    migrate.upgrade(db)
    with Store(db, rollups=RollupSettings("UTC", 15.0)) as store:
        counts = history.fill(store, 1, interval_s=5, slow_interval_s=60, device="epever", clock_ms=lambda: NOW_MS)
        assert counts == {LIVE: 17_280, STATS: 1_440, SETTINGS: 1_440, CLOCK: 1_440}
        rows = store.rows(LIVE)
        assert rows[0]["ts_ms"] == NOW_MS - 86_400_000 and rows[-1]["ts_ms"] == NOW_MS - 5_000
        assert all(b["ts_ms"] - a["ts_ms"] == 5_000 for a, b in zip(rows, rows[1:]))
        # As the reader decodes them: the device's resolution; a day with a sun and a night.
        assert all(round(r["battery_voltage"], 2) == r["battery_voltage"] for r in rows)
        assert max(r["pv_power"] for r in rows) > 100 and min(r["pv_power"] for r in rows) == 0
        # Again: nothing is stored twice, only what is newer than the newest sample.
        assert history.fill(store, 1, interval_s=5, slow_interval_s=60, device="epever",
                            clock_ms=lambda: NOW_MS + 60_000)[LIVE] == 12
        with store.db.reading("test") as conn:
            days = conn.execute("SELECT day, samples, energy_generated_kwh FROM rollup_daily ORDER BY day").fetchall()
            minutes = conn.execute("SELECT count(*) FROM rollup_minute").fetchone()[0]
    assert [d[0] for d in days] == ["2026-06-20", "2026-06-21"]
    assert sum(d[1] for d in days) == 17_292 and all(d[2] > 0 for d in days)  # integrated: no gaps
    assert minutes >= 1_440


def test_history_values_are_what_the_reader_decodes_from_the_simulators_words():
    now_s = [NOW_MS / 1000]
    model = SolarDay(start=datetime.fromtimestamp(NOW_MS / 1000, timezone.utc), clock=lambda: now_s[0])
    readers = {r.name: history.as_read(r) for r in EPEVER_TRACER}
    for step in range(200):  # a day, every 432 s
        now_s[0] = NOW_MS / 1000 + step * 432
        snapshot = model.snapshot()
        for reg in EPEVER_TRACER:
            assert readers[reg.name](snapshot[reg.name]) == decode_register(reg, encode(reg, snapshot[reg.name]))
    volts = next(r for r in EPEVER_TRACER if r.name == "battery_voltage")
    with pytest.raises(DecodeError):  # what the device cannot report is no row, as on the bus
        history.as_read(volts)(volts.high + 1)


def test_demo_with_history_answers_charts_and_statistics_at_once(tmp_path, processes):
    api_port, sim_port = free_port(), free_port()
    env = clean_env(store_path=tmp_path / "demo.db", modbus_port=f"rtu+tcp://127.0.0.1:{sim_port}",
                    api_listen=f"127.0.0.1:{api_port}")  # the default intervals: 5 s, 60 s
    proc = processes.start([*KAMMTHAAR, "demo", "--history", "1"], "demo", env=env, stdout=True)
    try:
        out = proc.wait_for(lambda: "stop:" in proc.output() and proc.output(), 90, "no stop: line on stdout")
        stored = re.search(r"history: 1 day of the simulator's model stored \((\d+) live samples\)", out)
        assert stored and int(stored.group(1)) == 17_280, out  # a day at the default 5 s
        url = re.search(r"API:\s+(http://\S+)", out).group(1)
        user, password = re.search(r"login:\s+user '([^']+)', password '([^']+)'", out).groups()
        c = Client(url)
        token = c.login(user, password)
        series = c.get("/battery/last/24h/voltage", token=token)
        assert series.status == 200 and len(series.json()) >= 280  # 5-minute means of the whole 24 h
        days = c.get("/statistics/daily", token=token)
        assert days.status == 200 and sum(d["samples"] for d in days.json()) >= 17_280
        assert sum(d["energy_generated_kwh"] for d in days.json()) > 0
        last = c.get("/solarData/last", token=token).json()
        assert "date" in last
    finally:
        proc.interrupt()
    assert proc.returncode == 0


def test_demo_history_refuses_what_it_cannot_do(tmp_path):
    env = clean_env(store_path=tmp_path / "demo.db", store_retention_days="7",
                    modbus_port=f"rtu+tcp://127.0.0.1:{free_port()}", api_listen=f"127.0.0.1:{free_port()}")
    bad = kammthaar("demo", "--history", "-1", env=env)
    assert bad.returncode == 2 and "--history" in bad.stderr
    too_old = kammthaar("demo", "--history", "30", env=env, timeout_s=60)
    assert too_old.returncode != 0 and "--history 30" in too_old.stderr and "retention_days" in too_old.stderr
