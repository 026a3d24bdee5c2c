"""Units of the mission hierarchy and their versioned areas of responsibility (AORs)."""

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import enum_column, gist_index
from server.db.types import GeometryColumn
from server.units.enums import Component, UnitKind


def ancestor_ids_of(path: str) -> list[int]:
    """Ids from the root down to the unit whose materialised ``path`` this is, inclusive."""
    return [int(part) for part in path.strip("/").split("/") if part]


class Unit(Base):
    """A node of the hierarchy: mission HQ → force HQ → sector → battalion → company, and the
    police and civilian sections beside them.

    ``path`` is the materialised ancestry (``/1/4/9/``) so a subtree is one ``LIKE`` on both
    backends; ``depth`` orders "deepest unit whose AOR holds the cell".
    """

    __tablename__ = "units"
    __table_args__ = (
        Index("ix_units_path", "path"),
        gist_index("ix_units_base_location", "base_location"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind))
    component: Mapped[Component] = mapped_column(enum_column(Component, 16))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(String(512))
    depth: Mapped[int] = mapped_column(SmallInteger)
    base_location: Mapped[Any | None] = mapped_column(GeometryColumn("POINT"))
    #: Members see every report in the mission (JOC, analysis cells, human rights sections).
    sees_whole_mission: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], lazy="joined", join_depth=1)

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to this unit, inclusive."""
        return ancestor_ids_of(self.path)


class AorVersion(Base):
    """One version of a unit's area of responsibility. The current one has ``valid_to`` NULL;
    changing an AOR closes the current version and opens a new one, so history is kept."""

    __tablename__ = "aor_versions"
    __table_args__ = (
        UniqueConstraint("unit_id", "version"),
        Index(
            "uq_aor_versions_current_per_unit",
            "unit_id",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        gist_index("ix_aor_versions_geometry", "geometry"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    geometry: Mapped[Any] = mapped_column(GeometryColumn("MULTIPOLYGON"))
    area_km2: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    #: Resolutions whose cells were stored for this version (the mission's at the time).
    resolutions: Mapped[str] = mapped_column(String(64))

    unit: Mapped[Unit] = relationship(lazy="joined")


class AorCell(Base):
    """The cells of an AOR version for one analysis resolution, compacted.

    For analysis resolution ``resolution`` the stored set holds the cells whose centres lie in
    the AOR, with seven complete siblings replaced by their parent, never coarser than the
    mission's coarsest resolution. A point is inside iff one of its own cells at the coarsest …
    ``resolution`` is stored: routing is an integer ``IN`` on ``(resolution, cell)``.
    """

    __tablename__ = "aor_cells"
    __table_args__ = (Index("ix_aor_cells_resolution_cell", "resolution", "cell"),)

    aor_version_id: Mapped[int] = mapped_column(
        ForeignKey("aor_versions.id", ondelete="CASCADE"), primary_key=True
    )
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
