"""The threat map as a folium (Leaflet) page that needs no internet.

folium writes Leaflet's and its plugins' tags pointing at CDNs; here every such tag points at
Vigil's own ``/static`` routes instead (or, for a briefing export, carries the file inline),
and no folium element that pulls jQuery, Bootstrap or icon fonts is used. The layers are drawn
in the browser by ``static/vigil-map.js`` from compact rows (:mod:`server.maps.service`).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium.plugins import MarkerCluster
from jinja2 import Template
from markupsafe import escape

from server.maps import assets
from server.maps.service import ThreatMap
from server.settings import MapSettings
from server.web.views import ICON_LINK

__all__ = ["STATIC_DIR", "render_threat_map"]

STATIC_DIR = Path(__file__).with_name("static")
VENDOR = "/static/vendor"
OWN = "/static/vigil"


def _vendor(package: str, file: str) -> str:
    return f"{VENDOR}/{package}/{file}"


class OfflineMap(folium.Map):
    """folium's Map with Leaflet from Vigil's own routes, and nothing else."""

    default_js = [
        ("leaflet", _vendor("leaflet", "dist/leaflet.js")),
        ("h3", _vendor("h3-js", "dist/h3-js.umd.js")),
        ("vigil", f"{OWN}/vigil-map.js"),
    ]
    default_css = [
        ("leaflet_css", _vendor("leaflet", "dist/leaflet.css")),
        ("vigil_css", f"{OWN}/vigil-map.css"),
    ]


class OfflineMarkerCluster(MarkerCluster):
    default_js = [
        ("markerclusterjs", _vendor("leaflet.markercluster", "dist/leaflet.markercluster.js"))
    ]
    default_css = [
        ("markerclustercss", _vendor("leaflet.markercluster", "dist/MarkerCluster.css")),
        (
            "markerclusterdefaultcss",
            _vendor("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
        ),
    ]


def _json(value: Any) -> str:
    """JSON safe inside a <script>: no ``</script>``, no HTML comment, whatever the data."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Rows(MacroElement):
    """Rows drawn into the parent layer by one ``VigilMap`` function."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "VigilMap.{{ this.function }}({{ this._parent.get_name() }}, {{ this.rows }}"
        "{% if this.extra %}, {{ this.extra }}{% endif %});"
        "{% endmacro %}"
    )

    def __init__(self, function: str, rows: Any, extra: Any = None) -> None:
        super().__init__()
        self._name = "VigilRows"
        self.function = function
        self.rows = _json(rows)
        self.extra = _json(extra) if extra is not None else None


class _Control(MacroElement):
    """A fixed HTML panel (title, legend) as a Leaflet control."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "(function () { var control = L.control({position: {{ this.position }}});"
        "control.onAdd = function () { var div = L.DomUtil.create('div', {{ this.css }});"
        "div.innerHTML = {{ this.html }}; L.DomEvent.disableClickPropagation(div); return div; };"
        "control.addTo({{ this._parent.get_name() }}); })();"
        "{% endmacro %}"
    )

    def __init__(self, html: str, position: str, css: str) -> None:
        super().__init__()
        self._name = "VigilControl"
        self.html = _json(html)
        self.position = _json(position)
        self.css = _json(css)


class _Ready(MacroElement):
    _template = Template(
        "{% macro script(this, kwargs) %}"
        "VigilMap.ready({{ this._parent.get_name() }});"
        "{% endmacro %}"
    )


def _panel(data: ThreatMap, links: dict[str, str]) -> str:
    q = data.query
    lines = [
        f"<h1>{escape(data.title)}</h1>",
        f"<div>{escape(data.generated_at.strftime('%Y-%m-%d %H:%M UTC'))} · incidents and "
        f"tracks of the last {q.window_hours} h · hotspots over {q.hotspot_days} days</div>",
    ]
    if q.families:
        lines.append(f"<div>Families: {escape(', '.join(q.families))}</div>")
    shown = len(data.incidents)
    lines.append(
        f"<div>{shown} incidents shown of {data.incidents_total}; {len(data.gaps)} gaps of "
        f"{data.gaps_total}</div>"
    )
    if data.audience != "full":
        lines.append(
            "<div>Sensitive cases appear only as counts in coarse cells (need-to-know).</div>"
        )
    for note in data.notes:
        lines.append(f"<div class='note'>{escape(note)}</div>")
    if links:
        anchors = " · ".join(f"<a href='{escape(h)}'>{escape(t)}</a>" for t, h in links.items())
        lines.append(f"<div>{anchors}</div>")
    return "".join(lines)


_LEGEND = (
    "<b>Legend</b><br>"
    "<i style='background:#b2182b'></i>hot spot 99 %<br>"
    "<i style='background:#ef8a62'></i>hot spot 95 %<br>"
    "<i style='background:#fddbc7'></i>hot spot 90 %<br>"
    "<i style='background:#67a9cf'></i>cold spot<br>"
    "<i style='border:2px dashed #e7298a;background:none'></i>emerging pattern<br>"
    "<i style='background:#6a3d9a;opacity:.6'></i>sensitive cases (coarse)<br>"
    "<i style='background:#ffd92f;border:2px solid #000'></i>coverage gap<br>"
    "<i class='line' style='border-color:#1a9850'></i>patrol, last 24 h<br>"
    "<i class='line' style='border-color:#91cf60'></i>patrol, 24–72 h<br>"
    "<i style='background:#7f0000;border-radius:50%'></i>incident<br>"
    "<i style='background:#2c7fb8;opacity:.5'></i>protected site<br>"
    "<i style='border:2px solid #b2182b;border-radius:50%'></i>open alert, red<br>"
    "<i style='border:2px solid #e08214;border-radius:50%'></i>open alert, amber<br>"
    "<i style='border:2px solid #c9a227;border-radius:50%'></i>open alert, yellow"
)

_AOR_STYLE = ["#252525", "#525252", "#737373", "#969696", "#bdbdbd"]


def _geojson(
    collection: dict[str, Any], name: str, style: dict[str, Any], tooltip: list[str], show: bool
) -> folium.GeoJson:
    return folium.GeoJson(
        collection,
        name=name,
        style_function=lambda _feature, style=style: style,
        tooltip=folium.GeoJsonTooltip(fields=tooltip, labels=False) if tooltip else None,
        show=show,
        embed=True,
    )


def build_map(data: ThreatMap, maps: MapSettings, links: dict[str, str]) -> OfflineMap:
    south, west, north, east = data.bounds or (-10.0, 10.0, 10.0, 30.0)
    figure = OfflineMap(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=7,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        # Leaflet takes its zoom limits from a tile layer; with no basemap there is none, and
        # the cluster layer refuses a map without maxZoom. (folium's min/max_zoom go to the
        # tile layer only, so these are map options.)
        minZoom=3,
        maxZoom=18,
    )
    if maps.basemap is not None:
        folium.TileLayer(
            tiles="/maps/tiles/{z}/{x}/{y}",
            attr=maps.basemap_attribution,
            name="Mission basemap",
            overlay=False,
            control=True,
        ).add_to(figure)
    if maps.online_tiles_url:
        folium.TileLayer(
            tiles=maps.online_tiles_url,
            attr=maps.online_tiles_attribution,
            name="Online map (needs internet)",
            overlay=True,
            show=False,
        ).add_to(figure)

    for depth in sorted(data.aors):
        colour = _AOR_STYLE[min(depth, len(_AOR_STYLE) - 1)]
        style = {"color": colour, "weight": max(1, 4 - depth), "fill": False}
        name = f"AOR level {depth}: {data.aor_level_names.get(depth, '')}"
        _geojson(data.aors[depth], name, style, ["name"], show=depth <= 3).add_to(figure)
    if data.sites.get("features"):
        style = {"color": "#2c7fb8", "weight": 2, "fillOpacity": 0.35}
        layer = folium.GeoJson(
            data.sites,
            name="Protected sites",
            style_function=lambda _f: style,
            marker=folium.CircleMarker(radius=7, color="#2c7fb8", fill=True, fill_opacity=0.6),
            tooltip=folium.GeoJsonTooltip(fields=["name", "kind", "population"], labels=False),
            embed=True,
        )
        layer.add_to(figure)

    hot = folium.FeatureGroup(name=f"Hotspots (res {data.hotspot_resolution})").add_to(figure)
    # Each cell travels once per layer it is drawn in, with only what that layer shows.
    hot.add_child(_Rows("hotspots", [row for row in data.hotspots if row[1] != 0]))
    emerging = folium.FeatureGroup(name="Emerging hot spots").add_to(figure)
    emerging.add_child(_Rows("emerging", [[row[0], row[2]] for row in data.hotspots if row[2]]))
    if data.audience != "full":
        coarse = folium.FeatureGroup(
            name=f"Sensitive cases, coarse (res {data.sensitive_resolution})"
        ).add_to(figure)
        coarse.add_child(_Rows("sensitive", data.sensitive_cells))
    gaps = folium.FeatureGroup(name="Coverage gaps (ranked)").add_to(figure)
    gaps.add_child(_Rows("gaps", data.gaps))
    recent = folium.FeatureGroup(name="Patrol tracks, last 24 h").add_to(figure)
    recent.add_child(_Rows("tracks", data.tracks.get("recent", []), "#1a9850"))
    earlier = folium.FeatureGroup(name="Patrol tracks, 24–72 h").add_to(figure)
    earlier.add_child(_Rows("tracks", data.tracks.get("earlier", []), "#91cf60"))
    cluster = OfflineMarkerCluster(name="Incidents (clustered)").add_to(figure)
    cluster.add_child(_Rows("incidents", data.incidents))
    alerts = folium.FeatureGroup(name="Open alerts").add_to(figure)
    alerts.add_child(_Rows("alerts", data.alerts))

    folium.LayerControl(collapsed=False).add_to(figure)
    figure.add_child(_Control(_panel(data, links), "topleft", "vigil-panel"))
    figure.add_child(_Control(_LEGEND, "bottomleft", "vigil-panel vigil-legend"))
    if data.bounds is not None:
        figure.fit_bounds([[south, west], [north, east]])
    figure.add_child(_Ready())
    figure.get_root().header.add_child(Element(f"<title>{escape(data.title)} — Vigil</title>"))
    figure.get_root().header.add_child(Element(ICON_LINK))
    return figure


# --------------------------------------------------------------------------- self-contained


_TAG = re.compile(
    r'<script src="(/static/[^"]+)"></script>|<link rel="stylesheet" href="(/static/[^"]+)"/>'
)
_CSS_URL = re.compile(r"url\((['\"]?)(images/[^)'\"]+)\1\)")


def _static_bytes(url: str, root: Path) -> bytes:
    if url.startswith(OWN + "/"):
        name = url.removeprefix(OWN + "/")
        if name not in ("vigil-map.js", "vigil-map.css"):
            raise FileNotFoundError(url)
        return (STATIC_DIR / name).read_bytes()
    package, _, file = url.removeprefix(VENDOR + "/").partition("/")
    return assets.read_asset(root, package, file)


def inline_assets(html: str, root: Path) -> str:
    """Replace every ``/static`` script and stylesheet tag with the file itself (images in
    stylesheets as data: URIs), for a page that opens from a file on a briefing laptop."""

    def css(url: str) -> str:
        text = _static_bytes(url, root).decode()
        base = url.rsplit("/", 1)[0]

        def data_uri(match: re.Match[str]) -> str:
            image = _static_bytes(f"{base}/{match.group(2)}", root)
            return f"url(data:image/png;base64,{base64.b64encode(image).decode()})"

        return "<style>" + _CSS_URL.sub(data_uri, text) + "</style>"

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            script = _static_bytes(match.group(1), root).decode().replace("</script", "<\\/script")
            return f"<script>{script}</script>"
        return css(match.group(2))

    return _TAG.sub(replace, html)


def render_threat_map(
    data: ThreatMap,
    maps: MapSettings,
    *,
    links: dict[str, str] | None = None,
    inline: bool = False,
) -> str:
    """The page's HTML: asset tags pointing at Vigil's routes, or (``inline``) carrying them."""
    html = build_map(data, maps, links or {}).get_root().render()
    if inline:
        assets.check_installed(maps.assets_dir)
        html = inline_assets(html, maps.assets_dir)
    return html
