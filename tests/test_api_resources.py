"""Every data path of spec/api.md, in-process (falcon.testing, fixed clock), for both sources, field by field.

The store holds what the frozen simulator serves, stored through the real Store as the collector stores
it, so each object must equal what the simulator serves, decoded as the contract says; the cloud app
answers from the influxd database the real replicator filled from that store (tests/fixtures_app.py).
tests/test_api_contract.py runs a few of these through `kammthaar serve`, fed by the real collector.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.fixtures_api import USER, expected_objects, get_ok
from tests.fixtures_app import INTERVAL_S, LIVE_SAMPLES, NEWEST_AGE_MS
from tests.samples import expected_values

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def ev():
    return expected_values()


@pytest.fixture(scope="module", params=["local", "cloud"])
def app(request, site):
    """Each test runs against the app answering from the store, then against the cloud-only app."""
    return site.local if request.param == "local" else site.cloud


@pytest.fixture(scope="module")
def client(app):
    c = app.client()
    c.token = c.login()
    return c




FAMILIES = ["battery", "battery/parameters", "solarData", "loadData", "controller", "charging", "discharging",
            "statistics/daily", "statistics/energy", "breadcrumb"]


@pytest.mark.parametrize("family", FAMILIES)
def test_realtime_and_last_objects_equal_what_the_device_serves(app, client, ev, family):
    want = expected_objects(ev, app.source)[family]
    for mode in ("realtime", "last"):
        got = get_ok(client, f"/{family}/{mode}", app.source)
        if mode == "last":  # every /last says when its record was taken
            assert ISO.match(got.pop("date"))
        assert got == want, (family, mode)
        # Same names and same JSON types, field by field (13.0 stays a number, flags stay booleans).
        for key, value in want.items():
            assert type(got[key]) is type(value), (family, mode, key)


def test_brief_battery_paths_answer_the_same_battery(client, app, ev):
    want = expected_objects(ev, app.source)["battery"]
    assert get_ok(client, "/batterie/realtime", app.source) == want
    last = get_ok(client, "/batterie/last", app.source)
    assert ISO.match(last.pop("date")) and last == want


def test_realtime_is_503_with_retry_after_once_two_poll_intervals_passed(site):
    """The same store a moment later by the app's clock: live data is stale, `last` still answers."""
    later = site.app("local", clock_ms=lambda: site.now_ms - NEWEST_AGE_MS + 2 * int(INTERVAL_S * 1000) + 1)
    c = later.client()
    token = c.login()
    resp = c.get("/battery/realtime", token=token)
    assert resp.status == 503 and resp.headers["retry-after"] == "1"
    assert resp.json()["error"] == "unavailable" and "use /last" in resp.json()["message"]
    assert c.get("/battery/last", token=token).status == 200
    assert c.get("/battery/parameters/realtime", token=token).status == 200  # the settings: fresh for 1 s
    assert c.get("/serveur/status").json()["status"] is False


def test_realtime_allows_for_the_collectors_commit_window(site):
    """A collector with a commit window stores a sample up to the window after reading it: the same store
    at the same moment is fresh for it, and stale once two intervals plus the window have passed."""
    window_s = 1.0
    limit_ms = 2 * int(INTERVAL_S * 1000) + int(window_s * 1000)
    for age_ms, fresh in ((2 * int(INTERVAL_S * 1000) + 1, True), (limit_ms + 1, False)):
        app = site.app("local", clock_ms=lambda: site.now_ms - NEWEST_AGE_MS + age_ms, commit_window_s=window_s)
        c = app.client()
        token = c.login()
        assert (c.get("/battery/realtime", token=token).status == 200) is fresh
        assert c.get("/serveur/status").json()["status"] is fresh
        health = c.get("/health").json()["collector"]
        assert health["fresh"] is fresh and health["fresh_within_s"] == limit_ms / 1000
    assert f"at most {limit_ms / 1000:g} s" in c.get("/battery/realtime", token=token).json()["message"]


SERIES = {
    "/batterie/last/24hAmperage": "battery_current", "/batterie/last/24hVoltage": "battery_voltage",
    "/batterie/last/24hPower": "battery_power", "/batterie/last/24hTemp": "battery_temperature",
    "/batterie/last/24hPourcent": "state_of_charge",
    "/battery/last/24h/voltage": "battery_voltage", "/battery/last/24h/current": "battery_current",
    "/battery/last/24h/power": "battery_power", "/battery/last/24h/temperature": "battery_temperature",
    "/battery/last/24h/state_of_charge": "state_of_charge",
    "/solarData/last/24h/voltage": "pv_voltage", "/solarData/last/24h/current": "pv_current",
    "/solarData/last/24h/power": "pv_power",
    "/loadData/last/24h/voltage": "load_voltage", "/loadData/last/24h/current": "load_current",
    "/loadData/last/24h/power": "load_power",
}


def check_series(points: list, value: float, every_ms: int | None, limit: int) -> None:
    assert 1 <= len(points) <= limit
    times = [ms(p["time"]) for p in points]
    assert times == sorted(set(times))  # oldest first, one point per time
    for p in points:
        assert set(p) == {"time", "value"} and ISO.match(p["time"])
        assert isinstance(p["value"], float) and p["value"] == value
    if every_ms:
        assert all(t % every_ms == 0 for t in times)


@pytest.mark.parametrize("path", SERIES)
def test_series_default_is_five_minute_means_of_the_last_24h(client, app, ev, path):
    points = get_ok(client, path, app.source)
    check_series(points, round(float(ev[SERIES[path]]), 2), 300_000, 288)


@pytest.mark.parametrize("every,every_ms,limit", [("1m", 60_000, 1440), ("5m", 300_000, 288),
                                                   ("15m", 900_000, 96), ("1h", 3_600_000, 24)])
def test_series_every_chooses_the_bucket(client, app, ev, every, every_ms, limit):
    points = get_ok(client, f"/battery/last/24h/voltage?every={every}", app.source)
    check_series(points, ev["battery_voltage"], every_ms, limit)


def test_series_raw_returns_every_sample(client, app, ev):
    raw = get_ok(client, "/battery/last/24h/voltage?raw=true", app.source)
    check_series(raw, ev["battery_voltage"], None, 10**6)
    minutes = get_ok(client, "/battery/last/24h/voltage?every=1m", app.source)
    assert len(raw) >= 20 > len(minutes)  # many samples, few one-minute buckets
    assert len(raw) == LIVE_SAMPLES
    assert get_ok(client, "/battery/last/24h/voltage?raw=false", app.source) == \
        get_ok(client, "/battery/last/24h/voltage", app.source)
    assert len(get_ok(client, "/battery/last/24h/voltage?raw=true&every=1h", app.source)) >= len(raw)  # raw wins


@pytest.mark.parametrize("query", ["every=2m", "every=5m%29%20fill(none)", "raw=yes", "raw=true%27%20OR",
                                   "site=van%0Atest"])
def test_bad_series_parameters_are_400_saying_what_was_wrong(client, query):
    resp = client.get(f"/battery/last/24h/voltage?{query}", token=client.token)
    assert resp.status == 400
    body = resp.json()
    assert set(body) == {"error", "message"} and body["error"] == "bad_request"
    assert query.split("=")[0] in body["message"]


STAT_KEYS = ["battery_voltage_min", "battery_voltage_max", "pv_voltage_min", "pv_voltage_max", "soc_min", "soc_max",
             "battery_temperature_min", "battery_temperature_max", "energy_generated_kwh", "energy_consumed_kwh",
             "battery_charge_ah", "battery_discharge_ah", "battery_charge_kwh", "battery_discharge_kwh",
             "samples", "covered_s", "device_generated_kwh",
             "device_consumed_kwh"]


def check_statistics(row: dict, key: str, period: str, ev: dict, device_kwh: tuple[str, str]) -> None:
    assert list(row) == [key, *STAT_KEYS]
    assert row[key] == period
    assert row["battery_voltage_min"] == row["battery_voltage_max"] == ev["battery_voltage"]
    assert row["pv_voltage_min"] == row["pv_voltage_max"] == ev["pv_voltage"]
    assert row["soc_min"] == row["soc_max"] == ev["state_of_charge"]
    assert row["battery_temperature_min"] == row["battery_temperature_max"] == ev["battery_temperature"]
    assert isinstance(row["samples"], int) and row["samples"] >= 20
    assert 0 < row["covered_s"] <= row["samples"] * 0.5
    for k in ("energy_generated_kwh", "energy_consumed_kwh", "battery_charge_ah", "battery_discharge_ah",
              "battery_charge_kwh", "battery_discharge_kwh"):
        assert isinstance(row[k], float) and row[k] >= 0 and round(row[k], 3) == row[k]
    # Charging at a constant positive current: charge, never discharge.
    assert (row["battery_charge_ah"] > 0) == (ev["battery_current"] > 0) and row["battery_discharge_ah"] == 0
    assert row["battery_discharge_kwh"] == 0  # (the charge in kWh of a few seconds rounds to 0.000)
    assert (row["device_generated_kwh"], row["device_consumed_kwh"]) == (ev[device_kwh[0]], ev[device_kwh[1]])


def test_statistics_daily_and_monthly_come_from_the_rollups(client, app, site, ev):
    today = site.local_days(1)[0]
    days = get_ok(client, "/statistics/daily", app.source)
    assert [d["date"] for d in days] == [today]
    check_statistics(days[0], "date", today, ev, ("generated_today", "consumed_today"))
    assert days[0]["samples"] == LIVE_SAMPLES
    assert get_ok(client, f"/statistics/daily?from={today}&to={today}", app.source)[0]["date"] == today
    assert get_ok(client, "/statistics/daily?from=2020-01-01&to=2020-01-31", app.source) == []
    assert get_ok(client, "/statistics/daily?from=2026-06-02&to=2026-06-01", app.source) == []  # an empty period
    assert [d["date"] for d in get_ok(client, "/statistics/daily?from=0001-01-01&to=9999-12-31", app.source)] \
        == [today]
    months = get_ok(client, "/statistics/monthly", app.source)
    assert [m["month"] for m in months] == [today[:7]]
    check_statistics(months[0], "month", today[:7], ev, ("generated_this_month", "consumed_this_month"))
    assert [m["month"] for m in get_ok(client, f"/statistics/monthly?from={today[:7]}&to={today[:7]}", app.source)] \
        == [today[:7]]


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=yesterday", "to=2026-1-1", "to=2026-02-30"])
def test_statistics_bad_dates_are_400(client, query):
    resp = client.get(f"/statistics/daily?{query}", token=client.token)
    assert resp.status == 400 and resp.json()["error"] == "bad_request"
    resp = client.get("/statistics/monthly?from=2026-13", token=client.token)
    assert resp.status == 400 and "from" in resp.json()["message"]


def test_energy_7days_is_the_last_7_local_days_oldest_first(client, app, site, ev):
    body = get_ok(client, "/statistics/energy/7days", app.source)
    days = site.local_days(7)
    assert list(body) == days
    assert body[days[-1]] == {"consumed_today": ev["consumed_today"], "generated_today": ev["generated_today"]}
    for day in days[:-1]:  # before the store existed: no data, not zero
        assert body[day] == {"consumed_today": None, "generated_today": None}


def test_serveur_status_says_live_data_is_fresh_without_a_token(app):
    resp = app.client().get("/serveur/status")
    assert resp.status == 200 and resp.source == app.source
    body = resp.json()
    assert body["status"] is True and isinstance(body["message"], str) and "fresh" in body["message"]


def test_serveur_infos_describes_the_collectors_machine(client, app):
    resp = client.get("/serveur/infos", token=client.token)
    if app.source == "local":
        assert resp.status == 200 and resp.source == "local"
        body = resp.json()
        assert list(body) == ["cpu_usage", "memory_usage", "disk_usage", "temperature"]
        for k in ("cpu_usage", "memory_usage", "disk_usage"):
            assert isinstance(body[k], float) and 0 <= body[k] <= 100
        # A number, or null on a machine without a thermal sensor: never a string.
        assert body["temperature"] is None or isinstance(body["temperature"], float)
    else:  # a cloud-only server does not run next to the collector
        assert resp.status == 503 and int(resp.headers["retry-after"]) > 0
        assert resp.json()["error"] == "unavailable"


def test_server_time_user_and_check_auth(client, site):
    body = get_ok(client, "/server-time", None)
    assert ISO.match(body["server_time"]) and ms(body["server_time"]) == site.now_ms  # the app's clock
    assert get_ok(client, "/user", None) == {"username": USER, "role": "installer", "sites": None}
    assert get_ok(client, "/check_auth", None) == {"authenticated": True, "role": "installer", "sites": None}
    resp = client.get("/check_auth")
    assert resp.status == 200 and resp.json() == {"authenticated": False}


def test_the_other_site_is_not_served_from_the_store(site):
    c = site.local.client()
    token = c.login()
    # Local holds only its own site; the cloud holds no data for this one: nothing, never our data.
    resp = c.get("/battery/last?site=another-van", token=token)
    assert resp.status == 404 and resp.json()["error"] == "not_found"
    resp = c.get("/battery/last/24h/voltage?site=another-van", token=token)
    assert resp.status == 200 and resp.source == "cloud" and resp.json() == []


def test_machine_temperature_is_degrees_or_none_without_a_sensor(tmp_path):
    from api.machine import Machine

    sensor = tmp_path / "temp"
    sensor.write_text("45123\n")  # what /sys/class/thermal/thermal_zone0/temp holds: m°C
    assert Machine(str(tmp_path / "k.db"), thermal=sensor).temperature() == 45.1
    assert Machine(str(tmp_path / "k.db"), thermal=tmp_path / "no-sensor").temperature() is None
