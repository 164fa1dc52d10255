"""Every path of spec/api.md, over HTTP to `kammthaar serve`, for both sources, field by field.

The store is filled by the real collector from the frozen simulator (every poll serves the same values),
so each object must equal what the simulator serves, decoded as the contract says; the cloud server
answers from the influxd database the real replicator filled from that store.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_store.catalogue import status_words as status
from tests.fixtures_api import USER, ZONE, expected_values

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def ev():
    return expected_values()


@pytest.fixture(scope="module", params=["local", "cloud"])
def server(request, edge, local_api, cloud_api):
    """Each test runs against the API answering from the store, then against the cloud-only API."""
    if request.param == "cloud":
        edge.replicate()  # what the store has now: fresh for the cloud's realtime (its intervals are long)
        return cloud_api
    return local_api


@pytest.fixture(scope="module")
def client(server):
    c = server.client()
    c.token = c.login()
    return c


def get_ok(client, path: str, source: str):
    resp = client.get(path, token=client.token)
    assert resp.status == 200, (path, resp.status, resp.body[:300])
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.source == source, (path, resp.headers)
    assert resp.body, path
    return resp.json()


def source_of(server, local_api) -> str:
    return "local" if server is local_api else "cloud"


def expected_objects(ev: dict, source: str) -> dict:
    """Each family's object, from the simulator's values and the contract's names."""
    params = {k: round(float(ev[k]), 2) for k in (
        "rated_charging_current", "rated_load_current", "battery_capacity", "temp_compensation_coefficient",
        "over_voltage_disconnect", "charging_limit_voltage", "over_voltage_reconnect", "equalize_charging_voltage",
        "boost_charging_voltage", "float_charging_voltage", "boost_reconnect_voltage", "low_voltage_reconnect",
        "under_voltage_recover", "under_voltage_warning", "low_voltage_disconnect", "discharging_limit_voltage",
        "equalize_duration", "boost_duration", "battery_discharge", "battery_charge")}
    params.update({k: status.enum_name(k, ev[k]) for k in ("battery_rated_voltage", "battery_type",
                                                             "default_load_mode", "charging_mode")})
    # A live register: the catalogue writes it on the live batteryStatus point, so the cloud knows it too.
    params["real_rated_voltage"] = int(round(ev["battery_real_rated_voltage"]))
    return {
        "battery": {"voltage": ev["battery_voltage"], "current": ev["battery_current"], "power": ev["battery_power"],
                    "state_of_charge": float(ev["state_of_charge"]), "temperature": ev["battery_temperature"],
                    "status": status.battery_status(ev["battery_status"])},
        "battery/parameters": params,
        "solarData": {"voltage": ev["pv_voltage"], "current": ev["pv_current"], "power": ev["pv_power"],
                      "maximum_voltage_today": ev["maximum_pv_voltage_today"],
                      "minimum_voltage_today": ev["minimum_pv_voltage_today"]},
        "loadData": {"voltage": ev["load_voltage"], "current": ev["load_current"], "power": ev["load_power"]},
        "controller": {"temperature": ev["controller_temperature"],
                       "device_over_temperature": ev["device_over_temperature"],
                       "current_device_time": ev["device_time"]},
        "charging": status.charging_status(ev["charging_equipment_status"]),
        "discharging": status.discharging_status(ev["discharging_equipment_status"]),
        "statistics/daily": {"maximum_battery_voltage_today": ev["maximum_battery_voltage_today"],
                             "minimum_battery_voltage_today": ev["minimum_battery_voltage_today"],
                             "day_time": not ev["night"], "night_time": ev["night"]},
        "statistics/energy": {k: ev[k] for k in ("consumed_today", "consumed_this_month", "consumed_this_year",
                                                 "total_consumed", "generated_today", "generated_this_month",
                                                 "generated_this_year", "total_generated")},
        "breadcrumb": {"day_time": not ev["night"], "current_device_time": ev["device_time"]},
    }


FAMILIES = ["battery", "battery/parameters", "solarData", "loadData", "controller", "charging", "discharging",
            "statistics/daily", "statistics/energy", "breadcrumb"]


@pytest.mark.parametrize("family", FAMILIES)
def test_realtime_and_last_objects_equal_what_the_device_serves(server, local_api, client, ev, family):
    source = source_of(server, local_api)
    want = expected_objects(ev, source)[family]
    for mode in ("realtime", "last"):
        got = get_ok(client, f"/{family}/{mode}", source)
        if family == "battery" and mode == "last":
            assert ISO.match(got.pop("date"))
        assert got == want, (family, mode)
        # Same names and same JSON types, field by field (13.0 stays a number, flags stay booleans).
        for key, value in want.items():
            assert type(got[key]) is type(value), (family, mode, key)


def test_real_rated_voltage_reaches_the_cloud_equal_to_the_local_answer(edge, local_api, cloud_api):
    # Once a live register that never left the edge (the cloud answered null): the catalogue sends it.
    edge.replicate()
    answers = {}
    for name, server in (("local", local_api), ("cloud", cloud_api)):
        c = server.client()
        token = c.login()
        for mode in ("realtime", "last"):
            resp = c.get(f"/battery/parameters/{mode}", token=token)
            assert resp.status == 200 and resp.source == name, (name, mode, resp.status)
            answers[name, mode] = resp.json()["real_rated_voltage"]
    assert answers["cloud", "last"] is not None
    assert answers["cloud", "last"] == answers["local", "last"] == answers["cloud", "realtime"] == 12
    assert type(answers["cloud", "last"]) is int


def test_brief_battery_paths_answer_the_same_battery(client, server, local_api, ev):
    source = source_of(server, local_api)
    want = expected_objects(ev, source)["battery"]
    assert get_ok(client, "/batterie/realtime", source) == want
    last = get_ok(client, "/batterie/last", source)
    assert ISO.match(last.pop("date")) and last == want


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
def test_series_default_is_five_minute_means_of_the_last_24h(client, server, local_api, ev, path):
    points = get_ok(client, path, source_of(server, local_api))
    check_series(points, round(float(ev[SERIES[path]]), 2), 300_000, 288)


@pytest.mark.parametrize("every,every_ms,limit", [("1m", 60_000, 1440), ("5m", 300_000, 288),
                                                   ("15m", 900_000, 96), ("1h", 3_600_000, 24)])
def test_series_every_chooses_the_bucket(client, server, local_api, ev, every, every_ms, limit):
    points = get_ok(client, f"/battery/last/24h/voltage?every={every}", source_of(server, local_api))
    check_series(points, ev["battery_voltage"], every_ms, limit)


def test_series_raw_returns_every_sample(client, server, local_api, ev):
    source = source_of(server, local_api)
    raw = get_ok(client, "/battery/last/24h/voltage?raw=true", source)
    check_series(raw, ev["battery_voltage"], None, 10**6)
    minutes = get_ok(client, "/battery/last/24h/voltage?every=1m", source)
    assert len(raw) >= 20 > len(minutes)  # many samples, few one-minute buckets
    assert get_ok(client, "/battery/last/24h/voltage?raw=false", source) == \
        get_ok(client, "/battery/last/24h/voltage", source)
    assert len(get_ok(client, "/battery/last/24h/voltage?raw=true&every=1h", source)) >= len(raw)  # raw wins


@pytest.mark.parametrize("query", ["every=2m", "every=5m%29%20fill(none)", "raw=yes", "raw=true%27%20OR",
                                   "site=van%0Atest"])
def test_bad_series_parameters_are_400_saying_what_was_wrong(client, query):
    resp = client.get(f"/battery/last/24h/voltage?{query}", token=client.token)
    assert resp.status == 400
    body = resp.json()
    assert set(body) == {"error", "message"} and body["error"] == "bad_request"
    assert query.split("=")[0] in body["message"]


def local_days(n: int) -> list[str]:
    today = datetime.now(ZoneInfo(ZONE)).date()
    return [(today - timedelta(days=k)).isoformat() for k in range(n - 1, -1, -1)]


STAT_KEYS = ["battery_voltage_min", "battery_voltage_max", "pv_voltage_min", "pv_voltage_max", "soc_min", "soc_max",
             "battery_temperature_min", "battery_temperature_max", "energy_generated_kwh", "energy_consumed_kwh",
             "battery_charge_ah", "battery_discharge_ah", "samples", "covered_s", "device_generated_kwh",
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
    for k in ("energy_generated_kwh", "energy_consumed_kwh", "battery_charge_ah", "battery_discharge_ah"):
        assert isinstance(row[k], float) and row[k] >= 0 and round(row[k], 3) == row[k]
    # Charging at a constant positive current: charge, never discharge.
    assert (row["battery_charge_ah"] > 0) == (ev["battery_current"] > 0) and row["battery_discharge_ah"] == 0
    assert (row["device_generated_kwh"], row["device_consumed_kwh"]) == (ev[device_kwh[0]], ev[device_kwh[1]])


def test_statistics_daily_and_monthly_come_from_the_rollups(client, server, local_api, ev):
    source = source_of(server, local_api)
    today = local_days(1)[0]
    days = get_ok(client, "/statistics/daily", source)
    assert [d["date"] for d in days] == [today]
    check_statistics(days[0], "date", today, ev, ("generated_today", "consumed_today"))
    assert get_ok(client, f"/statistics/daily?from={today}&to={today}", source)[0]["date"] == today
    assert get_ok(client, "/statistics/daily?from=2020-01-01&to=2020-01-31", source) == []
    assert get_ok(client, "/statistics/daily?from=2026-06-02&to=2026-06-01", source) == []  # an empty period
    # The collector keeps polling: today's figures move between two requests, its days do not.
    assert [d["date"] for d in get_ok(client, "/statistics/daily?from=0001-01-01&to=9999-12-31", source)] == [today]
    months = get_ok(client, "/statistics/monthly", source)
    assert [m["month"] for m in months] == [today[:7]]
    check_statistics(months[0], "month", today[:7], ev, ("generated_this_month", "consumed_this_month"))
    assert [m["month"] for m in get_ok(client, f"/statistics/monthly?from={today[:7]}&to={today[:7]}", source)] \
        == [today[:7]]


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=yesterday", "to=2026-1-1", "to=2026-02-30"])
def test_statistics_bad_dates_are_400(client, query):
    resp = client.get(f"/statistics/daily?{query}", token=client.token)
    assert resp.status == 400 and resp.json()["error"] == "bad_request"
    resp = client.get("/statistics/monthly?from=2026-13", token=client.token)
    assert resp.status == 400 and "from" in resp.json()["message"]


def test_energy_7days_is_the_last_7_local_days_oldest_first(client, server, local_api, ev):
    body = get_ok(client, "/statistics/energy/7days", source_of(server, local_api))
    days = local_days(7)
    assert list(body) == days
    assert body[days[-1]] == {"consumed_today": ev["consumed_today"], "generated_today": ev["generated_today"]}
    for day in days[:-1]:  # before the store existed: no data, not zero
        assert body[day] == {"consumed_today": None, "generated_today": None}


def test_serveur_status_says_live_data_is_fresh_without_a_token(server, local_api):
    resp = server.client().get("/serveur/status")
    assert resp.status == 200 and resp.source == source_of(server, local_api)
    body = resp.json()
    assert body["status"] is True and isinstance(body["message"], str) and "fresh" in body["message"]


def test_serveur_infos_describes_the_collectors_machine(client, server, local_api):
    resp = client.get("/serveur/infos", token=client.token)
    if server is local_api:
        assert resp.status == 200 and resp.source == "local"
        body = resp.json()
        assert list(body) == ["cpu_usage", "memory_usage", "disk_usage", "temperature"]
        for k in ("cpu_usage", "memory_usage", "disk_usage"):
            assert isinstance(body[k], float) and 0 <= body[k] <= 100
        assert body["temperature"] == "N/A" or isinstance(body["temperature"], float)
    else:  # a cloud-only server does not run next to the collector
        assert resp.status == 503 and int(resp.headers["retry-after"]) > 0
        assert resp.json()["error"] == "unavailable"


def test_server_time_user_and_check_auth(client):
    assert ISO.match(get_ok(client, "/server-time", None)["server_time"])
    assert get_ok(client, "/user", None) == {"username": USER}
    assert get_ok(client, "/check_auth", None) == {"authenticated": True}
    resp = client.get("/check_auth")
    assert resp.status == 200 and resp.json() == {"authenticated": False}


def test_the_other_site_is_not_served_from_the_store(local_api):
    c = local_api.client()
    token = c.login()
    # Local holds only its own site; the cloud holds no data for this one: nothing, never our data.
    resp = c.get("/battery/last?site=another-van", token=token)
    assert resp.status == 404 and resp.json()["error"] == "not_found"
    resp = c.get("/battery/last/24h/voltage?site=another-van", token=token)
    assert resp.status == 200 and resp.source == "cloud" and resp.json() == []
