"""Reports — one observation by one source — with their verification history, revisions and
attachment metadata."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geo import LocationPrecision
from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import (
    CellColumns,
    JsonColumn,
    cell_indexes,
    enum_column,
    fail_closed_enum_column,
    gist_index,
)
from server.db.types import GeometryColumn
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
from server.taxonomy.codes import Sensitivity
from server.units.enums import Component


class Report(CellColumns, Base):
    """One report. Fields the client may not set (unit, author, sensitivity, verification,
    version, cells) are filled by ``server.reports.service``.

    Sensitive reports are shown to roles without need-to-know only through their coarse
    attributes: ``category``, ``occurred_day_start`` and ``h3_res6`` (with its centre in
    ``coarse_longitude/latitude``). ``list_sort_at`` is the ordering key every list uses: the
    exact time for normal reports, the day for sensitive ones, so a report's position in a list
    never reveals more than its day.
    """

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("dataset", "external_id"),
        Index("ix_reports_list_order", "list_sort_at", "id"),
        Index("ix_reports_occurred_at", "occurred_at"),
        Index("ix_reports_lon_lat", "longitude", "latitude"),
        gist_index("ix_reports_location", "location"),
        *cell_indexes("reports"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    category: Mapped[str] = mapped_column(String(64), index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)

    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    time_precision: Mapped[TimePrecision] = mapped_column(enum_column(TimePrecision, 16))
    occurred_day_start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    list_sort_at: Mapped[datetime] = mapped_column(UtcDateTime)

    location: Mapped[Any] = mapped_column(GeometryColumn("POINT"))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    location_accuracy_m: Mapped[float | None] = mapped_column(Float)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        enum_column(LocationPrecision, 16)
    )
    place_name: Mapped[str | None] = mapped_column(String(500))
    admin1: Mapped[str | None] = mapped_column(String(120))
    admin2: Mapped[str | None] = mapped_column(String(120))
    coarse_longitude: Mapped[float | None] = mapped_column(Float)
    coarse_latitude: Mapped[float | None] = mapped_column(Float)

    reporting_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    aor_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    component: Mapped[Component | None] = mapped_column(enum_column(Component, 16))
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    created_by_device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )

    source_type: Mapped[SourceType] = mapped_column(enum_column(SourceType))
    source_reliability: Mapped[SourceReliability] = mapped_column(enum_column(SourceReliability, 1))
    information_credibility: Mapped[InformationCredibility] = mapped_column(
        enum_column(InformationCredibility, 1)
    )

    killed_best: Mapped[int | None] = mapped_column(Integer)
    killed_low: Mapped[int | None] = mapped_column(Integer)
    killed_high: Mapped[int | None] = mapped_column(Integer)
    injured: Mapped[int | None] = mapped_column(Integer)
    abducted: Mapped[int | None] = mapped_column(Integer)
    displaced: Mapped[int | None] = mapped_column(Integer)
    #: Sex/age disaggregation of victims: a list of {sex, age_group, killed, injured, ...}.
    victims_detail: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonColumn)
    perpetrator_type: Mapped[PerpetratorType] = mapped_column(enum_column(PerpetratorType))
    perpetrator_name: Mapped[str | None] = mapped_column(String(200))

    narrative: Mapped[str | None] = mapped_column(Text)
    #: An unknown stored tier reads as strictly confidential (default deny), never as an error.
    sensitivity: Mapped[Sensitivity] = mapped_column(
        fail_closed_enum_column(Sensitivity, Sensitivity.STRICTLY_CONFIDENTIAL), index=True
    )
    protection_concern: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_aggregate_reporting: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_state: Mapped[VerificationState] = mapped_column(
        enum_column(VerificationState), default=VerificationState.REPORTED, index=True
    )

    origin: Mapped[ReportOrigin] = mapped_column(enum_column(ReportOrigin, 16))
    dataset: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(64))
    #: Context an importer kept from its dataset (conflict and dyad names, death breakdowns).
    dataset_details: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    #: sha256 of the canonical create body: same id + same fingerprint is a harmless resend.
    content_fingerprint: Mapped[str] = mapped_column(String(64))

    #: Capture by a synced device: its own clock and uptime at the time, and the corrected time
    #: (device time minus the offset measured in the same boot). Display only: ordering never
    #: uses device time (SYNC.md I10).
    captured_at_device: Mapped[datetime | None] = mapped_column(UtcDateTime)
    captured_uptime_ms: Mapped[int | None] = mapped_column(BigInteger)
    capture_boot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    captured_at_corrected: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Why the capture time is doubtful ("clock_offset", "future", "no_clock_sample"), if it is.
    capture_time_flag: Mapped[str | None] = mapped_column(String(32))
    #: ± bound of the corrected time: half the round trip of the clock sample used.
    capture_uncertainty_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: ``none``, ``parallel`` (others changed other fields meanwhile) or ``conflict`` (the same
    #: field, or a forked sealed payload): for HQ review (SYNC.md §4.6).
    conflict_state: Mapped[str] = mapped_column(String(16), default="none")
    #: Tombstone: the report was removed by HQ (kept for the record; syncs as a tombstone).
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_reason: Mapped[str | None] = mapped_column(Text)

    server_received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Every UPDATE checks the version it read (no lost updates under concurrency); the service
    # bumps it explicitly so create/update/transition control what a new version is.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="report", order_by="Attachment.created_at", lazy="selectin"
    )


class ReportVerification(Base):
    """One step of a report's verification (append-only): who moved it from what to what, why."""

    __tablename__ = "report_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[VerificationState] = mapped_column(enum_column(VerificationState))
    to_state: Mapped[VerificationState] = mapped_column(enum_column(VerificationState))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: The report version this step produced: lets sync tell whether someone else moved the
    #: status after the version a device last saw (SYNC.md §4.6).
    version: Mapped[int | None] = mapped_column(Integer)


class ReportRevision(Base):
    """The fields an update changed, with their previous values (append-only history)."""

    __tablename__ = "report_revisions"
    __table_args__ = (UniqueConstraint("report_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    #: The version this revision produced.
    version: Mapped[int] = mapped_column(Integer)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    previous_values: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Attachment(Base):
    """Metadata of a photo, recording or document attached to a report. The bytes arrive by
    resumable upload (sync issue); ``state`` shows HQ what has been received."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[AttachmentRole] = mapped_column(enum_column(AttachmentRole, 16))
    state: Mapped[AttachmentState] = mapped_column(
        enum_column(AttachmentState, 16), default=AttachmentState.EXPECTED
    )
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_key: Mapped[str | None] = mapped_column(String(255))
    #: An unfinished upload is discarded after this (longer than any offline window); the
    #: device then starts again from byte 0 under the same id.
    upload_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    report: Mapped[Report] = relationship(back_populates="attachments")
