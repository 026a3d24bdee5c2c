"""Request bodies for the API tests: a valid report, GeoJSON boxes, timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.seed import POINT_A1_1

API = "/api/v1"


def iso(moment: datetime) -> str:
    """An aware datetime as the ISO 8601 text a device sends (``Z`` for UTC)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def report_body(**overrides: Any) -> dict[str, Any]:
    """A valid ReportCreate body: a fresh id, a point in bn-a1, three hours ago (UTC).

    ``point=(lon, lat)`` places it elsewhere; ``hours_ago=h`` moves it in time; any other
    keyword replaces that field of the body.
    """
    point = overrides.pop("point", POINT_A1_1)
    ago = overrides.pop("hours_ago", 3.0)
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "category": "killing_of_civilians",
        "occurred_at": iso(hours_ago(ago)),
        "time_precision": "exact",
        "location": {"type": "Point", "coordinates": [point[0], point[1]]},
        "location_accuracy_m": 30,
        "location_precision": "exact",
        "source_type": "witness",
        "source_reliability": "C",
        "information_credibility": "3",
        "victims": {"killed": {"best": 2, "low": 1, "high": 3}},
        "perpetrator_type": "non_state_armed_group",
        "narrative": "Two men killed at the market by armed men on motorbikes.",
    }
    body.update(overrides)
    return body


def polygon(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    """A GeoJSON Polygon for the box, exterior ring counter-clockwise and closed."""
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [min_lon, min_lat],
                [max_lon, min_lat],
                [max_lon, max_lat],
                [min_lon, max_lat],
                [min_lon, min_lat],
            ]
        ],
    }


def walk_fixes(
    start: tuple[float, float],
    *,
    fixes: int = 20,
    step: tuple[float, float] = (0.001, 0.0005),
    began_hours_ago: float = 3.0,
    every_s: int = 60,
) -> list[dict[str, Any]]:
    """A straight walk of ``fixes`` GPS fixes from ``start`` (lon, lat), one every ``every_s``
    seconds (about 110 m a minute with the default step: a brisk foot patrol)."""
    began = hours_ago(began_hours_ago)
    return [
        {
            "t": iso(began + timedelta(seconds=i * every_s)),
            "lon": round(start[0] + i * step[0], 6),
            "lat": round(start[1] + i * step[1], 6),
            "accuracy_m": 8,
        }
        for i in range(fixes)
    ]


def track_feature(fixes: list[dict[str, Any]]) -> dict[str, Any]:
    """Fixes as a GeoJSON Feature: a LineString with ``properties.times``."""
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[f["lon"], f["lat"]] for f in fixes]},
        "properties": {"times": [f["t"] for f in fixes]},
    }


def gpx_document(fixes: list[dict[str, Any]], *, with_times: bool = True) -> bytes:
    """Fixes as a GPX 1.1 track."""
    points = "".join(
        f'<trkpt lat="{f["lat"]}" lon="{f["lon"]}">'
        + (f"<time>{f['t']}</time>" if with_times else "")
        + "</trkpt>"
        for f in fixes
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gpx version="1.1" creator="vigil-tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>patrol</name><trkseg>{points}</trkseg></trk></gpx>"
    ).encode()
