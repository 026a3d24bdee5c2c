"""Coverage, gaps and tasking as the API serves them: GeoJSON cells and routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.geojson import PointGeometry
from server.patrols.enums import PatrolType

__all__ = [
    "CoverageCollection",
    "GapCollection",
    "PresenceAroundRead",
    "TaskingPatrol",
    "TaskingRequest",
    "TaskingResponse",
]


class CoverageProperties(BaseModel):
    cell: str = Field(description="H3 cell (hex).")
    km: float = Field(description="Track length inside the cell (0: only within sensing range).")
    minutes: float = Field(description="Time the tracks spent inside the cell.")
    patrol_count: int = Field(description="Patrols present (their sensing radius included).")
    first_presence_at: datetime
    last_presence_at: datetime = Field(description="The latest presence of these patrols.")


class CoverageFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: CoverageProperties


class CoverageMetadata(BaseModel):
    unit_id: int
    aor_version: int
    resolution: int
    since: datetime
    until: datetime
    cells: int
    km: float
    minutes: float


class CoverageCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    metadata: CoverageMetadata
    features: list[CoverageFeature]


class SiteRefRead(BaseModel):
    id: int
    name: str
    kind: str
    population: int | None


class GapProperties(BaseModel):
    rank: int
    cell: str = Field(description="H3 cell (hex).")
    score: float = Field(description="threat × hours uncovered × exposure: the ranking.")
    threat: float = Field(description="Σ weights of the reasons (see README, Coverage gaps).")
    reasons: list[str] = Field(
        description="hot, emerging, surge, precursor, flash (a severe incident lately), site."
    )
    exposure: float = Field(description="1 + what the protected sites in the cell add.")
    hours_uncovered: float = Field(description="Since the last presence (capped).")
    allowed_hours: float = Field(description="The gap the threat allows.")
    last_presence_at: datetime | None = Field(description="null: no patrol was ever there.")
    last_patrol_id: uuid.UUID | None
    unit_id: int | None = Field(description="The unit whose AOR holds the cell.")
    unit_code: str | None
    sites: list[SiteRefRead]


class GapFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: GapProperties


class GapMetadata(BaseModel):
    resolution: int
    audience: Literal["full", "general"]
    threat_window_days: int
    computed_at: datetime
    threat_as_of: datetime | None = Field(
        description="As-of time of the newest hotspot snapshot read (null: none stored yet)."
    )
    threatened_cells: int
    total: int = Field(description="Gaps matching the filters, before `limit`.")


class GapCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    metadata: GapMetadata
    features: list[GapFeature]


class NearestAssetRead(BaseModel):
    kind: Literal["base", "patrol"]
    unit_id: int | None
    patrol_id: uuid.UUID | None
    name: str
    location: dict[str, Any]
    distance_km: float
    as_of: datetime | None = Field(description="Time of the patrol's last fix.")


class PresenceAroundRead(BaseModel):
    cell: str
    resolution: int
    last_presence_at: datetime | None
    hours_uncovered: float | None
    ring_last_presence_at: datetime | None = Field(
        description="Latest presence in the cell or one of its six neighbours."
    )
    ring_hours_uncovered: float | None
    unit_id: int | None
    nearest: NearestAssetRead | None
    gaps: list[GapProperties] = Field(description="Ranked gaps within three rings.")


class TaskingPatrol(BaseModel):
    """Patrols available for tasking, ``count`` of the same kind."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=40)
    kind: PatrolType
    base: PointGeometry | None = Field(default=None, description="Default: the unit's base.")
    max_range_km: float = Field(gt=0, le=2000, description="Route length, base to base.")
    max_duration_hours: float = Field(gt=0, le=96)
    speed_kmh: float | None = Field(default=None, gt=0, le=1000)
    sensing_radius_m: float | None = Field(default=None, gt=0, le=20_000)
    dwell_minutes: float = Field(default=20.0, ge=0, le=720, description="Time at each stop.")
    max_stops: int = Field(default=12, ge=1, le=40)


class TaskingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit_id": 30,
                    "patrols": [
                        {"count": 2, "kind": "foot", "max_range_km": 15, "max_duration_hours": 6},
                        {"kind": "mobile", "max_range_km": 120, "max_duration_hours": 8},
                    ],
                }
            ]
        },
    )

    unit_id: int | None = Field(default=None, description="Default: your unit.")
    patrols: list[TaskingPatrol] = Field(min_length=1, max_length=10)
    resolution: int | None = None
    threat: list[str] = Field(default_factory=list, description="Only gaps with these reasons.")


class TaskingStop(BaseModel):
    order: int
    cell: str
    location: dict[str, Any]
    leg_km: float = Field(description="From the previous stop (or the base).")
    cumulative_km: float
    eta_hours: float = Field(description="Hours after leaving the base, dwells included.")
    score: float
    reasons: list[str]
    hours_uncovered: float


class TaskingRoute(BaseModel):
    patrol: int = Field(description="0-based index over the requested patrols, counts expanded.")
    spec: int = Field(description="Which entry of `patrols` this patrol comes from.")
    kind: PatrolType
    base: dict[str, Any]
    stops: list[TaskingStop]
    return_km: float
    km: float
    hours: float
    threat_covered: float
    gaps_covered: int
    geometry: dict[str, Any] | None = Field(description="base → stops → base (LineString).")


class TaskingSummary(BaseModel):
    threat_covered: float
    threat_total: float = Field(description="Σ score of the gaps considered.")
    km: float
    threat_per_km: float
    gaps_covered: int


class TaskingResponse(BaseModel):
    unit_id: int
    resolution: int
    gaps_considered: int
    gaps_total: int
    rule: str = Field(description="The greedy pass kept: `gain` or `gain_per_km`.")
    routes: list[TaskingRoute]
    summary: TaskingSummary
    nearest_first: TaskingSummary = Field(
        description="The naive plan (nearest uncovered gap first) on the same input."
    )
