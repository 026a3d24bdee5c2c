"""Bodies of the incidents endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo import LocationPrecision
from server.incidents.models import IncidentStatus
from server.reports.enums import TimePrecision, VerificationState
from server.taxonomy.codes import Sensitivity


class IncidentRead(BaseModel):
    detail: Literal["full"] = "full"
    id: uuid.UUID
    version: int
    status: IncidentStatus
    merged_into_id: uuid.UUID | None
    category: str
    family: str
    severity_weight: float
    sensitivity: Sensitivity
    verification_state: VerificationState
    occurred_at: datetime
    time_precision: TimePrecision
    location: dict[str, Any]
    location_precision: LocationPrecision
    cells: dict[str, str]
    aor_unit_id: int | None
    killed_best: int | None
    report_count: int
    report_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime


class IncidentRedacted(BaseModel):
    detail: Literal["redacted"] = "redacted"
    id: uuid.UUID
    category: str
    family: str
    day: date
    h3_res6: str | None
    report_count: int


IncidentView = Annotated[IncidentRead | IncidentRedacted, Field(discriminator="detail")]


class IncidentPage(BaseModel):
    items: list[IncidentView]
    next_cursor: str | None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    incident_ids: list[uuid.UUID] = Field(min_length=2, max_length=50)
    into: uuid.UUID | None = Field(
        default=None, description="The incident to keep; default: the oldest named."
    )
    note: str | None = Field(default=None, max_length=2000)


class UnmergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    report_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class UnmergeResult(BaseModel):
    incident: IncidentRead
    new_incidents: list[IncidentRead]


class MergeSuggestionRead(BaseModel):
    incident_id: uuid.UUID
    candidate_id: uuid.UUID
    distance_km: float
    hours_apart: float
    same_category: bool
    score: float
