"""A few paths of spec/api.md end to end: the real collector fills the store from the frozen simulator,
the real replicator fills influxd, and `kammthaar serve` (gunicorn) answers over HTTP, for both sources.

The whole contract, path by path and field by field, runs in-process in tests/test_api_resources.py;
these check that the same answers come out of the real processes: an object, a series, the rollups.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.fixtures_api import expected_objects, get_ok
from tests.samples import expected_values

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


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




def source_of(server, local_api) -> str:
    return "local" if server is local_api else "cloud"


def test_battery_realtime_and_last_equal_what_the_device_serves(server, local_api, client, ev):
    source = source_of(server, local_api)
    want = expected_objects(ev, source)["battery"]
    for mode in ("realtime", "last"):
        got = get_ok(client, f"/battery/{mode}", source)
        if mode == "last":
            assert ISO.match(got.pop("date"))
        assert got == want, mode
        for key, value in want.items():
            assert type(got[key]) is type(value), (mode, key)


def test_series_default_is_five_minute_means_of_what_the_device_serves(client, server, local_api, ev):
    points = get_ok(client, "/battery/last/24h/voltage", source_of(server, local_api))
    assert 1 <= len(points) <= 288
    times = [int(datetime.fromisoformat(p["time"].replace("Z", "+00:00")).timestamp() * 1000) for p in points]
    assert times == sorted(set(times)) and all(t % 300_000 == 0 for t in times)
    assert all(set(p) == {"time", "value"} and p["value"] == ev["battery_voltage"] for p in points)


def test_statistics_daily_come_from_the_collectors_rollups(client, server, local_api, ev):
    """The collector's own rollups (its zone, its gap limit), as both sources answer them."""
    days = get_ok(client, "/statistics/daily", source_of(server, local_api))
    assert len(days) == 1 and days[0]["samples"] >= 20
    assert days[0]["battery_voltage_min"] == days[0]["battery_voltage_max"] == ev["battery_voltage"]
    assert 0 < days[0]["covered_s"] <= days[0]["samples"] * 0.5
    assert (days[0]["device_generated_kwh"], days[0]["device_consumed_kwh"]) == \
        (ev["generated_today"], ev["consumed_today"])


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


LAST_PATHS = ["/battery/last", "/batterie/last", "/solarData/last", "/loadData/last", "/controller/last",
              "/charging/last", "/discharging/last", "/battery/parameters/last", "/statistics/daily/last",
              "/statistics/energy/last", "/breadcrumb/last"]


def test_every_last_says_when_its_record_was_taken(client, server, local_api):
    """`last` is what the dashboard shows when live data is stale: its `date` tells how old it is."""
    source = source_of(server, local_api)
    now_ms = datetime.now().timestamp() * 1000
    for path in LAST_PATHS:
        body = get_ok(client, path, source)
        assert ISO.match(body["date"]), (path, body.get("date"))
        taken = datetime.fromisoformat(body["date"].replace("Z", "+00:00")).timestamp() * 1000
        assert 0 < taken <= now_ms + 1000, path  # a record of this run, not a date of the future
    described = client.get("/openapi.json").json()["paths"]
    assert sorted(p for p in described if p.endswith("/last")) == sorted(LAST_PATHS)
    for path in LAST_PATHS:
        schema = described[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "date" in schema["required"] and schema["properties"]["date"]["format"] == "date-time", path


def test_serveur_infos_temperature_is_a_number_or_null(local_api):
    c = local_api.client()
    resp = c.get("/serveur/infos", token=c.login())
    assert resp.status == 200
    temperature = resp.json()["temperature"]
    assert temperature is None or type(temperature) is float  # never "N/A": a JSON client formats it
    schema = c.get("/openapi.json").json()["paths"]["/serveur/infos"]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"]["properties"]["temperature"] == \
        {"type": "number", "nullable": True, "description": "°C; null where the machine has no thermal sensor"}
