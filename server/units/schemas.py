"""Request and response bodies of the units slice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.geojson import PointGeometry, PolygonalGeometry
from server.units.enums import Component, UnitKind

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"


class UnitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, description="Stable slug, e.g. `sector-west`.")
    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind
    component: Component
    parent_id: int | None = Field(
        default=None, description="Parent unit; only the mission's root unit has none."
    )
    base_location: PointGeometry | None = None
    sees_whole_mission: bool = False
    aor: PolygonalGeometry | None = Field(
        default=None, description="Area of responsibility (GeoJSON Polygon or MultiPolygon)."
    )


class UnitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: UnitKind | None = None
    component: Component | None = None
    parent_id: int | None = None
    base_location: PointGeometry | None = None
    sees_whole_mission: bool | None = None


class AorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: PolygonalGeometry


class UnitRead(BaseModel):
    id: int
    code: str
    name: str
    kind: UnitKind
    component: Component
    parent_id: int | None
    path: str
    depth: int
    base_location: dict[str, Any] | None
    sees_whole_mission: bool
    current_aor_version: int | None
    created_at: datetime
    updated_at: datetime


class AorVersionRead(BaseModel):
    """One version of an AOR as a GeoJSON Feature's parts."""

    unit_id: int
    version: int
    valid_from: datetime
    valid_to: datetime | None
    area_km2: float
    resolutions: list[int]
    cell_count: int
    geometry: dict[str, Any]


class AorFeature(BaseModel):
    """The current AOR of a unit as an RFC 7946 Feature."""

    type: str = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
