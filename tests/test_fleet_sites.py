"""/sites and /sites/{site} over the fleet of tests/fixtures_fleet.py: triage order, filters, health."""

from __future__ import annotations

from tests.fixtures_fleet import HOME, INSTALLER, NOBODY, PASSWORD, QUIET, VIEWER


def sites(server, user: str, query: str = "") -> dict:
    c = server.client()
    resp = c.get(f"/sites{query}", token=c.login(user, PASSWORD))
    assert resp.status == 200, resp.body[:300]
    return resp.json()


def test_sites_come_in_triage_order_critical_then_stale_then_backlog(fleet):
    body = sites(fleet.a, INSTALLER)
    order = [s["site"] for s in body["sites"]]
    # van-lisa: an active critical alert; cabin-morvan: not seen for 3 days; boat-ys: a backlog
    # (its warning was resolved); aa-calm: nothing to do, though first by name.
    assert order == ["van-lisa", "cabin-morvan", "boat-ys", QUIET]
    assert body["count"] == 4
    by = {s["site"]: s for s in body["sites"]}
    assert by["van-lisa"]["alerts"]["critical"] == 1 and by["van-lisa"]["alerts"]["firing"][0]["rule"] == "battery_low"
    assert by["van-lisa"]["stale"] is False and by["van-lisa"]["devices"][0]["fresh"] is True
    assert by["cabin-morvan"]["stale"] is True and by["cabin-morvan"]["age_s"] > 2 * 86_400
    assert by["cabin-morvan"]["devices"][0]["fresh"] is False
    assert by["boat-ys"]["alerts"] == {"active": 0, "critical": 0, "firing": []}
    assert by["boat-ys"]["heartbeat"]["backlog_rows"] == 5000 and by["boat-ys"]["heartbeat"]["completeness"] == 0.99
    assert by[QUIET]["devices"][0]["last_sample"] is None and by[QUIET]["known"] is True
    assert by["van-lisa"]["health"] == "/sites/van-lisa"


def test_q_filters_by_name_and_a_viewer_lists_only_its_sites(fleet):
    assert [s["site"] for s in sites(fleet.b, INSTALLER, "?q=A-")["sites"]] == [QUIET]  # case-insensitive
    assert [s["site"] for s in sites(fleet.b, INSTALLER, "?q=i")["sites"]] == ["van-lisa", "cabin-morvan"]
    assert sites(fleet.b, INSTALLER, "?q=nothing-like-it")["sites"] == []
    assert [s["site"] for s in sites(fleet.b, VIEWER)["sites"]] == [HOME]
    assert sites(fleet.b, VIEWER, "?q=boat")["sites"] == []
    nothing = sites(fleet.b, NOBODY)
    assert nothing["count"] == 0 and nothing["sites"] == []


def test_one_sites_health_over_the_last_days(fleet):
    c = fleet.a.client()
    token = c.login(VIEWER, PASSWORD)
    resp = c.get(f"/sites/{HOME}?days=2", token=token)
    assert resp.status == 200, resp.body[:300]
    body = resp.json()
    assert body["site"] == HOME and body["days"] == 2 and body["bucket"] == "1h"
    assert body["summary"]["site"] == HOME and body["summary"]["alerts"]["critical"] == 1
    assert [h["backlog_rows"] for h in body["heartbeat"]] == [0]
    assert body["heartbeat"][-1]["version"] == "0.1.0"  # the software the site runs, per hour
    assert body["devices"] == [{"device": "epever", "heartbeats": 1, "fresh_share": 1.0, "new_errors": 0,
                                "worst_sample_age_s": 1.5}]
    assert [(e["rule"], e["severity"], e["state"]) for e in body["alert_events"]] == [
        ("battery_low", "critical", "firing")]
    # The stale site: seen 3 days ago, so nothing in the last 2 days, but known.
    stale = c.get("/sites/cabin-morvan?days=2", token=c.login(INSTALLER, PASSWORD)).json()
    assert stale["heartbeat"] == [] and stale["summary"]["stale"] is True
    for bad in ("?days=0", "?days=91", "?days=x"):
        resp = c.get(f"/sites/{HOME}{bad}", token=token)
        assert resp.status == 400 and "days" in resp.json()["message"]


def test_the_fleet_pages_are_not_cached_sniffed_or_framed(fleet):
    c = fleet.a.client()
    token = c.login(VIEWER, PASSWORD)
    for path in ("/fleet", f"/fleet/{HOME}"):
        resp = c.get(path, token=token)
        assert resp.status == 200, resp.body[:300]
        assert resp.headers["cache-control"] == "no-store" and resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"], path
