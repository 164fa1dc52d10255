"""The fleet page (/fleet) in a real headless Chromium (Debian's `chromium`, driven by Playwright), through
a real `kammthaar serve` over the fleet of tests/fixtures_fleet.py, at a phone's size.

The screenshots are kept as test artifacts: in $KAMMTHAAR_ARTIFACTS when set (CI keeps that directory),
else in the test's pytest tmp directory (its path is printed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures_fleet import INSTALLER, PASSWORD, QUIET, VIEWER

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    where = Path(os.environ.get("KAMMTHAAR_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def logged_in_page(browser, server, user: str):
    """A phone-sized page whose context holds the user's login cookies (POST /login, as the dashboard does)."""
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    resp = context.request.post(f"{server.url}/login", data={"username": user, "password": PASSWORD})
    assert resp.status == 200, resp.text()
    return context.new_page()


def test_the_fleet_page_shows_a_row_per_site_in_triage_order_on_a_phone(fleet, browser, artifacts):
    page = logged_in_page(browser, fleet.a, INSTALLER)
    resp = page.goto(f"{fleet.a.url}/fleet")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/html")
    rows = page.locator("tr.site")
    assert [rows.nth(k).get_attribute("data-site") for k in range(rows.count())] == [
        "van-lisa", "cabin-morvan", "boat-ys", QUIET]
    assert "1 critical" in rows.nth(0).inner_text() and "stale" in rows.nth(1).inner_text()
    assert "backlog" in rows.nth(2).inner_text() and "5000" in rows.nth(2).inner_text()
    assert "ok" in rows.nth(3).inner_text()
    # Readable on a phone: nothing wider than the screen, the page refreshes itself, no outside resource.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "60"
    assert page.evaluate("[...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href)"
                         ".filter(u => u && !u.startsWith(location.origin))") == []
    shot = artifacts / "fleet-installer-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 1000
    # Each site links to its health.
    page.click("text=van-lisa")
    assert page.url.endswith("/fleet/van-lisa") and page.locator("h1").inner_text() == "van-lisa"
    assert "battery_low" in page.locator("#alerts").inner_text()
    assert "version 0.1.0" in page.locator("p.meta").first.inner_text()  # the newest heartbeat's
    page.screenshot(path=str(artifacts / "fleet-site-phone.png"), full_page=True)
    page.context.close()


def test_a_viewer_sees_only_its_site_and_no_token_no_page(fleet, browser):
    page = logged_in_page(browser, fleet.b, VIEWER)
    page.goto(f"{fleet.b.url}/fleet")
    assert [e.get_attribute("data-site") for e in page.locator("tr.site").all()] == ["van-lisa"]
    assert page.goto(f"{fleet.b.url}/fleet/boat-ys").status == 404
    page.context.close()
    anonymous = browser.new_page()
    assert anonymous.goto(f"{fleet.b.url}/fleet").status == 401
    anonymous.close()


def test_without_a_login_a_browser_gets_a_page_saying_how_and_other_clients_json(fleet, browser, artifacts):
    page = browser.new_page(viewport=PHONE)
    for path in ("/fleet", "/fleet/van-lisa?days=2"):
        resp = page.goto(f"{fleet.a.url}{path}")
        assert resp.status == 401 and resp.headers["content-type"].startswith("text/html")
        assert page.locator("h1").inner_text() == "Log in first"
        assert "dashboard" in page.locator("#login").inner_text()
        assert page.locator("#login a").get_attribute("href") == path
        assert "tr.site" not in page.content() and "van-lisa</td>" not in page.content()
    page.screenshot(path=str(artifacts / "fleet-login-needed-phone.png"), full_page=True)
    # An expired or forged cookie: the same page.
    page.context.add_cookies([{"name": "access_token_cookie", "value": "not.a.token", "url": fleet.a.url}])
    resp = page.goto(f"{fleet.a.url}/fleet")
    assert resp.status == 401 and page.locator("h1").inner_text() == "Log in first"
    page.close()
    # A script or curl (no Accept: text/html): the JSON 401 of every other path.
    resp = fleet.a.client().get("/fleet")
    assert resp.status == 401 and resp.json()["error"] == "unauthorized"
