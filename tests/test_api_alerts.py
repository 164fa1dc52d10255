"""/alerts, and the active alerts in /health and /metrics, in-process on a real store (no cloud)."""

import pytest

from api.app import Settings, create_app
from api.sources import LocalSource, Sources
from api.users import Users
from edge_store.alerts import Engine, load_alerts
from edge_store.alerts.events import iso
from edge_store.store import Store, now_ms
from tests.fixtures_api import DEVICE, SECRET, SITE, add_user
from tests.fixtures_app import AppClient

T0 = now_ms() // 60_000 * 60_000 - 3_600_000  # an hour ago, on the minute (tokens are checked on the real clock)
RULES = {"builtin": {"device_silent": {"enabled": False}},
         "rules": [{"name": "pv_dark", "field": "collector.silent_polls", "above": 1, "clear_at": 0},
                   {"name": "gone", "field": "collector.silent_polls", "above": 2, "clear_at": 0,
                    "severity": "critical"}]}


@pytest.fixture
def alerts_app(db_path):
    store = Store(db_path, alerts=Engine(load_alerts(RULES)))
    for i, n in enumerate((2, 0, 5)):  # pv_dark fires, resolves, fires again with gone
        store.alerts.observe(store.db, "collector.silent_polls", DEVICE, n, T0 + i * 60_000)
    store.close()
    add_user(db_path)
    users = Users(db_path)
    users.connect()
    settings = Settings(site=SITE, device=DEVICE, timezone="UTC", jwt_secret=SECRET, interval_s=5,
                        slow_interval_s=60, cookie_secure=False, store_path=str(db_path))
    client = AppClient(create_app(settings, Sources([LocalSource(str(db_path), site=SITE, device=DEVICE)]), users,
                                  clock_ms=now_ms))
    yield client
    users.close()


def test_alerts_newest_first_firing_only_and_since(alerts_app):
    token = alerts_app.login()
    r = alerts_app.get("/alerts", token=token)
    assert r.status == 200, r.body
    every = r.json()
    assert [(e["rule"], e["state"]) for e in every] == [("gone", "firing"), ("pv_dark", "firing"),
                                                        ("pv_dark", "resolved"), ("pv_dark", "firing")]
    assert every[0]["since"] == iso(T0 + 120_000) and every[0]["since"].endswith("+00:00")
    assert every[0]["value"] == 5.0
    assert {k for k in every[0]} >= {"rule", "device", "severity", "state", "since", "value"}
    firing = alerts_app.get("/alerts?state=firing", token=token).json()
    assert sorted(e["rule"] for e in firing) == ["gone", "pv_dark"]
    since = iso(T0 + 90_000).replace("+00:00", "Z")
    recent = alerts_app.get(f"/alerts?since={since}", token=token).json()
    assert len(recent) == 2


@pytest.mark.parametrize("query, says", [("state=resolved", "state"), ("since=yesterday", "since"),
                                         ("since=2025-11-24T16:00:00", "since")])
def test_bad_parameters_are_400_json_naming_them(alerts_app, query, says):
    r = alerts_app.get(f"/alerts?{query}", token=alerts_app.login())
    assert r.status == 400 and says in r.json()["message"]


def test_health_and_metrics_carry_the_active_alerts(alerts_app):
    health = alerts_app.get("/health").json()
    assert health["alerts"]["active"] == 2 and health["alerts"]["critical"] == 1
    text = alerts_app.get("/metrics", token=alerts_app.login()).body.decode()
    assert 'kammthaar_alerts_active{rule="gone",severity="critical"} 1.0' in text


def test_alerts_of_one_device_and_only_of_the_sites_the_user_sees(alerts_app, db_path):
    token = alerts_app.login()
    mine = alerts_app.get(f"/alerts?device={DEVICE}", token=token)
    assert mine.status == 200 and len(mine.json()) == 4 and {e["device"] for e in mine.json()} == {DEVICE}
    unknown = alerts_app.get("/alerts?device=attic", token=token)
    assert unknown.status == 404 and "attic" in unknown.json()["message"]
    # An installer sees every site, but this store holds this site's alerts only: another site is not served
    # here (the 404 of every data path, never a 5xx).
    other = alerts_app.get("/alerts?site=elsewhere", token=token)
    assert other.status == 404 and other.json()["message"] == "site 'elsewhere' is not served here"
    users = Users(db_path)
    users.add("vic", "a long password", role="viewer", sites=("elsewhere",))
    users.close()
    viewer = alerts_app.login("vic", "a long password")
    assert alerts_app.get("/alerts", token=viewer).status == 404  # not one of the viewer's sites
    assert alerts_app.get(f"/alerts?site={SITE}", token=viewer).status == 404
