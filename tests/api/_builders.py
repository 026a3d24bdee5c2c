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
