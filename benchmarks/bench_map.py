"""Threat-map weight and first paint with 50,000 hexagon cells (issue 7: ≤ 5 MB, ≤ 2 s).

Vigil's page carries cells as H3 ids drawn in the browser by h3-js. The baseline, built in the
same run, is the GIS way: the same cells as a folium GeoJSON layer of polygons. Both pages are
self-contained (libraries inlined, as ``vigil map --out`` writes them) and opened from disk in
Debian's chromium (Playwright), so no server time is counted; "first paint" is the time from
navigation start until the map script has drawn every layer (``window.vigilMapReady.ms``) for
Vigil's page, and until the load event for the baseline.

    .venv/bin/python benchmarks/bench_map.py [--cells 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import folium
import numpy as np

from geo import cells as geo_cells
from server.maps import render
from server.maps.service import MapQuery, ThreatMap
from server.settings import Settings

CHROMIUM = "/usr/bin/chromium"


def synthetic_cells(count: int, resolution: int = 8) -> list[int]:
    """``count`` distinct cells over central CAR (real H3 cells, random points)."""
    rng = np.random.default_rng(7)
    found: set[int] = set()
    while len(found) < count:
        lat = rng.uniform(4.0, 8.5, count)
        lon = rng.uniform(16.0, 23.0, count)
        found.update(int(c) for c in geo_cells.point_cells(lat, lon, resolution))
    return sorted(found)[:count]


def vigil_page(cells: list[int], settings: Settings) -> str:
    rng = np.random.default_rng(11)
    classes = rng.choice([-3, -2, -1, 1, 2, 3], len(cells))
    rows = [
        [geo_cells.cell_to_string(c), int(k), "", int(n), round(float(z), 2), False, False]
        for c, k, n, z in zip(
            cells,
            classes,
            rng.integers(1, 40, len(cells)),
            rng.normal(0, 3, len(cells)),
            strict=True,
        )
    ]
    data = ThreatMap(
        title="Benchmark: 50k cells",
        generated_at=datetime.now(UTC),
        query=MapQuery(),
        audience="full",
        bounds=(4.0, 16.0, 8.5, 23.0),
        hotspot_resolution=8,
        hotspots=rows,
    )
    return render.render_threat_map(data, settings.maps, inline=True)


def geojson_page(cells: list[int], settings: Settings) -> str:
    features = []
    for cell in cells:
        ring = [[round(lng, 5), round(lat, 5)] for lat, lng in geo_cells.cell_boundary(cell)]
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "properties": {"cell": geo_cells.cell_to_string(cell)},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    figure = render.OfflineMap(location=[6.2, 19.5], zoom_start=7, tiles=None, maxZoom=18)
    folium.GeoJson({"type": "FeatureCollection", "features": features}, name="cells").add_to(figure)
    return render.inline_assets(figure.get_root().render(), settings.maps.assets_dir)


def first_paint_ms(browser: object, path: Path, vigil: bool) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    started = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load", timeout=120_000)
    if vigil:
        page.wait_for_function("window.vigilMapReady !== undefined", timeout=120_000)
        ms = float(page.evaluate("window.vigilMapReady.ms"))
    else:
        ms = float(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
    wall = (time.perf_counter() - started) * 1000
    page.close()
    return max(ms, 0.0) if ms else wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    settings = Settings.load()
    cells = synthetic_cells(args.cells)
    with tempfile.TemporaryDirectory() as tmp:
        pages = {
            "vigil (H3 ids, h3-js)": (Path(tmp) / "vigil.html", vigil_page(cells, settings), True),
            "baseline (folium GeoJSON polygons)": (
                Path(tmp) / "geojson.html",
                geojson_page(cells, settings),
                False,
            ),
        }
        for path, html, _ in pages.values():
            path.write_text(html)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            results = {}
            for name, (path, _html, vigil) in pages.items():
                times = [first_paint_ms(browser, path, vigil) for _ in range(args.repeat)]
                results[name] = (path.stat().st_size, statistics.median(times))
            browser.close()
    print(f"{args.cells:,} cells at res 8, median of {args.repeat} loads in chromium")
    for name, (size, ms) in results.items():
        print(f"  {name:<36} {size / 1e6:7.2f} MB   first paint {ms / 1000:6.2f} s")
    (vigil_size, vigil_ms), (base_size, base_ms) = results.values()
    print(
        f"  ratio baseline/vigil: bytes {base_size / vigil_size:.1f}x, "
        f"time {base_ms / vigil_ms:.1f}x"
    )
    print(
        f"  targets: <= 5 MB -> {'met' if vigil_size <= 5e6 else 'MISSED'}; "
        f"<= 2 s -> {'met' if vigil_ms <= 2000 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
