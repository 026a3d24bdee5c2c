"""Request and response bodies of the reports slice.

``ReportRead`` is what a reader with need-to-know gets; ``ReportRedacted`` is all anyone else
gets of a sensitive report: its category, its day and its res-6 cell.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from geo import LocationPrecision
from server.geojson import PointGeometry
from server.reports.enums import (
    AttachmentRole,
    AttachmentState,
    InformationCredibility,
    PerpetratorType,
    ReportOrigin,
    SourceReliability,
    SourceType,
    TimePrecision,
    VerificationState,
)
from server.taxonomy.codes import Sensitivity, get_category
from server.units.enums import Component

Count = Annotated[int, Field(ge=0, le=1_000_000)]
MAX_ATTACHMENTS = 20
MAX_NARRATIVE_CHARS = 20_000


class Killed(BaseModel):
    """Killed, as UCDP counts them: a best estimate with a low and a high bound."""

    model_config = ConfigDict(extra="forbid")

    best: Count | None = None
    low: Count | None = None
    high: Count | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Killed:
        if self.low is not None and self.best is not None and self.low > self.best:
            raise ValueError(f"low ({self.low}) must not exceed best ({self.best})")
        if self.high is not None and self.best is not None and self.high < self.best:
            raise ValueError(f"high ({self.high}) must not be below best ({self.best})")
        return self


class VictimGroup(BaseModel):
    """Victims of one sex and age group."""

    model_config = ConfigDict(extra="forbid")

    sex: Literal["female", "male", "unknown"] = "unknown"
    age_group: Literal["child", "adult", "elderly", "unknown"] = "unknown"
    killed: Count = 0
    injured: Count = 0
    abducted: Count = 0
    displaced: Count = 0


class Victims(BaseModel):
    model_config = ConfigDict(extra="forbid")

    killed: Killed = Field(default_factory=Killed)
    injured: Count | None = None
    abducted: Count | None = None
    displaced: Count | None = None
    disaggregation: Annotated[list[VictimGroup], Field(max_length=50)] = Field(default_factory=list)

    @property
    def involves_children(self) -> bool:
        return any(
            g.age_group == "child" and (g.killed or g.injured or g.abducted or g.displaced)
            for g in self.disaggregation
        )


class KilledRead(BaseModel):
    """Killed as stored. Not re-validated on the way out: datasets publish figures that break
    low ≤ best ≤ high, and Vigil keeps them as published."""

    best: int | None = None
    low: int | None = None
    high: int | None = None


class VictimsRead(BaseModel):
    killed: KilledRead
    injured: int | None
    abducted: int | None
    displaced: int | None
    disaggregation: list[VictimGroup]


class Consent(BaseModel):
    """What the survivor or source agreed to (Primero's consent flags). Absent means no."""

    model_config = ConfigDict(extra="forbid")

    aggregate_reporting: bool = False
    referral: bool = False


class AttachmentManifestItem(BaseModel):
    """An attachment the report will carry; the bytes follow by resumable upload."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    media_type: str = Field(pattern=r"^[a-z]+/[a-zA-Z0-9.+-]+$", max_length=100)
    size_bytes: int = Field(gt=0, le=2 * 1024**3)
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Lower-case hex sha256 of the bytes."
    )
    role: AttachmentRole = AttachmentRole.PHOTO


def _known_category(value: str) -> str:
    get_category(value)  # raises UnknownCategoryError with the list's address
    return value


class _ReportFields(BaseModel):
    """Fields a client may set, on create and (all optional) on update."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("category", check_fields=False)
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return _known_category(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("source_type", check_fields=False)
    @classmethod
    def _not_dataset(cls, value: SourceType | None) -> SourceType | None:
        if value is SourceType.DATASET:
            raise ValueError("'dataset' is reserved for imported datasets")
        return value


class ReportCreate(_ReportFields):
    """A new report. ``id`` is generated on the device and makes the create idempotent."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c7c1e-3a51-4c0e-9d0a-2b1f7d6e9a10",
                    "category": "killing_of_civilians",
                    "occurred_at": "2026-11-20T06:30:00Z",
                    "time_precision": "hour",
                    "location": {"type": "Point", "coordinates": [20.6706, 5.7591]},
                    "location_accuracy_m": 30,
                    "location_precision": "exact",
                    "place_name": "Bambari, Kidjigra quarter",
                    "source_type": "witness",
                    "source_reliability": "C",
                    "information_credibility": "3",
                    "victims": {"killed": {"best": 3, "low": 2, "high": 4}},
                    "perpetrator_type": "non_state_armed_group",
                    "narrative": "Three men killed at the market by armed men on motorbikes.",
                }
            ]
        },
    )

    id: uuid.UUID
    category: str = Field(description="A taxonomy code from GET /api/v1/taxonomy.")
    occurred_at: AwareDatetime = Field(description="Start of the period the event lies in (UTC).")
    time_precision: TimePrecision = TimePrecision.EXACT
    location: PointGeometry
    location_accuracy_m: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    location_precision: LocationPrecision = LocationPrecision.EXACT
    place_name: str | None = Field(default=None, max_length=200)
    admin1: str | None = Field(default=None, max_length=120)
    admin2: str | None = Field(default=None, max_length=120)
    source_type: SourceType = SourceType.DIRECT_OBSERVATION
    source_reliability: SourceReliability = SourceReliability.F
    information_credibility: InformationCredibility = InformationCredibility.CANNOT_BE_JUDGED
    victims: Victims = Field(default_factory=Victims)
    perpetrator_type: PerpetratorType = PerpetratorType.UNKNOWN
    perpetrator_name: str | None = Field(default=None, max_length=200)
    narrative: str | None = Field(default=None, max_length=MAX_NARRATIVE_CHARS)
    protection_concern: bool = Field(
        default=False,
        description="Mark as sensitive even if the category is not (e.g. the victim's identity "
        "is at risk). Only raises protection; the server decides the tier.",
    )
    consent: Consent = Field(default_factory=Consent)
    attachments: Annotated[list[AttachmentManifestItem], Field(max_length=MAX_ATTACHMENTS)] = Field(
        default_factory=list
    )

    @field_validator("attachments")
    @classmethod
    def _unique_attachments(
        cls, value: list[AttachmentManifestItem]
    ) -> list[AttachmentManifestItem]:
        ids = [item.id for item in value]
        if len(ids) != len(set(ids)):
            raise ValueError("attachment ids must be unique within a report")
        return value


class ReportUpdate(_ReportFields):
    """Changed fields only. Send the version you edited as ``If-Match`` or as ``version``."""

    version: int | None = Field(default=None, ge=1, description="The version you edited.")
    category: str | None = None
    occurred_at: AwareDatetime | None = None
    time_precision: TimePrecision | None = None
    location: PointGeometry | None = None
    location_accuracy_m: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    location_precision: LocationPrecision | None = None
    place_name: str | None = Field(default=None, max_length=200)
    admin1: str | None = Field(default=None, max_length=120)
    admin2: str | None = Field(default=None, max_length=120)
    source_type: SourceType | None = None
    source_reliability: SourceReliability | None = None
    information_credibility: InformationCredibility | None = None
    victims: Victims | None = None
    perpetrator_type: PerpetratorType | None = None
    perpetrator_name: str | None = Field(default=None, max_length=200)
    narrative: str | None = Field(default=None, max_length=MAX_NARRATIVE_CHARS)
    protection_concern: bool | None = None
    consent: Consent | None = None

    # A field validator (not a model validator) so the error names the field, not the body.
    @field_validator(
        "category",
        "occurred_at",
        "time_precision",
        "location",
        "location_precision",
        "source_type",
        "source_reliability",
        "information_credibility",
        "victims",
        "perpetrator_type",
        "protection_concern",
        "consent",
    )
    @classmethod
    def _no_nulls_for_required(cls, value: Any) -> Any:
        # Runs only for values sent: an absent field keeps its default and is not validated.
        if value is None:
            raise ValueError("cannot be set to null")
        return value


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to_state: VerificationState
    note: str | None = Field(default=None, max_length=2000)
    version: int | None = Field(default=None, ge=1, description="Optional: the version you saw.")


class RemovalRequest(BaseModel):
    """HQ removes a report from the field; the reason is kept in the audit log."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=3, max_length=2000)


class AttachmentRead(BaseModel):
    id: uuid.UUID
    media_type: str
    size_bytes: int
    sha256: str
    role: AttachmentRole
    state: AttachmentState
    received_bytes: int


class VerificationRead(BaseModel):
    from_state: VerificationState
    to_state: VerificationState
    actor_user_id: int | None
    note: str | None
    at: datetime


class ReportRead(BaseModel):
    """A report in full (for readers with need-to-know)."""

    detail: Literal["full"] = "full"
    id: uuid.UUID
    version: int
    category: str
    family: str
    occurred_at: datetime
    time_precision: TimePrecision
    location: dict[str, Any]
    location_accuracy_m: float | None
    location_precision: LocationPrecision
    place_name: str | None
    admin1: str | None
    admin2: str | None
    cells: dict[str, str] = Field(description="H3 cell (hex) per resolution the location supports.")
    reporting_unit_id: int | None
    aor_unit_id: int | None
    component: Component | None
    created_by_user_id: int | None
    source_type: SourceType
    source_reliability: SourceReliability
    information_credibility: InformationCredibility
    victims: VictimsRead
    perpetrator_type: PerpetratorType
    perpetrator_name: str | None
    narrative: str | None
    sensitivity: Sensitivity
    protection_concern: bool
    consent: Consent
    verification_state: VerificationState
    origin: ReportOrigin
    dataset: str | None
    external_id: str | None
    dataset_details: dict[str, Any] | None
    incident_id: uuid.UUID | None
    attachments: list[AttachmentRead]
    attachments_expected: int = Field(description="Attachments the report's manifest lists.")
    attachments_present: int = Field(description="Of those, how many have fully arrived.")
    created_by_device_id: uuid.UUID | None
    captured_at_device: datetime | None = Field(
        description="The capturing device's own clock at capture (may be wrong)."
    )
    captured_at_corrected: datetime | None = Field(
        description="Capture time corrected by the device's measured clock offset, if known."
    )
    capture_time_flag: str | None = Field(
        description="Why the capture time is doubtful: clock_offset (the device clock was off by "
        "more than 5 minutes), no_clock_sample (no offset measured in the same boot, e.g. the "
        "phone restarted before syncing; shown uncorrected)."
    )
    capture_uncertainty_ms: int | None = Field(
        description="± bound of captured_at_corrected (half the clock probe's round trip)."
    )
    conflict_state: Literal["none", "parallel", "conflict"] = Field(
        description="Concurrent offline edits for HQ review: parallel (other fields) or "
        "conflict (the same field, or a forked sealed payload)."
    )
    deleted_at: datetime | None = Field(description="Removed from the field by HQ (kept here).")
    deleted_reason: str | None
    server_received_at: datetime
    created_at: datetime
    updated_at: datetime


class ReportRedacted(BaseModel):
    """A sensitive report as seen without need-to-know: category, day and res-6 cell only."""

    detail: Literal["redacted"] = "redacted"
    id: uuid.UUID
    category: str
    family: str
    day: date
    h3_res6: str | None


ReportView = Annotated[ReportRead | ReportRedacted, Field(discriminator="detail")]


class ReportPage(BaseModel):
    items: list[ReportView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
