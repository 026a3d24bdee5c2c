"""Patrols and their GPS tracks, as far as sync needs them: a device appends fixes to a patrol
it started offline. The coverage issue adds plans, routes and coverage on top."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import enum_column
from server.patrols.enums import PatrolStatus, PatrolType


class Patrol(Base):
    __tablename__ = "patrols"

    #: Generated on the device that starts the patrol, so it can be created offline.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[PatrolType] = mapped_column(enum_column(PatrolType))
    status: Mapped[PatrolStatus] = mapped_column(
        enum_column(PatrolStatus, 16), default=PatrolStatus.UNDERWAY
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by_device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PatrolTrackPoint(Base):
    """One GPS fix of a patrol. ``excluded`` marks fixes kept for the record but left out of
    coverage (an implausible jump); the reason says why."""

    __tablename__ = "patrol_track_points"

    patrol_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True
    )
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    exclusion_reason: Mapped[str | None] = mapped_column(String(120))
    sequence: Mapped[int] = mapped_column(Integer)
