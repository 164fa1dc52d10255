"""Who sees which site, through two real `kammthaar serve` sharing one real PostgreSQL (tests/fixtures_fleet.py).

A viewer asking for another site, by any parameter, through any data path, on either instance, gets the
answer of a site that does not exist, and never a value only another site's points carry.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.fixtures_fleet import HOME, INSTALLER, MARKERS, NOBODY, PASSWORD, VIEWER

INJECTIONS = [
    "cabin-morvan' OR site='van-lisa", "van-lisa' OR '1'='1", "x'; DROP DATABASE \"db\"; --", "' OR ''='",
    "/.*/", "cabin-morvan\\", "boat-ys' GROUP BY * --", "\\\"site\\\" =~ /.*/", "van-lisa,boat-ys", "*",
]
UNKNOWN = "no-such-site"


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def markers_of(*sites: str) -> set[str]:
    return {str(v) for s in sites for v in MARKERS[s]}


def login(server, user: str) -> str:
    return server.client().login(user, PASSWORD)


def site_paths(server) -> list[str]:
    """Every GET path taking `?site=` (from /openapi.json: a new data path is covered without editing here)."""
    spec = server.client().get("/openapi.json").json()
    return sorted(path for path, ops in spec["paths"].items()
                  if any(p["name"] == "site" and p["in"] == "query" for p in ops.get("get", {}).get("parameters", [])))


def nameless(resp, site: str) -> tuple[int, str]:
    """Status and body (decoded) with the site's name taken out (the only thing allowed to differ)."""
    text = json.dumps(resp.json()) if resp.headers.get("content-type") == "application/json" else resp.body.decode()
    return resp.status, text.replace(json.dumps(repr(site))[1:-1], "SITE")


def test_the_roles_and_sites_are_what_user_add_made_and_the_token_says_so(fleet):
    c = fleet.a.client()
    for user, role, sites in ((INSTALLER, "installer", None), (VIEWER, "viewer", [HOME]), (NOBODY, "viewer", [])):
        token = login(fleet.a, user)
        assert c.get("/user", token=token).json() == {"username": user, "role": role, "sites": sites}
        assert c.get("/check_auth", token=token).json() == {"authenticated": True, "role": role, "sites": sites}
    listed = fleet.user("list")
    assert listed.returncode == 0 and "victor\tviewer of van-lisa" in listed.stdout
    assert "ines\tinstaller (every site)" in listed.stdout
    bad = fleet.user("add", "x1", "--sites", "a")
    assert bad.returncode == 2 and "--role viewer" in bad.stderr


def test_a_viewer_gets_its_own_site_on_every_data_path(fleet):
    c = fleet.b.client()
    token = login(fleet.b, VIEWER)
    voltage = str(MARKERS[HOME][0])
    for query in ("", f"?site={HOME}"):
        resp = c.get(f"/battery/last{query}", token=token)
        assert resp.status == 200 and resp.json()["voltage"] == MARKERS[HOME][0]
    series = c.get("/battery/last/24h/voltage?raw=true", token=token)
    assert series.status == 200 and voltage in series.body.decode()


@pytest.fixture(scope="module")
def viewer(fleet):
    """victor's token (from instance a) and, per instance and data path, the answer for a site nobody has."""
    token = login(fleet.a, VIEWER)
    paths = site_paths(fleet.a)
    unknown = {(server.port, path): server.client().get(f"{path}?site={UNKNOWN}", token=token)
               for server in (fleet.a, fleet.b) for path in paths}
    return token, paths, unknown


@pytest.mark.parametrize("other", ["cabin-morvan", "boat-ys", *INJECTIONS])
def test_a_viewer_never_gets_another_sites_data_whatever_the_parameter(fleet, viewer, other):
    token, paths, unknown = viewer
    others = markers_of("cabin-morvan", "boat-ys")
    for server in (fleet.a, fleet.b):  # the token of instance a replayed on instance b
        c = server.client()
        for path in paths:
            resp = c.get(f"{path}?site={q(other)}", token=token)
            text = resp.body.decode()
            assert not any(m in text for m in others), (path, other, text[:300])
            if resp.status != 400:  # 400: a name that is no site name at all (control characters)
                assert nameless(resp, other) == nameless(unknown[server.port, path], UNKNOWN), (path, other)
            if path != "/serveur/status":
                assert resp.status in (400, 404), (path, other, resp.status)
        # The site given twice, ours first: never the other's data.
        resp = c.get(f"/battery/last?site={HOME}&site={q(other)}", token=token)
        assert not any(m in resp.body.decode() for m in others)


def test_another_site_is_404_exactly_as_a_site_that_does_not_exist(fleet):
    c = fleet.a.client()
    token = login(fleet.a, VIEWER)
    denied = c.get("/battery/last?site=boat-ys", token=token)
    unknown = c.get(f"/battery/last?site={UNKNOWN}", token=token)
    assert denied.status == unknown.status == 404
    assert denied.json() == {"error": "not_found", "message": "site 'boat-ys' is not served here"}
    assert nameless(denied, "boat-ys") == nameless(unknown, UNKNOWN)
    assert denied.headers.get("x-data-source") == unknown.headers.get("x-data-source")
    # /sites/{site} and its page: the same.
    for path in ("/sites/", "/fleet/"):
        assert nameless(c.get(path + "boat-ys", token=token), "boat-ys") == \
            nameless(c.get(path + UNKNOWN, token=token), UNKNOWN)
    # Without a token, /serveur/status answers our own site only.
    anonymous = fleet.a.client()
    assert "boat-ys" not in anonymous.get("/serveur/status?site=boat-ys").json()["message"].replace(
        "'boat-ys'", "")
    assert nameless(anonymous.get("/serveur/status?site=boat-ys"), "boat-ys") == \
        nameless(anonymous.get(f"/serveur/status?site={UNKNOWN}"), UNKNOWN)


def test_an_installer_sees_every_site(fleet):
    c = fleet.b.client()
    token = login(fleet.a, INSTALLER)
    for site, (volts, _) in MARKERS.items():
        resp = c.get(f"/battery/last?site={site}", token=token)
        assert resp.status == 200 and resp.json()["voltage"] == volts, site


def test_grant_and_revoke_hold_at_once_on_every_instance(fleet):
    token = login(fleet.a, NOBODY)
    assert fleet.b.client().get(f"/battery/last?site={HOME}", token=token).status == 404
    assert fleet.user("grant", NOBODY, "--sites", f"{HOME},boat-ys").returncode == 0
    try:
        for server in (fleet.a, fleet.b):
            assert server.client().get(f"/battery/last?site={HOME}", token=token).status == 200
            assert server.client().get("/user", token=token).json()["sites"] == ["boat-ys", HOME]
    finally:
        done = fleet.user("revoke", NOBODY, "--sites", f"{HOME},boat-ys")
        assert done.returncode == 0, done.stderr
    assert fleet.b.client().get("/battery/last?site=boat-ys", token=token).status == 404
    assert "sees no site now" in done.stderr


def test_a_site_is_seen_whatever_model_its_controllers_are(store):
    """The fleet's newest-point query reads a field that every model's live row writes: a site with only
    a Renogy Rover is seen as much as one with an EPEVER (points rendered from rows in a real store)."""
    from api.fleet import Scope, list_statements, live_stamps
    from edge_store.catalogue import MODELS, absent
    from edge_store.registers import LIVE
    from replicator.points import LIVE_STREAM, Renderer
    from replicator.influxql import ident
    from tests.samples import expected_unit_values

    ((measurement, field),) = live_stamps()
    assert f"SELECT {ident(field)} FROM {ident(measurement)} " in list_statements(Scope(None), 1_780_000_000_000)[1]
    renderer = Renderer("boat", models={name: name for name in MODELS})
    for name, catalogue in MODELS.items():
        served = expected_unit_values(name, 1, 1)
        values = catalogue.derive(LIVE, {r.name: served[r.name] for r in catalogue.registers if r.group == LIVE})
        store.insert_sample(LIVE, 1_780_000_000_000, True, name, {**dict.fromkeys(absent(catalogue, LIVE)), **values})
        lines = renderer.lines(LIVE_STREAM, store.latest(LIVE, name))
        assert any(ln.startswith(f"{measurement},device={name},site=boat ") and f" {field}=" in ln.replace(",", " ")
                   for ln in lines), (name, lines)
