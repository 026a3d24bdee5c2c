"""Incidents — real-world events fused from one or more reports — and the report links.

Every report starts as its own incident; analysts merge the reports of one event (a massacre
reported by a patrol, a hotline and a human rights officer) into one incident. Analytics count
incidents, so double reporting does not inflate the threat picture.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geo import LocationPrecision
from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import (
    CellColumns,
    cell_indexes,
    enum_column,
    fail_closed_enum_column,
    gist_index,
)
from server.db.types import GeometryColumn
from server.reports.enums import TimePrecision, VerificationState
from server.reports.models import Report
from server.taxonomy.codes import Sensitivity


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    #: Its reports moved into another incident (``merged_into_id``); kept so links stay valid.
    MERGED = "merged"


class Incident(CellColumns, Base):
    """One real-world event. Its descriptive fields are derived from its reports by
    ``server.incidents.fusion`` whenever the set of reports or one of them changes."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_list_order", "list_sort_at", "id"),
        Index("ix_incidents_status_occurred", "status", "occurred_at"),
        gist_index("ix_incidents_location", "location"),
        *cell_indexes("incidents"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[IncidentStatus] = mapped_column(
        enum_column(IncidentStatus, 16), default=IncidentStatus.ACTIVE
    )
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )

    category: Mapped[str] = mapped_column(String(64), index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    severity_weight: Mapped[float] = mapped_column(Float)
    sensitivity: Mapped[Sensitivity] = mapped_column(
        fail_closed_enum_column(Sensitivity, Sensitivity.STRICTLY_CONFIDENTIAL)
    )
    verification_state: Mapped[VerificationState] = mapped_column(enum_column(VerificationState))

    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    time_precision: Mapped[TimePrecision] = mapped_column(enum_column(TimePrecision, 16))
    occurred_day_start: Mapped[datetime] = mapped_column(UtcDateTime)
    list_sort_at: Mapped[datetime] = mapped_column(UtcDateTime)

    location: Mapped[Any] = mapped_column(GeometryColumn("POINT"))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        enum_column(LocationPrecision, 16)
    )
    location_accuracy_m: Mapped[float | None] = mapped_column(Float)
    coarse_longitude: Mapped[float | None] = mapped_column(Float)
    coarse_latitude: Mapped[float | None] = mapped_column(Float)
    aor_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )

    killed_best: Mapped[int | None] = mapped_column(Integer)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    #: False when a sensitive report of the incident lacks consent to aggregate reporting: the
    #: incident then counts in no aggregate outside the protection tier (SECURITY.md rule 5).
    consent_aggregate_reporting: Mapped[bool] = mapped_column(Boolean, default=True)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    links: Mapped[list[IncidentReport]] = relationship(
        back_populates="incident", lazy="selectin", order_by="IncidentReport.linked_at"
    )


class IncidentReport(Base):
    """Which incident a report belongs to: exactly one, at any time."""

    __tablename__ = "incident_reports"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    incident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    linked_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    incident: Mapped[Incident] = relationship(back_populates="links")
    report: Mapped[Report] = relationship(lazy="joined")
