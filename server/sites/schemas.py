"""Protected site bodies: a point or a polygon (or both), population where known."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.geojson import PointGeometry, PolygonalGeometry
from server.sites.enums import SiteKind

__all__ = ["SiteCollection", "SiteCreate", "SiteFeature", "SiteProperties", "SiteUpdate"]

MAX_POPULATION = 10_000_000


class SiteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "IDP site, southern edge of Bambari",
                    "kind": "idp_camp",
                    "location": {"type": "Point", "coordinates": [20.648, 5.741]},
                    "population": 8500,
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    kind: SiteKind
    location: PointGeometry | None = Field(
        default=None, description="The site, or a point inside its area (default: the area's)."
    )
    area: PolygonalGeometry | None = Field(
        default=None, description="The site's outline, when it has one (a camp, a market)."
    )
    population: int | None = Field(default=None, ge=0, le=MAX_POPULATION)
    notes: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _somewhere(self) -> SiteCreate:
        if self.location is None and self.area is None:
            raise ValueError("give the site's location (a Point), its area (a Polygon), or both")
        return self


class SiteUpdate(BaseModel):
    """Changed fields only; ``version`` (the one you read) guards against lost updates."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The version you are changing.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: SiteKind | None = None
    location: PointGeometry | None = None
    area: PolygonalGeometry | None = None
    population: int | None = Field(default=None, ge=0, le=MAX_POPULATION)
    notes: str | None = Field(default=None, max_length=2000)


class SiteProperties(BaseModel):
    id: int
    name: str
    kind: SiteKind
    location: dict[str, Any] = Field(description="The site's point (GeoJSON).")
    population: int | None
    aor_unit_id: int | None = Field(description="The unit whose AOR holds the site.")
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class SiteFeature(BaseModel):
    """A site as a GeoJSON Feature: its area when it has one, else its point."""

    type: Literal["Feature"] = "Feature"
    id: int
    geometry: dict[str, Any]
    properties: SiteProperties


class SiteCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[SiteFeature]
