"""Stored hotspot snapshots: the threat picture of one AOR at one resolution and window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import JsonColumn


class HotspotSnapshot(Base):
    """One analysis run: AOR version × resolution × window × audience, as of a moment.

    ``audience`` is ``full`` (every incident; for protection officers) or ``general``
    (normal-tier incidents only; for everyone else), so a general reader's picture can never be
    differenced against another to locate a sensitive case.
    """

    __tablename__ = "hotspot_snapshots"
    __table_args__ = (
        UniqueConstraint("aor_version_id", "resolution", "window_days", "audience", "as_of"),
        Index(
            "ix_hotspot_snapshots_lookup",
            "unit_id",
            "resolution",
            "window_days",
            "audience",
            "as_of",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aor_version_id: Mapped[int] = mapped_column(
        ForeignKey("aor_versions.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    resolution: Mapped[int] = mapped_column(SmallInteger)
    window_days: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    universe_cells: Mapped[int] = mapped_column(Integer)
    incidents: Mapped[int] = mapped_column(Integer)
    bin_days: Mapped[int] = mapped_column(Integer)
    n_bins: Mapped[int] = mapped_column(Integer)
    #: Analysis parameters (k, minimum local count, significance levels, decay) as run.
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonColumn)


class HotspotCell(Base):
    """One cell of a snapshot. Only cells with something to say are stored (an incident, a
    significant z, an emerging pattern, a surge or precursor flag); the rest are quiet."""

    __tablename__ = "hotspot_cells"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("hotspot_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    intensity: Mapped[float] = mapped_column(Float)
    local_count: Mapped[int] = mapped_column(Integer)
    z_score: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    q_value: Mapped[float] = mapped_column(Float)
    confidence: Mapped[int] = mapped_column(SmallInteger)
    emerging: Mapped[str] = mapped_column(String(32))
    trend_z: Mapped[float | None] = mapped_column(Float)
    trend_p: Mapped[float | None] = mapped_column(Float)
    surge_score: Mapped[float] = mapped_column(Float)
    surge_p: Mapped[float] = mapped_column(Float)
    surge_flag: Mapped[bool] = mapped_column(Boolean)
    precursor_index: Mapped[float] = mapped_column(Float)
    precursor_flag: Mapped[bool] = mapped_column(Boolean)


class HotspotDirty(Base):
    """AOR versions whose incidents changed since their last snapshot (written in the same
    transaction as the change, so a recompute is never lost to a crash)."""

    __tablename__ = "hotspot_dirty"

    aor_version_id: Mapped[int] = mapped_column(
        ForeignKey("aor_versions.id", ondelete="CASCADE"), primary_key=True
    )
    marked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
