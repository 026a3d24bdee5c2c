"""Read UCDP Georeferenced Event Dataset (GED) files into Vigil events.

GED is the reference record of lethal organised violence; a mission loads it as a historical
context layer under its own reports. Two shapes are supported: the standard GED columns
(``id``, ``date_start``/``date_prec``, ``where_prec``, ``best``/``low``/``high``) and the
reduced extracts that carry only ``event_id``, ``year`` and ``best``, mixing stable GED events
with UCDP Candidate events (``dataset_status``). Both come as GeoJSON or CSV.

Conversion choices, each made so the imported event never claims more than UCDP does:

- location precision from ``where_prec``: 1 → settlement (UCDP's "exact" is a geocoded place,
  not a GPS fix), 2 → area, 3 → district, 4 and 5 → province, 6 and 7 → country; without
  ``where_prec`` → area, since most GED events are placed within 25 km but not all are;
- time from ``date_start`` with ``date_prec``: 1 → day, 2 and 3 → week, 4 → month, 5 → year,
  the period starting at ``date_start`` (UCDP's ``date_end`` always falls within it); without
  ``date_start`` → 1 January of ``year``, precision year;
- grading B2 (usually reliable source, probably true); Candidate events, released monthly
  before UCDP's full review, are B3;
- no narrative: GED has none and Vigil must not invent one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from geo.precision import LocationPrecision
from server.imports.records import (
    FieldError,
    ImportedEvent,
    ImportResult,
    SourceRow,
    coordinates,
    integer,
    load_rows,
    loose_value,
    parse_iso_date,
    present,
    required_integer,
    text,
    utc_midnight,
)
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    SourceReliability,
    TimePrecision,
)
from server.taxonomy.codes import UnknownCategoryError, category_for_ucdp

__all__ = ["DATASET", "read_ucdp", "ucdp_actor_type"]

DATASET = "ucdp-ged"

_WHERE_PREC: dict[int, LocationPrecision] = {
    1: LocationPrecision.SETTLEMENT,
    2: LocationPrecision.AREA,
    3: LocationPrecision.DISTRICT,
    4: LocationPrecision.PROVINCE,
    5: LocationPrecision.PROVINCE,
    6: LocationPrecision.COUNTRY,
    7: LocationPrecision.COUNTRY,
}

_DATE_PREC: dict[int, TimePrecision] = {
    1: TimePrecision.DAY,
    2: TimePrecision.WEEK,
    3: TimePrecision.WEEK,
    4: TimePrecision.MONTH,
    5: TimePrecision.YEAR,
}

# Lower-case fragments of actor names UCDP uses for militias, self-defence and community groups
# in the missions Vigil serves (CAR, DRC). UCDP has no actor-type column, so a name list is the
# only signal; anything not matched and not a government is treated as a non-state armed group.
_MILITIA_MARKERS: tuple[str, ...] = (
    "anti-balaka",
    "anti balaka",
    "antibalaka",
    "mai-mai",
    "mai mai",
    "mayi mayi",
    "mayi-mayi",
    "maï-maï",
    "codeco",
    "urdpc",
    "wazalendo",
    "vdp",
    "militia",
    "self-defense",
    "self-defence",
    "self defense",
    "autodéfense",
    "auto-défense",
    "raia mutomboki",
    "mobondo",
    "nyatura",
    "twiganeho",
    "ngumino",
    "chini ya kilima",
    "fpic",
    "janjaweed",
    "village",
    "clan ",
    "christians",
    "muslims",
    "farmers",
)

# Numeric columns kept in ``details``; the death breakdowns are validated, the rest kept as is.
_DEATH_COLUMNS = ("deaths_a", "deaths_b", "deaths_civilians", "deaths_unknown")
_CONTEXT_COLUMNS = (
    "year",
    "type_of_violence",
    "conflict_name",
    "dyad_name",
    "side_a",
    "side_b",
    "dataset_status",
    "where_prec",
    "where_coordinates",
    "date_prec",
    "event_clarity",
    "number_of_sources",
    "source_article",
    "country",
    "conflict_new_id",
    "dyad_new_id",
    "side_a_new_id",
    "side_b_new_id",
)


def ucdp_actor_type(side_a: str | None) -> PerpetratorType:
    """Classify a UCDP actor name as a perpetrator type.

    UCDP names governments "Government of …" and, in Candidate data, unidentified actors
    "XXX…"; militias and community self-defence groups are recognised by name (anti-balaka,
    Mai-Mai / Mayi Mayi, CODECO/URDPC, Wazalendo/VDP, "militia", "self-defense", identity groups
    such as "Christians (CAR)"). Ethnic groups UCDP names only by the ethnonym are not
    recognised and fall to non-state armed group; ``details`` keeps the name for analysts.

    Examples
    --------
    >>> ucdp_actor_type("Government of Central African Republic")
    <PerpetratorType.STATE_FORCES: 'state_forces'>
    >>> ucdp_actor_type("anti-Balaka")
    <PerpetratorType.MILITIA_COMMUNITY_DEFENCE: 'militia_community_defence'>
    >>> ucdp_actor_type("FPRC")
    <PerpetratorType.NON_STATE_ARMED_GROUP: 'non_state_armed_group'>
    """
    if side_a is None or not side_a.strip() or side_a.strip().upper().startswith("XXX"):
        return PerpetratorType.UNKNOWN
    name = side_a.strip().casefold()
    if name.startswith("government of"):
        return PerpetratorType.STATE_FORCES
    if any(marker in name for marker in _MILITIA_MARKERS):
        return PerpetratorType.MILITIA_COMMUNITY_DEFENCE
    return PerpetratorType.NON_STATE_ARMED_GROUP


def read_ucdp(path: Path) -> Iterator[ImportResult]:
    """Read a UCDP GED GeoJSON or CSV file, one result per feature or record, in file order.

    Parameters
    ----------
    path
        GeoJSON FeatureCollection of Points, or CSV with ``latitude``/``longitude`` columns.

    Returns
    -------
    Iterator of ImportedEvent, RowError or SkippedRow
        Bad rows become :class:`RowError` and never stop the file. Positions are
        ``"feature N"`` (1-based) for GeoJSON and ``"line N"`` (the record's first physical
        line, header = line 1) for CSV.

    Raises
    ------
    DatasetFormatError
        At call time, if the file is neither a GeoJSON FeatureCollection nor a CSV with
        ``id`` or ``event_id``, ``type_of_violence``, ``date_start`` or ``year``, latitude
        and longitude.
    """
    rows = load_rows(
        path,
        dataset="UCDP GED",
        required=[("id", "event_id"), ("type_of_violence",), ("date_start", "year")],
    )
    return (_convert(row) for row in rows)


def _convert(row: SourceRow) -> ImportResult:
    if row.problem is not None:
        return row.error(row.problem)
    try:
        return _event(row)
    except (FieldError, UnknownCategoryError) as exc:
        return row.error(str(exc))


def _event(row: SourceRow) -> ImportedEvent:
    values = row.values
    external_id = text(values, "id") or text(values, "event_id")
    if external_id is None:
        raise FieldError("id (or event_id) is missing")
    longitude, latitude = coordinates(row)
    occurred_at, time_precision, date_end = _when(row)
    type_of_violence = required_integer(values, "type_of_violence")
    deaths = {column: integer(values, column, minimum=0) for column in _DEATH_COLUMNS}
    best = integer(values, "best", minimum=0)
    low = integer(values, "low", minimum=0)
    high = integer(values, "high", minimum=0)
    # Not checked: low <= best <= high. Published GED breaks it in a few rows (20 of 1,848 in
    # the CAR extract, off by one or two after revisions); those are UCDP's figures to keep.
    category = category_for_ucdp(type_of_violence, deaths["deaths_civilians"], best)
    side_a = text(values, "side_a")
    status = text(values, "dataset_status")
    credibility = (
        InformationCredibility.POSSIBLY_TRUE
        if status is not None and status.casefold() == "candidate"
        else InformationCredibility.PROBABLY_TRUE
    )
    details = {column: loose_value(values, column) for column in _CONTEXT_COLUMNS}
    details.update(deaths)
    details["type_of_violence"] = type_of_violence
    details["date_end"] = date_end.isoformat() if date_end else None
    return ImportedEvent(
        dataset=DATASET,
        external_id=external_id,
        position=row.position,
        category=category,
        occurred_at=occurred_at,
        time_precision=time_precision,
        longitude=longitude,
        latitude=latitude,
        location_precision=_where(row),
        place_name=text(values, "where_description"),
        admin1=text(values, "adm_1"),
        admin2=text(values, "adm_2"),
        killed_best=best,
        killed_low=low,
        killed_high=high,
        perpetrator_type=ucdp_actor_type(side_a),
        perpetrator_name=side_a,
        source_reliability=SourceReliability.B,
        information_credibility=credibility,
        narrative=None,
        details=present(details),
    )


def _where(row: SourceRow) -> LocationPrecision:
    where_prec = integer(row.values, "where_prec")
    if where_prec is None:
        return LocationPrecision.AREA
    if where_prec not in _WHERE_PREC:
        raise FieldError(f"where_prec {where_prec} is not a UCDP location precision (1-7)")
    return _WHERE_PREC[where_prec]


def _when(row: SourceRow) -> tuple[datetime, TimePrecision, date | None]:
    values = row.values
    start_text = text(values, "date_start")
    if start_text is None:
        year = integer(values, "year")
        if year is None:
            raise FieldError("has neither date_start nor year")
        if not 1 <= year <= 9999:
            raise FieldError(f"year {year} is not a calendar year")
        return utc_midnight(date(year, 1, 1)), TimePrecision.YEAR, None
    start = parse_iso_date(start_text, "date_start")
    date_prec = integer(values, "date_prec")
    if date_prec is None:
        raise FieldError("date_prec is missing (it says how precise date_start is)")
    if date_prec not in _DATE_PREC:
        raise FieldError(f"date_prec {date_prec} is not a UCDP date precision (1-5)")
    end_text = text(values, "date_end")
    end = parse_iso_date(end_text, "date_end") if end_text else None
    if end is not None and end < start:
        raise FieldError(f"date_end {end.isoformat()} is before date_start {start.isoformat()}")
    return utc_midnight(start), _DATE_PREC[date_prec], end
