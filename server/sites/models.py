"""Protected sites — IDP camps, refugee and POC sites, markets, water points — as a point, or a
polygon with its representative point, and the H3 cells they touch at every mission resolution.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import enum_column, gist_index
from server.db.types import GeometryColumn
from server.sites.enums import SiteKind


class ProtectedSite(Base):
    __tablename__ = "protected_sites"
    __table_args__ = (
        gist_index("ix_protected_sites_location", "location"),
        gist_index("ix_protected_sites_area", "area"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[SiteKind] = mapped_column(enum_column(SiteKind))
    #: The site itself, or the representative point of its area (always inside it).
    location: Mapped[Any] = mapped_column(GeometryColumn("POINT"))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    area: Mapped[Any | None] = mapped_column(GeometryColumn("MULTIPOLYGON"))
    #: People living at or using the site, where known.
    population: Mapped[int | None] = mapped_column(Integer)
    #: The unit whose AOR holds the site's point (kept when AORs change).
    aor_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    notes: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ProtectedSiteCell(Base):
    """A cell a site touches: its point's cell, and for an area every cell whose centre lies in
    it. Written with the site, at every mission resolution."""

    __tablename__ = "protected_site_cells"
    __table_args__ = (Index("ix_protected_site_cells_resolution_cell", "resolution", "cell"),)

    site_id: Mapped[int] = mapped_column(
        ForeignKey("protected_sites.id", ondelete="CASCADE"), primary_key=True
    )
    resolution: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
