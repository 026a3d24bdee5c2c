"""Patrol coverage as integer tables: each patrol's cells (written when its fixes arrive), the
last presence per cell (kept incrementally), and the patrols whose coverage is due."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, SmallInteger, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow


class PatrolCell(Base):
    """One cell a patrol was present in, at one resolution (the working resolution and every
    coarser mission resolution). ``km`` and ``minutes`` are the track inside the cell, zero for
    a cell only within the patrol's sensing radius; presence times include the radius."""

    __tablename__ = "patrol_cells"
    __table_args__ = (
        Index("ix_patrol_cells_resolution_cell", "resolution", "cell"),
        Index("ix_patrol_cells_resolution_last", "resolution", "last_presence_at"),
    )

    patrol_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True
    )
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    km: Mapped[float] = mapped_column(Float)
    minutes: Mapped[float] = mapped_column(Float)
    first_presence_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_presence_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CellLastPresence(Base):
    """The latest patrol presence in each cell: the maximum of ``patrol_cells`` kept by an
    upsert when a patrol's coverage is written, so the gap query joins this small table instead
    of reading tracks. ``patrol_id`` and ``unit_id`` name who was there last."""

    __tablename__ = "cell_last_presence"

    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_presence_at: Mapped[datetime] = mapped_column(UtcDateTime)
    patrol_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patrols.id", ondelete="SET NULL")
    )
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))


class CoverageDirty(Base):
    """Patrols whose fixes changed since their coverage was written (marked in the same
    transaction as the change, so a crash never loses a recompute)."""

    __tablename__ = "coverage_dirty"

    patrol_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: How many times the recompute was marked since it last ran (diagnostics).
    marks: Mapped[int] = mapped_column(Integer, default=1)
