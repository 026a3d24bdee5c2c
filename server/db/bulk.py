"""Many rows at once: inserting them with one statement (binary ``COPY … FROM STDIN`` on
PostgreSQL, an ``executemany`` INSERT on SQLite), and matching a column against a long list of
values (:func:`one_of`).

For the write paths that take a batch at a time (a sync push of a hundred reports): the ORM's
unit of work costs tens of microseconds of Python per object and column, which was most of a
push's time. Rows are plain dicts of Python values as the ORM would hold them (shapely
geometries, aware datetimes, enum members). On SQLite each column's bind processor converts
them, as for any INSERT. On PostgreSQL each column is encoded whole (geometries vectorised by
shapely) into the binary COPY format of its database type; a column type with no encoding here
is refused with TypeError (add one when a table gets a new kind of column). Python-side column
defaults (``default=utcnow``) are applied to columns the rows leave out, as an INSERT would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    func,
    select,
    tuple_,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from server.db.base import UtcDateTime
from server.db.columns import FailClosedEnum
from server.db.types import SRID, GeometryColumn

__all__ = ["insert_rows", "one_of"]

Values = list[Any]


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table`` in the session's transaction.

    Pending ORM changes are flushed first, so rows may refer to objects added before. Database
    errors surface as SQLAlchemy's (``IntegrityError`` for a taken key), as from an INSERT.
    """
    if not rows:
        return
    session.flush()
    names = list(rows[0])
    if any(len(row) != len(names) for row in rows) or any(list(row) != names for row in rows):
        raise ValueError(f"rows for {table.name} do not all have the same columns")
    defaulted = _python_defaults(table, tuple(names))
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        filled = [{**row, **{c.key: make() for c, make in defaulted}} for row in rows]
        connection.execute(table.insert(), filled)
        return
    columns = [table.c[name] for name in names] + [column for column, _ in defaulted]
    data = [[row[name] for row in rows] for name in names]
    data += [[make() for _ in rows] for _, make in defaulted]
    encoders = [_encoder(column) for column in columns]
    encoded = [enc.encode(values) for enc, values in zip(encoders, data, strict=True)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types([enc.pg_type for enc in encoders])
            for row in zip(*encoded, strict=True):
                copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement.as_string(driver), None, exc, psycopg.Error) from exc


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for a list of hundreds (a push's op ids, a batch's cells). On
    PostgreSQL it is ``column = ANY(:array)``: one parameter, so neither the statement text nor
    the driver's work on it grows with the list; on SQLite a plain IN."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        condition: ColumnElement[bool] = column == any_(array)
        return condition
    in_list: ColumnElement[bool] = column.in_(values)
    return in_list


def pairs_in(
    session: Session, columns: tuple[Any, Any], pairs: Sequence[tuple[Any, Any]]
) -> ColumnElement[bool]:
    """``(a, b) IN (pairs)`` for a list of hundreds (a batch's (resolution, cell) keys).

    On PostgreSQL ``(a, b) IN (SELECT * FROM unnest(:as, :bs))``: two array parameters, so the
    statement is the same for any length and the planner makes it a semi-join probing an index
    on ``(a, b)``. A plain ``b = ANY(:bs)`` would not do: once psycopg prepares the statement
    the generic plan scans the array against every index entry of ``a`` (measured: 95 ms for
    400 cells against 14,000 AOR cells, 2 ms with the pairs). On SQLite a row-value IN."""
    first, second = columns
    if session.get_bind().dialect.name == "postgresql":
        firsts = bindparam(None, [a for a, _ in pairs], type_=ARRAY(first.type))
        seconds = bindparam(None, [b for _, b in pairs], type_=ARRAY(second.type))
        wanted = select(func.unnest(firsts, seconds).table_valued("a", "b").render_derived())
        condition: ColumnElement[bool] = tuple_(first, second).in_(wanted)
        return condition
    in_pairs: ColumnElement[bool] = tuple_(first, second).in_(list(pairs))
    return in_pairs


@cache
def _python_defaults(
    table: Table, given: tuple[str, ...]
) -> tuple[tuple[Column[Any], Callable[[], Any]], ...]:
    """Columns left out of the rows that have a Python-side default (``default=utcnow``)."""
    out: list[tuple[Column[Any], Callable[[], Any]]] = []
    for column in table.columns:
        default = column.default
        if column.key in given or default is None:
            continue
        if getattr(default, "is_callable", False):
            # SQLAlchemy wraps a default to take the execution context; there is none here.
            wrapped = default.arg  # type: ignore[attr-defined]
            out.append((column, lambda wrapped=wrapped: wrapped(None)))
        elif getattr(default, "is_scalar", False):
            value = default.arg  # type: ignore[attr-defined]
            out.append((column, lambda value=value: value))
    return tuple(out)


# --------------------------------------------------------------------------- binary encoders


@dataclass(frozen=True)
class _Encoder:
    """A column's PostgreSQL type for binary COPY and how to turn its Python values into
    what psycopg's binary dumper of that type takes.

    Binary COPY carries no type per field, only each value's bytes, so a column may be sent
    as ``bytea`` with its value already in the column type's binary format (uuid: its 16
    bytes; jsonb: version byte and text): psycopg's C bytea dumper then does the rest."""

    pg_type: str
    encode: Callable[[Values], Values]


def _as_is(values: Values) -> Values:
    return values


def _geometries(values: Values) -> Values:
    # EWKB is the binary input format of PostGIS geometry.
    array = np.empty(len(values), dtype=object)
    array[:] = values
    wkb = shapely.to_wkb(shapely.set_srid(array, SRID), include_srid=True)
    return list(wkb)


def _utc_datetimes(values: Values) -> Values:
    for value in values:
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError("Vigil stores only timezone-aware UTC times")
    return values


def _enum_values(members: type[Enum] | None, allowed: frozenset[str]) -> Callable[[Values], Values]:
    def encode(values: Values) -> Values:
        out = []
        for value in values:
            if isinstance(value, Enum):
                value = value._value_  # the attribute, not the (slower) property
            elif value is not None and members is not None:
                value = members(value).value  # raises for a value that is no member
            if value is not None and allowed and value not in allowed:
                raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
            out.append(value)
        return out

    return encode


#: jsonb's binary input format: a version byte, then the JSON text.
_JSONB_VERSION = b"\x01"


def _json(values: Values) -> Values:
    # Encoded here and sent as bytes (see _Encoder): psycopg's Jsonb dumper is Python code
    # called per value, and its json.dumps call is the same work.
    return [
        None
        if v is None
        else _JSONB_VERSION + json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode()
        for v in values
    ]


def _uuids(values: Values) -> Values:
    return [None if v is None else v.bytes for v in values]


def _encoder(column: Column[Any]) -> _Encoder:
    encoder = _encoder_for_type(column.type)
    if encoder is None:
        raise TypeError(
            f"no binary COPY encoding for {column.table.name}.{column.name} ({column.type!r})"
        )
    return encoder


@cache
def _encoder_for_type(kind: TypeEngine[Any]) -> _Encoder | None:
    if isinstance(kind, GeometryColumn):
        return _Encoder("bytea", _geometries)
    if isinstance(kind, UtcDateTime):
        return _Encoder("timestamptz", _utc_datetimes)
    if isinstance(kind, FailClosedEnum):
        return _Encoder("text", _enum_values(kind.enum, frozenset()))
    if isinstance(kind, SAEnum):
        allowed = frozenset(str(e) for e in kind.enums)
        return _Encoder("text", _enum_values(kind.enum_class, allowed))
    if isinstance(kind, (JSON, JSONB)):
        return _Encoder("bytea", _json)
    if type(kind) is Uuid:
        return _Encoder("bytea", _uuids)
    simple: list[tuple[type[TypeEngine[Any]], str]] = [
        (Uuid, "uuid"),
        (BigInteger, "int8"),
        (Integer, "int4"),
        (Float, "float8"),
        (Boolean, "bool"),
        (Text, "text"),
        (String, "text"),
        (LargeBinary, "bytea"),
    ]
    for sa_type, pg_type in simple:
        if type(kind) is sa_type or (
            isinstance(kind, sa_type) and not hasattr(kind, "process_bind_param")
        ):
            return _Encoder(pg_type, _as_is)
    return None
