"""Patrol request and response bodies: plans, status, tracks as GeoJSON, GPX or fixes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from server.geojson import LineStringGeometry
from server.patrols.enums import PatrolStatus, PatrolType

__all__ = [
    "MAX_FIXES_PER_APPEND",
    "PatrolCreate",
    "PatrolPage",
    "PatrolRead",
    "PatrolStart",
    "PatrolUpdate",
    "TrackAppend",
    "TrackAppendRead",
    "TrackFeature",
    "TrackFix",
    "TrackPoints",
]

MAX_FIXES_PER_APPEND = 5_000
#: Sensing radii beyond this are not presence any more.
MAX_SENSING_RADIUS_M = 20_000


class TrackFix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The GNSS fix time (an independent, accurate clock; not the phone's wall clock).
    t: AwareDatetime
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class PatrolStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PatrolType
    started_at: AwareDatetime | None = None


class TrackAppend(BaseModel):
    """Fixes in time order; the first append of a patrol names its kind (sync's op body)."""

    model_config = ConfigDict(extra="forbid")

    patrol: PatrolStart
    points: list[TrackFix] = Field(min_length=1, max_length=MAX_FIXES_PER_APPEND)


class TrackPoints(BaseModel):
    """Fixes appended to an existing patrol, in strictly increasing time."""

    model_config = ConfigDict(extra="forbid")

    points: list[TrackFix] = Field(min_length=1, max_length=MAX_FIXES_PER_APPEND)


class TrackProperties(BaseModel):
    """Per-position times (the ``coordTimes`` convention of GPX converters is accepted too)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    times: list[AwareDatetime] = Field(
        alias="coordTimes",
        description="One fix time per position, strictly increasing (alias: `coordTimes`).",
    )
    accuracy_m: list[float | None] | None = Field(
        default=None, description="Optional accuracy per position, metres."
    )

    @model_validator(mode="before")
    @classmethod
    def _times_under_either_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "times" in data and "coordTimes" not in data:
            data = {**data, "coordTimes": data["times"]}
            data.pop("times")
        return data


class TrackFeature(BaseModel):
    """A GeoJSON Feature whose LineString is the track and whose ``properties.times`` holds a
    time per position."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[20.67, 5.76], [20.68, 5.77]],
                    },
                    "properties": {"times": ["2026-11-20T06:00:00Z", "2026-11-20T06:10:00Z"]},
                }
            ]
        },
    )

    type: Literal["Feature"]
    id: str | int | None = None
    geometry: LineStringGeometry
    properties: TrackProperties

    @model_validator(mode="after")
    def _one_time_per_position(self) -> TrackFeature:
        positions, times = len(self.geometry.coordinates), len(self.properties.times)
        if positions != times:
            raise ValueError(
                f"properties.times has {times} entries for {positions} positions; "
                "give one fix time per position"
            )
        accuracy = self.properties.accuracy_m
        if accuracy is not None and len(accuracy) != positions:
            raise ValueError("properties.accuracy_m must have one entry per position")
        return self

    def fixes(self) -> list[TrackFix]:
        accuracy = self.properties.accuracy_m or [None] * len(self.properties.times)
        return [
            TrackFix(t=t, lon=p[0], lat=p[1], accuracy_m=a)
            for p, t, a in zip(
                self.geometry.coordinates, self.properties.times, accuracy, strict=True
            )
        ]


class PatrolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = Field(
        default=None, description="Client-generated id; the server makes one if absent."
    )
    kind: PatrolType
    unit_id: int | None = Field(
        default=None, description="The patrolling unit (default: yours). Yours or below it."
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: Literal[PatrolStatus.PLANNED, PatrolStatus.UNDERWAY] = PatrolStatus.PLANNED
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    planned_route: LineStringGeometry | None = None
    sensing_radius_m: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SENSING_RADIUS_M,
        description="Overrides the type's default sensing radius.",
    )

    @model_validator(mode="after")
    def _window_in_order(self) -> PatrolCreate:
        if self.planned_start and self.planned_end and self.planned_end <= self.planned_start:
            raise ValueError("planned_end must be after planned_start")
        return self


class PatrolUpdate(BaseModel):
    """Change the plan, or move the status on: planned → underway → completed, or → aborted."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: PatrolStatus | None = None
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    planned_route: LineStringGeometry | None = None
    sensing_radius_m: float | None = Field(default=None, gt=0, le=MAX_SENSING_RADIUS_M)


class PatrolRead(BaseModel):
    id: uuid.UUID
    kind: PatrolType
    unit_id: int | None
    status: PatrolStatus
    name: str | None
    sensing_radius_m: float = Field(description="Effective radius: the override or the default.")
    planned_start: datetime | None
    planned_end: datetime | None
    planned_route: dict[str, Any] | None
    started_at: datetime | None
    ended_at: datetime | None
    track: dict[str, Any] | None = Field(
        description="The plausible fixes as a GeoJSON LineString (null until two exist)."
    )
    track_km: float
    track_minutes: float
    fix_count: int
    excluded_fix_count: int = Field(description="Fixes kept but left out (implausible jumps).")
    coverage_at: datetime | None = Field(description="When coverage was last derived.")
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime


class PatrolPage(BaseModel):
    items: list[PatrolRead]
    next_cursor: str | None = None


class TrackAppendRead(BaseModel):
    patrol_id: uuid.UUID
    status: PatrolStatus
    stored: int = Field(description="New fixes stored.")
    repeated: int = Field(description="Fixes already stored (same time): skipped.")
    excluded: int = Field(description="Stored fixes left out of coverage (implausible jumps).")
