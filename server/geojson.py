"""GeoJSON (RFC 7946) in and out of the API, validated with messages a field officer can act on.

Coordinates are ``[longitude, latitude]`` in WGS 84. Incoming geometries are checked for range,
structure and validity (no self-intersections) before anything is stored.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, mapping, shape
from shapely.validation import explain_validity

__all__ = [
    "Feature",
    "FeatureCollection",
    "LineStringGeometry",
    "PointGeometry",
    "PolygonalGeometry",
    "check_lon_lat",
    "geometry_to_geojson",
]

COORDINATE_DECIMALS = 6  # ~0.1 m: more is noise, and it keeps responses small


def check_lon_lat(longitude: float, latitude: float) -> None:
    """Raise ValueError with a precise message when a coordinate pair is unusable."""
    if not (math.isfinite(longitude) and math.isfinite(latitude)):
        raise ValueError("coordinates must be finite numbers")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude {longitude} is out of range [-180, 180]")
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude {latitude} is out of range [-90, 90]")


class PointGeometry(BaseModel):
    """A GeoJSON Point: ``{"type": "Point", "coordinates": [lon, lat]}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": "Point", "coordinates": [20.6706, 5.7591]}]},
    )

    type: Literal["Point"]
    coordinates: Annotated[list[float], Field(min_length=2, max_length=3)]

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        check_lon_lat(value[0], value[1])
        if value[0] == 0.0 and value[1] == 0.0:
            raise ValueError(
                "[0, 0] is the null island placeholder, not a location; send the real position"
            )
        return value

    @property
    def longitude(self) -> float:
        return self.coordinates[0]

    @property
    def latitude(self) -> float:
        return self.coordinates[1]

    def to_shape(self) -> Point:
        return Point(self.coordinates[0], self.coordinates[1])


Position = Annotated[list[float], Field(min_length=2, max_length=3)]
Ring = list[Position]

#: Most positions in one LineString (a day of one fix every two seconds).
MAX_LINE_POSITIONS = 50_000


class LineStringGeometry(BaseModel):
    """A GeoJSON LineString: two positions or more, each ``[longitude, latitude]`` in range."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["LineString"]
    coordinates: Annotated[
        list[Position],
        Field(
            max_length=MAX_LINE_POSITIONS,
            description="At least two positions (RFC 7946 §3.1.4).",
            json_schema_extra={"minItems": 2},
        ),
    ]

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[list[float]]) -> list[list[float]]:
        if len(value) < 2:
            raise ValueError(
                f"a LineString needs at least two positions, this one has {len(value)}"
            )
        for index, position in enumerate(value):
            try:
                check_lon_lat(position[0], position[1])
            except ValueError as exc:
                raise ValueError(f"position {index}: {exc}") from None
        return value

    def to_shape(self) -> LineString:
        return LineString([(p[0], p[1]) for p in self.coordinates])


class PolygonalGeometry(BaseModel):
    """A GeoJSON Polygon or MultiPolygon, valid (closed rings, no self-intersection)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @field_validator("coordinates")
    @classmethod
    def _coordinates(cls, value: list[Any], info: Any) -> list[Any]:
        kind = info.data.get("type")
        polygons = [value] if kind == "Polygon" else value
        if not polygons:
            raise ValueError("a MultiPolygon needs at least one polygon")
        for p_index, polygon in enumerate(polygons):
            if not isinstance(polygon, (list, tuple)) or not polygon:
                raise ValueError(f"polygon {p_index} must be a non-empty list of rings")
            for r_index, ring in enumerate(polygon):
                if not isinstance(ring, (list, tuple)) or len(ring) < 4:
                    raise ValueError(
                        f"polygon {p_index} ring {r_index} needs at least 4 positions "
                        "(a closed ring repeats its first position at the end)"
                    )
                for position in ring:
                    if (
                        not isinstance(position, (list, tuple))
                        or len(position) < 2
                        or not all(
                            isinstance(c, (int, float)) and not isinstance(c, bool)
                            for c in position
                        )
                    ):
                        raise ValueError(
                            f"polygon {p_index} ring {r_index}: every position must be "
                            "[longitude, latitude]"
                        )
                    check_lon_lat(float(position[0]), float(position[1]))
                if list(ring[0][:2]) != list(ring[-1][:2]):
                    raise ValueError(
                        f"polygon {p_index} ring {r_index} is not closed: the last position "
                        "must repeat the first"
                    )
        return value

    def to_shape(self) -> MultiPolygon:
        """The geometry as a valid shapely MultiPolygon, or ValueError saying what is wrong."""
        geometry = shape({"type": self.type, "coordinates": self.coordinates})
        if geometry.is_empty:
            raise ValueError("the polygon is empty")
        if not geometry.is_valid:
            raise ValueError(f"the polygon is not valid: {explain_validity(geometry)}")
        if geometry.area == 0:
            raise ValueError("the polygon has no area")
        min_lon, _min_lat, max_lon, _max_lat = geometry.bounds
        if max_lon - min_lon > 180:
            raise ValueError(
                "the polygon spans more than 180° of longitude; areas across the antimeridian "
                "are not supported: split it at ±180° into a MultiPolygon"
            )
        if isinstance(geometry, Polygon):
            geometry = MultiPolygon([geometry])
        return geometry


def geometry_to_geojson(geometry: Any, decimals: int = COORDINATE_DECIMALS) -> dict[str, Any]:
    """A shapely geometry as a GeoJSON dict with rounded coordinates."""
    if geometry is None:
        return None  # type: ignore[return-value]
    return _rounded(mapping(geometry), decimals)


def _rounded(obj: Any, decimals: int) -> Any:
    if isinstance(obj, float):
        return round(obj, decimals)
    if isinstance(obj, (list, tuple)):
        return [_rounded(item, decimals) for item in obj]
    if isinstance(obj, dict):
        return {key: _rounded(value, decimals) for key, value in obj.items()}
    return obj


class Feature(BaseModel):
    """An RFC 7946 Feature."""

    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """An RFC 7946 FeatureCollection, with the next page's cursor when there is one."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    next_cursor: str | None = None
