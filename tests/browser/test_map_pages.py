"""The threat map and the JOC page in a real browser: Debian's chromium driven by Playwright,
against ``vigil serve`` on loopback with the demo scenario loaded, every request that would leave
loopback blocked and recorded.

The scenario's sensitive reports (sexual violence, exploitation and abuse) carry narratives and
exact points; the need-to-know check searches every byte the field officer's browser receives for
them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.demo import scenario
from server.maps import assets
from server.settings import Settings
from tests.sync.server_process import ServerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("VIGIL_TEST_DATABASE_URL")),
        reason="the browser tests serve the embedded demo database; they run in the SQLite pass",
    ),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser-test-password-42"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SENSITIVE = {"sexual_violence", "sexual_exploitation_abuse"}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (scripts/test installs Debian's chromium)")
    assets.check_installed(Settings.load().maps.assets_dir)
    data_dir = tmp_path_factory.mktemp("browser-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"VIGIL_DATA_DIR": str(data_dir), "VIGIL_DEMO_PASSWORD": PASSWORD})
    # Without the UCDP history: the field reports, patrols and sites make every layer appear.
    loaded = subprocess.run(
        [sys.executable, "-m", "server", "demo", "--load-only", "--ucdp-file", "/nonexistent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    server = ServerProcess(f"sqlite:///{data_dir / 'vigil.sqlite3'}", data_dir)
    os.environ["VIGIL_DEMO_PASSWORD"] = PASSWORD
    try:
        server.start()
        yield server
    finally:
        os.environ.pop("VIGIL_DEMO_PASSWORD", None)
        server.stop()


@dataclass
class Visit:
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


def _open(browser: Any, server: ServerProcess, username: str, path: str) -> tuple[Any, Visit]:
    visit = Visit()
    page = browser.new_page(viewport={"width": 1400, "height": 900})

    def guard(route: Any) -> None:
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            visit.blocked.append(route.request.url)
            route.abort()

    def keep_body(response: Any) -> None:
        # A redirect has no body to read; every other response's bytes are searched later.
        if not 300 <= response.status < 400:
            visit.bodies.append(response.body())

    page.route("**/*", guard)
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.on("response", keep_body)
    page.goto(f"{server.base_url}/login?next={path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page, visit


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_threat_map_loads_offline_with_every_layer(
    browser: Any, demo_server: ServerProcess
) -> None:
    page, visit = _open(browser, demo_server, "analyst", "/maps/threat")
    page.wait_for_function("window.vigilMapReady !== undefined", timeout=30_000)
    _screenshot(page, "threat-map-analyst.png")
    assert visit.console_errors == []
    assert visit.blocked == []
    assert page.url.endswith("/maps/threat")
    control = page.inner_text(".leaflet-control-layers")
    for layer in ("AOR level 1", "Protected sites", "Coverage gaps", "Incidents (clustered)"):
        assert layer in control
    # preferCanvas: the shapes are drawn on the overlay canvas, not as SVG elements.
    assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
    assert page.evaluate("window.vigilMapReady.cells") > 0


def test_the_joc_page_loads_offline(browser: Any, demo_server: ServerProcess) -> None:
    page, visit = _open(browser, demo_server, "commander", "/joc")
    _screenshot(page, "joc-commander.png")
    assert visit.console_errors == []
    assert visit.blocked == []
    assert "Top coverage gaps" in page.inner_text("body")
    assert page.locator("#alerts tr[data-alert-id]").count() >= 1
    assert page.locator("svg[role=img]").count() >= 1


def test_acknowledging_an_alert_from_the_joc_page(browser: Any, demo_server: ServerProcess) -> None:
    """The demo's commander (Sector Centre) has the Bambari companies' alerts: the red one is
    acknowledged with a note from the page, and the page says so after reloading."""
    page, visit = _open(browser, demo_server, "commander", "/joc")
    red = page.locator("#alerts tr.alert-red[data-state=open]").first
    alert_id = red.get_attribute("data-alert-id")
    assert alert_id is not None
    red.locator("input[name=note]").fill("QRF tasked from the COB")
    red.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "joc-after-acknowledge.png")
    assert f"Alert {alert_id} acknowledged" in page.inner_text("#alerts")
    row = page.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    assert row.get_attribute("data-state") == "acknowledged"
    assert "QRF tasked from the COB" in row.inner_text()
    assert visit.console_errors == [] and visit.blocked == []
    page.close()


def test_a_field_officer_receives_no_narrative_or_exact_point_of_a_sensitive_case(
    browser: Any, demo_server: ServerProcess
) -> None:
    reports = scenario.demo_field_reports(datetime.now(UTC))
    sensitive = [report for report in reports if report["category"] in SENSITIVE]
    assert sensitive, "the demo scenario holds sensitive reports"
    for path in ("/maps/threat", "/joc"):
        page, visit = _open(browser, demo_server, "officer", path)
        if path == "/maps/threat":
            page.wait_for_function("window.vigilMapReady !== undefined", timeout=30_000)
        received = b"\n".join(visit.bodies).decode("utf-8", "replace")
        assert len(received) > 1000
        for report in sensitive:
            assert report["narrative"][:60] not in received
            lon, lat = report["location"]["coordinates"]
            # The point as any JSON pair would carry it, in either axis order.
            for first, second in ((lat, lon), (lon, lat)):
                pair = rf"{re.escape(repr(first))}0*\s*,\s*{re.escape(repr(second))}0*(?!\d)"
                assert re.search(pair, received) is None, (path, report["category"])
        page.close()


def test_the_protection_officer_does_receive_the_exact_point(
    browser: Any, demo_server: ServerProcess
) -> None:
    """The positive control of the test above: the same byte search finds a sensitive case's
    exact point in the page of the one role that may see it, so its silence for the field
    officer means something."""
    reports = scenario.demo_field_reports(datetime.now(UTC))
    sensitive = [report for report in reports if report["category"] in SENSITIVE]
    page, visit = _open(browser, demo_server, "protection", "/maps/threat")
    page.wait_for_function("window.vigilMapReady !== undefined", timeout=30_000)
    received = b"\n".join(visit.bodies).decode("utf-8", "replace")
    found = 0
    for report in sensitive:
        lon, lat = report["location"]["coordinates"]
        for first, second in ((lat, lon), (lon, lat)):
            pair = rf"{re.escape(repr(first))}0*\s*,\s*{re.escape(repr(second))}0*(?!\d)"
            found += re.search(pair, received) is not None
    assert found >= 1
    page.close()
