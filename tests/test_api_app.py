"""Operating the API, in-process (falcon.testing, fixed clock): the one error shape, /health, /openapi.json
and the offline docs page, CORS. tests/test_api_ops.py runs /metrics across gunicorn's workers, the
command line, and a few of these through `kammthaar serve`."""

from __future__ import annotations

import re

import pytest

from tests.fixtures_api import assert_health, assert_one_error_shape, error_answers
from tests.fixtures_app import ORIGIN

CONTRACT_PATHS = [
    "/alerts", "/login", "/authentification/login", "/refresh", "/logout", "/check_auth", "/user",
    "/batterie/realtime", "/batterie/last", "/batterie/last/24hAmperage", "/batterie/last/24hVoltage",
    "/batterie/last/24hPower", "/batterie/last/24hTemp", "/batterie/last/24hPourcent",
    "/battery/realtime", "/battery/last", *(f"/battery/last/24h/{m}" for m in
                                            ("voltage", "current", "power", "temperature", "state_of_charge")),
    "/battery/parameters/realtime", "/battery/parameters/last", "/solarData/realtime", "/solarData/last",
    *(f"/solarData/last/24h/{m}" for m in ("voltage", "current", "power")), "/loadData/realtime", "/loadData/last",
    *(f"/loadData/last/24h/{m}" for m in ("voltage", "current", "power")), "/controller/realtime",
    "/controller/last", "/charging/realtime", "/charging/last", "/discharging/realtime", "/discharging/last",
    "/statistics/daily/realtime", "/statistics/daily/last", "/statistics/energy/realtime",
    "/statistics/energy/last", "/statistics/energy/7days", "/breadcrumb/realtime", "/breadcrumb/last",
    "/serveur/status", "/serveur/infos", "/server-time", "/statistics/daily", "/statistics/monthly", "/health",
    "/metrics", "/openapi.json", "/api/swagger-ui", "/sites", "/sites/{site}", "/fleet", "/fleet/{site}", "/devices",
]


@pytest.fixture(scope="module")
def client(site):
    c = site.local.client()
    c.token = c.login()
    return c


# -- the one error shape -----------------------------------------------------------------------------

def test_every_error_is_json_in_one_shape(client, site):
    cloud = site.cloud.client()
    answers = error_answers(client, cloud)
    assert_one_error_shape(answers)
    assert answers[405].json()["message"] == "DELETE is not allowed on /battery/last"
    assert answers[401].headers["www-authenticate"] == 'Bearer realm="kammthaar"'
    # JSON whatever the client prefers.
    html = client.get("/nope", headers={"Accept": "text/html"})
    assert html.status == 404 and html.headers["content-type"] == "application/json"
    # Falcon's own 400 (a body that is not JSON) in the same shape.
    bad = client.post("/login", body=b"{", headers={"Content-Type": "application/json"})
    assert bad.status == 400 and bad.headers["content-type"] == "application/json"
    assert set(bad.json()) == {"error", "message"} and bad.json()["error"] == "bad_request"


# -- /health ---------------------------------------------------------------------------------------------

def test_health_reports_store_collector_replicator_and_cloud_without_a_token(site):
    body = site.local.client().get("/health").json()
    cloud = site.cloud.client().get("/health").json()
    assert_health(body, cloud)


# -- /openapi.json and the docs page -------------------------------------------------------------------------

def test_openapi_describes_exactly_the_contracts_paths(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.0")
    assert sorted(spec["paths"]) == sorted(CONTRACT_PATHS)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"], (path, method)
            if op["security"]:
                assert "401" in op["responses"], path
            if method == "get" and path not in ("/api/swagger-ui",):
                resp = client.get(path, token=client.token)
                assert resp.status in map(int, op["responses"]), (path, resp.status)


def test_docs_page_works_offline_from_our_own_files(site):
    c = site.local.client()
    page = c.get("/api/swagger-ui")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert c.get("/api/swagger-ui/").body == page.body
    html = page.body.decode()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(refs) >= 4
    for ref in refs:
        assert ref.startswith("/api/swagger-ui/"), ref  # no CDN, nothing from another host
        asset = c.get(ref)
        assert asset.status == 200 and len(asset.body) > 0, ref
    assert "https://" not in html and "http://" not in html
    init = c.get("/api/swagger-ui/kammthaar-init.js").body.decode()
    assert 'url: "/openapi.json"' in init and "validatorUrl: null" in init
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert c.get("/api/swagger-ui/../../etc/passwd").status == 404


# -- CORS -------------------------------------------------------------------------------------------

def test_cors_allows_the_configured_origin_with_credentials_and_answers_preflight(client):
    pre = client.request("OPTIONS", "/battery/last", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status == 204 and pre.body == b""
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert "GET" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert "Origin" in pre.headers["vary"]
    real = client.get("/battery/last", token=client.token, headers={"Origin": ORIGIN})
    assert real.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Data-Source" in real.headers["access-control-expose-headers"]
    for other in ("http://evil.example", "http://localhost:4201", "http://localhost:4200.evil.example"):
        resp = client.get("/battery/last", token=client.token, headers={"Origin": other})
        assert "access-control-allow-origin" not in resp.headers, other
