"""Column helpers shared by the models: enums as readable strings, JSON, cell columns."""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Dialect, Index, String, TypeDecorator
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo import STORED_RESOLUTIONS

__all__ = [
    "CellColumns",
    "JsonColumn",
    "cell_column_name",
    "cell_indexes",
    "enum_column",
    "fail_closed_enum_column",
    "gist_index",
]

#: JSON on SQLite, JSONB on PostgreSQL.
JsonColumn = JSON().with_variant(JSONB(), "postgresql")


def enum_column(enum: type[Enum], length: int = 32) -> SAEnum:
    """Store an enum by its value (``"field_officer"``), readable in QGIS and psql alike."""
    return SAEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class FailClosedEnum(TypeDecorator[Any]):
    """An enum stored by value whose reads fail closed: a stored value that is no member (empty,
    misspelt, set by hand in psql, written by another release) or NULL reads as ``fallback``
    instead of raising, so a read path sees the most restrictive case rather than answering 500
    (SECURITY.md rule 1, Z9). Writes still accept members only."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[Enum], fallback: Enum, length: int = 32) -> None:
        super().__init__(length)
        self.enum = enum
        self.fallback = fallback

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(self.enum(value).value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Enum:
        try:
            return self.enum(value)
        except ValueError:
            return self.fallback


def fail_closed_enum_column(enum: type[Enum], fallback: Enum, length: int = 32) -> FailClosedEnum:
    """Like :func:`enum_column` (same VARCHAR), but an unknown stored value reads as
    ``fallback``: for columns access decisions are made from, such as a sensitivity tier."""
    return FailClosedEnum(enum, fallback, length)


def cell_column_name(resolution: int) -> str:
    return f"h3_res{resolution}"


class CellColumns:
    """One nullable BIGINT H3 cell per stored resolution; NULL where the location is too coarse.

    Written out rather than generated so that a reader (and QGIS) sees the columns as they are.
    """

    h3_res4: Mapped[int | None] = mapped_column(BigInteger)
    h3_res5: Mapped[int | None] = mapped_column(BigInteger)
    h3_res6: Mapped[int | None] = mapped_column(BigInteger)
    h3_res7: Mapped[int | None] = mapped_column(BigInteger)
    h3_res8: Mapped[int | None] = mapped_column(BigInteger)
    h3_res9: Mapped[int | None] = mapped_column(BigInteger)
    h3_res10: Mapped[int | None] = mapped_column(BigInteger)

    def cell_at(self, resolution: int) -> int | None:
        value: int | None = getattr(self, cell_column_name(resolution))
        return value

    def set_cells(self, cells_by_resolution: dict[int, int | None]) -> None:
        for resolution in STORED_RESOLUTIONS:
            setattr(self, cell_column_name(resolution), cells_by_resolution.get(resolution))


def cell_indexes(table: str) -> list[Index]:
    return [
        Index(f"ix_{table}_{cell_column_name(r)}", cell_column_name(r)) for r in STORED_RESOLUTIONS
    ]


def gist_index(name: str, column: str) -> Any:
    """A GiST index that exists only on PostgreSQL (SQLite has no use for one over WKB)."""
    return Index(name, column, postgresql_using="gist").ddl_if(dialect="postgresql")
