"""Migration 0008 (device models): up, down and up again with the samples of several devices of two models;
row ids never reused, the views kept."""

from __future__ import annotations

import sqlite3

from edge_store import migrate
from edge_store.catalogue import RENOGY_ROVER, absent
from edge_store.registers import LIVE
from edge_store.store import Store
from tests.samples import LIVE_VALUES, T0


def _columns(path) -> dict[str, bool]:
    """live_samples' columns -> NOT NULL."""
    with sqlite3.connect(path) as conn:
        return {row[1]: bool(row[3]) for row in conn.execute("PRAGMA table_info(live_samples)")}


def _rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, device, ts_ms, battery_voltage, battery_status FROM live_samples "
                            "ORDER BY id").fetchall()


def _rover_live() -> dict:
    values = {**dict.fromkeys(absent(RENOGY_ROVER, LIVE)), **{k: LIVE_VALUES[k] for k in (
        "battery_voltage", "battery_current", "battery_power", "state_of_charge", "battery_temperature",
        "controller_temperature", "load_voltage", "load_current", "load_power", "pv_voltage", "pv_current",
        "pv_power", "device_over_temperature")}}
    return {**values, "charging_current": 1.5, "load_state": 0x80, "charging_state": 2, "fault_bits": 0}


def test_0008_up_down_up_keeps_every_tracer_sample_and_never_reuses_an_id(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path, "0007")
    columns = ", ".join(LIVE_VALUES)
    with sqlite3.connect(path) as conn:  # two Tracers' samples, as 0007's collector wrote them
        for i, device in enumerate(("roof", "side", "roof")):
            conn.execute(f"INSERT INTO live_samples (ts_ms, ntp_synced, device, {columns}) VALUES "
                         f"(?, 1, ?, {', '.join('?' * len(LIVE_VALUES))})", (T0 + i, device, *LIVE_VALUES.values()))
    before = _rows(path)

    migrate.upgrade(path)
    assert _rows(path) == before
    assert _columns(path)["battery_status"] is False and "fault_bits" in _columns(path)
    with sqlite3.connect(path) as conn:  # the rebuilt tables keep AUTOINCREMENT and their indexes
        for table in ("live_samples", "device_statistics", "device_settings"):
            assert "AUTOINCREMENT" in conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            assert {r[1] for r in conn.execute(f"PRAGMA index_list({table})")} == {f"ix_{table}_ts", f"ix_{table}_device_ts"}
    with Store(path) as store:
        for i in range(2):
            store.insert_sample(LIVE, T0 + 10 + i, True, "rover", _rover_live())
        newest = store.insert_sample(LIVE, T0 + 20, True, "side", LIVE_VALUES)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM live_samples WHERE id = ?", (newest,))
        assert [r[0] for r in conn.execute("SELECT device FROM v_latest ORDER BY device")] == ["roof", "rover", "side"]

    migrate.downgrade(path, "0007")
    assert _rows(path) == before  # the Rover's rows cannot be held by 0007; the Tracers' are all there
    assert _columns(path)["battery_status"] is True and "fault_bits" not in _columns(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'live_samples'").fetchone() == (newest,)
        assert conn.execute("SELECT count(*) FROM v_latest").fetchone() == (2,)

    migrate.upgrade(path)
    assert _rows(path) == before
    with Store(path) as store:
        assert store.insert_sample(LIVE, T0 + 30, True, "rover", _rover_live()) == newest + 1
        assert store.latest(LIVE)["battery_status"] is None
