"""Read ACLED event files (CSV or GeoJSON export) into Vigil events.

ACLED is near-real-time, weekly-updated event data; a mission loads it as a context layer to
see political violence around its own reports. Event types that are not protection threats
(agreements, arrests, …) come back as :class:`~server.imports.records.SkippedRow`, and types
that are not ACLED's at all (misspelt, or the pre-2019 vocabulary) as
:class:`~server.imports.records.RowError`. The crosswalk itself is
:func:`server.taxonomy.codes.category_for_acled`.

Conversion choices:

- ``event_date`` in ISO (``2023-01-15``, the API), ACLED's export style (``15 January 2023``)
  or ``15-01-2023``. ACLED codes an imprecise date at the middle of the period, so with
  ``time_precision`` 2 (week) the event starts 3 days earlier, and with 3 (month) on the 1st;
- ``geo_precision`` 1 → settlement, 2 → area, 3 → province (ACLED places those events at the
  provincial capital);
- perpetrator type from ``inter1``, numeric (1-8) or the text labels ACLED uses since 2024:
  state forces; rebel group → non-state armed group; political and identity militias →
  militia/community defence; UN missions → peacekeepers; other external forces named
  "Military/Police Forces of …" → state forces; rioters, protesters, civilians and anything
  else → unknown;
- ``civilian_targeting`` is ACLED's column since 2023; in older files with no such column,
  an event whose ``inter2`` is civilians counts as targeting civilians;
- grading B2, ``notes`` as the narrative, ``fatalities`` as the best estimate of killed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from geo.precision import LocationPrecision
from server.imports.records import (
    FieldError,
    ImportedEvent,
    ImportResult,
    SkippedRow,
    SourceRow,
    coordinates,
    integer,
    load_rows,
    loose_value,
    parse_iso_date,
    present,
    required_integer,
    required_text,
    text,
    utc_midnight,
)
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    SourceReliability,
    TimePrecision,
)
from server.taxonomy.codes import category_for_acled, find_acled_type

__all__ = ["DATASET", "acled_actor_type", "read_acled"]

DATASET = "acled"

_T = TypeVar("_T")

_GEO_PRECISION: dict[int, LocationPrecision] = {
    1: LocationPrecision.SETTLEMENT,
    2: LocationPrecision.AREA,
    3: LocationPrecision.PROVINCE,
}

_TIME_PRECISION: dict[int, TimePrecision] = {
    1: TimePrecision.DAY,
    2: TimePrecision.WEEK,
    3: TimePrecision.MONTH,
}

#: ACLED's actor types: numeric ``inter`` code → the label ACLED's newer files use.
INTER_LABELS: dict[int, str] = {
    1: "State forces",
    2: "Rebel group",
    3: "Political militia",
    4: "Identity militia",
    5: "Rioters",
    6: "Protesters",
    7: "Civilians",
    8: "External/Other forces",
}

_INTER_BY_LABEL: dict[str, int] = {label.casefold(): code for code, label in INTER_LABELS.items()}
# Plurals and spellings seen in ACLED's own documentation over the years.
_INTER_BY_LABEL |= {
    "rebel groups": 2,
    "political militias": 3,
    "identity militias": 4,
    "protestors": 6,
    "external/other force": 8,
}

_INTER_PERPETRATOR: dict[int, PerpetratorType] = {
    1: PerpetratorType.STATE_FORCES,
    2: PerpetratorType.NON_STATE_ARMED_GROUP,
    3: PerpetratorType.MILITIA_COMMUNITY_DEFENCE,
    4: PerpetratorType.MILITIA_COMMUNITY_DEFENCE,
    5: PerpetratorType.UNKNOWN,
    6: PerpetratorType.UNKNOWN,
    7: PerpetratorType.UNKNOWN,
    8: PerpetratorType.UNKNOWN,
}

_UN_MISSIONS = ("united nations", "minusca", "monusco", "minusma", "unmiss", "unisfa", "unifil")

_MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_NAMED_MONTH_DATE = re.compile(r"(\d{1,2})[ -]([A-Za-z]+)[ -](\d{4})")
_DAY_FIRST_DATE = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")

_CONTEXT_COLUMNS = (
    "year",
    "disorder_type",
    "event_type",
    "sub_event_type",
    "actor1",
    "assoc_actor_1",
    "actor2",
    "assoc_actor_2",
    "interaction",
    "country",
    "iso",
    "admin3",
    "source",
    "source_scale",
    "tags",
    "timestamp",
)


def acled_actor_type(inter: int | None, actor: str | None) -> PerpetratorType:
    """Classify an ACLED actor as a perpetrator type from its ``inter`` code and name.

    The name matters only for "External/Other forces" (8), which lumps UN missions, foreign
    armies and private military companies together, and for UN missions whatever their code.

    Examples
    --------
    >>> acled_actor_type(3, "Anti-Balaka")
    <PerpetratorType.MILITIA_COMMUNITY_DEFENCE: 'militia_community_defence'>
    >>> acled_actor_type(8, "MONUSCO: United Nations Organization Stabilization Mission")
    <PerpetratorType.PEACEKEEPERS: 'peacekeepers'>
    """
    name = (actor or "").casefold()
    if any(mission in name for mission in _UN_MISSIONS):
        return PerpetratorType.PEACEKEEPERS
    if inter == 8 and name.startswith(("military forces of", "police forces of")):
        return PerpetratorType.STATE_FORCES
    if inter is None:
        return PerpetratorType.UNKNOWN
    return _INTER_PERPETRATOR[inter]


def read_acled(path: Path) -> Iterator[ImportResult]:
    """Read an ACLED CSV or GeoJSON export, one result per record or feature, in file order.

    Parameters
    ----------
    path
        CSV with ACLED's columns (``latitude``/``longitude`` included), or a GeoJSON
        FeatureCollection of Points whose properties are ACLED's columns.

    Returns
    -------
    Iterator of ImportedEvent, RowError or SkippedRow
        Rows of an event type Vigil does not map become :class:`SkippedRow`; bad rows become
        :class:`RowError` and never stop the file. Positions are ``"line N"`` (the record's
        first physical line, header = line 1) or ``"feature N"`` (1-based).

    Raises
    ------
    DatasetFormatError
        At call time, if the file is neither a GeoJSON FeatureCollection nor a CSV with
        ``event_id_cnty``, ``event_date``, ``time_precision``, ``event_type``,
        ``sub_event_type``, ``geo_precision``, ``latitude`` and ``longitude``.
    """
    rows = load_rows(
        path,
        dataset="ACLED",
        required=[
            ("event_id_cnty",),
            ("event_date",),
            ("time_precision",),
            ("event_type",),
            ("sub_event_type",),
            ("geo_precision",),
        ],
    )
    return (_convert(row) for row in rows)


def _convert(row: SourceRow) -> ImportResult:
    if row.problem is not None:
        return row.error(row.problem)
    try:
        return _event(row)
    except FieldError as exc:
        return row.error(str(exc))


def _event(row: SourceRow) -> ImportedEvent | SkippedRow:
    values = row.values
    external_id = required_text(values, "event_id_cnty")
    longitude, latitude = coordinates(row)
    event_date = _event_date(required_text(values, "event_date"))
    time_precision = _lookup(values, "time_precision", _TIME_PRECISION, "1 day, 2 week, 3 month")
    location_precision = _lookup(
        values, "geo_precision", _GEO_PRECISION, "1 town, 2 area, 3 province"
    )
    event_type = required_text(values, "event_type")
    sub_event_type = required_text(values, "sub_event_type")
    if find_acled_type(event_type, sub_event_type) is None:
        raise FieldError(
            f"event_type {event_type!r} / sub_event_type {sub_event_type!r} is not one of "
            "ACLED's event types (files coded before 2019 must be converted first)"
        )
    fatalities = integer(values, "fatalities", minimum=0)
    inter1 = _inter(values, "inter1")
    inter2 = _inter(values, "inter2")
    targeting = _civilian_targeting(values, inter2)
    category = category_for_acled(event_type, sub_event_type, fatalities, targeting)
    if category is None:
        return SkippedRow(
            row.position,
            f"ACLED {event_type} / {sub_event_type} is not a protection incident Vigil imports",
        )
    actor1 = text(values, "actor1")
    details = {column: loose_value(values, column) for column in _CONTEXT_COLUMNS}
    details |= {
        "event_date": event_date.isoformat(),
        "inter1": INTER_LABELS.get(inter1) if inter1 else None,
        "inter2": INTER_LABELS.get(inter2) if inter2 else None,
        "civilian_targeting": targeting,
    }
    return ImportedEvent(
        dataset=DATASET,
        external_id=external_id,
        position=row.position,
        category=category,
        occurred_at=_period_start(event_date, time_precision),
        time_precision=time_precision,
        longitude=longitude,
        latitude=latitude,
        location_precision=location_precision,
        place_name=text(values, "location"),
        admin1=text(values, "admin1"),
        admin2=text(values, "admin2"),
        killed_best=fatalities,
        killed_low=None,
        killed_high=None,
        perpetrator_type=acled_actor_type(inter1, actor1),
        perpetrator_name=actor1,
        source_reliability=SourceReliability.B,
        information_credibility=InformationCredibility.PROBABLY_TRUE,
        narrative=text(values, "notes"),
        details=present(details),
    )


def _lookup(values: Mapping[str, object], name: str, table: dict[int, _T], meaning: str) -> _T:
    code = required_integer(values, name)
    if code not in table:
        raise FieldError(f"{name} {code} is not an ACLED {name} code ({meaning})")
    return table[code]


def _event_date(value: str) -> date:
    if match := _NAMED_MONTH_DATE.fullmatch(value):
        day, month_name, year = match.groups()
        month = _MONTHS.get(month_name.casefold())
        if month is None:
            raise FieldError(f"event_date {value!r} is not a date ({month_name!r} is no month)")
        return _calendar_date(int(year), month, int(day), value)
    if match := _DAY_FIRST_DATE.fullmatch(value):
        day, month, year = (int(part) for part in match.groups())
        return _calendar_date(year, month, day, value)
    try:
        return parse_iso_date(value, "event_date")
    except FieldError:
        raise FieldError(
            f"event_date {value!r} is not a date (expected 2023-01-15 or 15 January 2023)"
        ) from None


def _calendar_date(year: int, month: int, day: int, original: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise FieldError(f"event_date {original!r} is not a date") from None


def _period_start(day: date, precision: TimePrecision) -> datetime:
    # ACLED dates an imprecise event at the middle of the period it knows.
    if precision is TimePrecision.WEEK:
        return utc_midnight(day - timedelta(days=3))
    if precision is TimePrecision.MONTH:
        return utc_midnight(day.replace(day=1))
    return utc_midnight(day)


def _inter(values: Mapping[str, object], name: str) -> int | None:
    raw = text(values, name)
    if raw is None:
        return None
    code = integer(values, name) if raw[0].isdigit() else _INTER_BY_LABEL.get(raw.casefold())
    if code == 0 and name == "inter2":
        return None  # ACLED's "no second actor"
    if code not in INTER_LABELS:
        raise FieldError(
            f"{name} {raw!r} is not an ACLED actor type (1-8, or a label such as "
            "'State forces' or 'Rebel group')"
        )
    return code


_TRUE = {"civilian targeting", "true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _civilian_targeting(values: Mapping[str, object], inter2: int | None) -> bool:
    if "civilian_targeting" not in values:
        return inter2 == 7
    raw = text(values, "civilian_targeting")
    if raw is None or raw.casefold() in _FALSE:
        return False
    if raw.casefold() in _TRUE:
        return True
    raise FieldError(f"civilian_targeting {raw!r} is neither 'Civilian targeting' nor empty")
