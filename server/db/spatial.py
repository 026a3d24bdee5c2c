"""The only place that uses PostGIS functions, each with a fallback that needs none.

PostGIS answers through its GiST indexes; the fallback answers from the plain longitude and
latitude columns every point table carries, so both give the same rows (tested on both backends).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy.orm import Session

from server.db.session import is_sqlite
from server.db.types import SRID

__all__ = ["point_in_bbox"]


def point_in_bbox(session: Session, model: Any, box: Any) -> ColumnElement[bool]:
    """Rows of ``model`` whose point lies in ``box`` (edges included)."""
    if is_sqlite(session):
        return and_(
            model.longitude.between(box.min_lon, box.max_lon),
            model.latitude.between(box.min_lat, box.max_lat),
        )
    envelope = func.ST_MakeEnvelope(box.min_lon, box.min_lat, box.max_lon, box.max_lat, SRID)
    # ST_Intersects includes the boundary, as BETWEEN does.
    return func.ST_Intersects(model.location, envelope)
