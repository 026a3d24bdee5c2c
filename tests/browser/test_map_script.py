"""The map script (server/maps/static/vigil-map.js) in a real browser, on its own: cells sent as
H3 ids become hexagons, a click on one opens its popup with escaped text, and nothing is
fetched from anywhere. Independent of any scenario's data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geo import cells as geo_cells
from server.maps import assets
from server.maps.render import STATIC_DIR
from server.settings import Settings

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page_html() -> str:
    root = Settings.load().maps.assets_dir
    assets.check_installed(root)
    leaflet_js = assets.read_asset(root, "leaflet", "dist/leaflet.js").decode()
    leaflet_css = assets.read_asset(root, "leaflet", "dist/leaflet.css").decode()
    h3_js = assets.read_asset(root, "h3-js", "dist/h3-js.umd.js").decode()
    ours = (Path(STATIC_DIR) / "vigil-map.js").read_text()
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<style>{leaflet_css}</style><style>#m{{width:800px;height:600px}}</style>"
        f"<script>{leaflet_js}</script><script>{h3_js}</script><script>{ours}</script>"
        "</head><body><div id='m'></div></body></html>"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def test_a_hotspot_hexagon_opens_its_popup_on_click(browser: Any, page_html: str) -> None:
    lat, lng = 5.75, 20.67
    cell = geo_cells.cell_to_string(int(geo_cells.point_cells([lat], [lng], 6)[0]))
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_content(page_html)
    page.evaluate(
        """([cell, lat, lng]) => {
            const map = L.map("m", { preferCanvas: true }).setView([lat, lng], 9);
            const group = L.featureGroup().addTo(map);
            VigilMap.hotspots(group, [[cell, 3, "new_hot", 12, 4.2, true, false],
                                      [cell, 0, "none", 0, 0, false, false]]);
            window.testMap = map;
        }""",
        [cell, lat, lng],
    )
    box = page.locator("#m").bounding_box()
    assert box is not None
    point = page.evaluate(
        "([lat, lng]) => { const p = testMap.latLngToContainerPoint([lat, lng]);"
        " return [p.x, p.y]; }",
        [lat, lng],
    )
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert "Hotspot cell" in text and "hot, 99 %" in text and "new hot" in text and cell in text
    assert page.evaluate("VigilMap.esc('<b>')") == "&lt;b&gt;"
    assert errors == []
    assert [u for u in requests if not u.startswith(("about:", "data:"))] == []
    page.close()
