"""Column types that read the same on PostGIS and on SQLite.

``GeometryColumn`` stores a shapely geometry as ``geometry(<type>, 4326)`` on PostgreSQL
(through GeoAlchemy2, so QGIS reads the tables directly) and as WKB bytes on SQLite, where there
is no spatial extension to count on. Python code always sees shapely objects.
"""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2 import Geometry
from geoalchemy2.elements import WKBElement
from sqlalchemy import BigInteger, Dialect, LargeBinary
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["SRID", "CellId", "GeometryColumn"]

SRID = 4326


class GeometryColumn(TypeDecorator[Any]):
    """A shapely geometry stored natively on PostGIS and as WKB on SQLite.

    GeoAlchemy2's DDL hooks inspect column types with ``load_dialect_impl(None)`` and read
    ``spatial_index``, ``use_N_D_index`` and ``use_typmod`` off the column type itself, so this
    decorator answers all of them. ``spatial_index`` is False: the GiST indexes are declared
    explicitly (PostgreSQL only) in the models and the migrations, which keeps SQLite from getting a
    useless B-tree over WKB blobs.
    """

    impl = LargeBinary
    cache_ok = True

    spatial_index = False
    use_N_D_index = False  # noqa: N815 - the name GeoAlchemy2 reads
    use_typmod = None

    def __init__(self, geometry_type: str) -> None:
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect: Dialect | None) -> TypeEngine[Any]:
        if dialect is None or dialect.name == "postgresql":
            geometry = Geometry(self.geometry_type, srid=SRID, spatial_index=False)
            if dialect is None:
                return geometry
            return dialect.type_descriptor(geometry)
        return dialect.type_descriptor(LargeBinary())

    def bind_expression(self, bindvalue: Any) -> Any:
        return bindvalue

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, shapely.Geometry):
            raise TypeError(f"expected a shapely geometry, got {type(value).__name__}")
        if dialect.name == "postgresql":
            return f"SRID={SRID};{shapely.to_wkt(value, rounding_precision=-1)}"
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            return shapely.from_wkb(bytes(value.data))
        if isinstance(value, memoryview):
            value = bytes(value)
        if isinstance(value, (bytes, bytearray)):
            return shapely.from_wkb(bytes(value))
        if isinstance(value, str):
            # PostGIS returns hex EWKB when the column is read without GeoAlchemy2's wrapper.
            return shapely.from_wkb(bytes.fromhex(value))
        raise TypeError(f"cannot read a geometry from {type(value).__name__}")


class CellId(TypeDecorator[int]):
    """An H3 cell held as a signed BIGINT (H3 never sets the top bit)."""

    impl = BigInteger
    cache_ok = True
