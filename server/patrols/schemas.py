"""Patrol request bodies: a batch of GPS fixes appended to a patrol started on a device."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from server.patrols.enums import PatrolType

__all__ = ["MAX_FIXES_PER_APPEND", "PatrolStart", "TrackAppend", "TrackFix"]

MAX_FIXES_PER_APPEND = 5_000


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
    """Fixes in time order; the first append of a patrol names its kind."""

    model_config = ConfigDict(extra="forbid")

    patrol: PatrolStart
    points: list[TrackFix] = Field(min_length=1, max_length=MAX_FIXES_PER_APPEND)
