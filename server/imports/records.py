"""What a dataset importer yields, and the row plumbing UCDP and ACLED readers share.

Imports are context layers an analyst loads by hand, often from a file someone edited in a
spreadsheet. A bad row must therefore never stop the file: each row becomes an
:class:`ImportedEvent`, a :class:`RowError` that says exactly what is wrong and where, or a
:class:`SkippedRow` that Vigil deliberately leaves out. Only a file that is not a dataset at all
raises, before the first row, so the caller can refuse it as a whole.

The readers take GeoJSON (a FeatureCollection of Points, properties as columns) or CSV (with
``latitude``/``longitude`` columns) and decide by content, because exported files are often
misnamed. Column names are matched case-insensitively (older ACLED exports are upper-case).

Exceptions::

    ValueError
     └── DatasetFormatError   the file is not GeoJSON FeatureCollection or CSV of that dataset
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from geo.precision import LocationPrecision
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    SourceReliability,
    TimePrecision,
)

__all__ = [
    "DatasetFormatError",
    "ImportResult",
    "ImportedEvent",
    "RowError",
    "SkippedRow",
]


class DatasetFormatError(ValueError):
    """The file is not a GeoJSON FeatureCollection or a CSV with the dataset's columns."""


@dataclass(frozen=True)
class ImportedEvent:
    """One dataset event, resolved to Vigil's vocabulary but not yet stored.

    ``occurred_at`` is the earliest moment the event can have happened (UTC) and
    ``time_precision`` the length of the period starting there, as for field reports.
    ``details`` keeps the dataset's own context that has no column in Vigil (actors, dyads,
    death breakdowns, dataset status) so analysts can still read it; values are JSON-ready.
    """

    dataset: str
    external_id: str
    position: str
    category: str
    occurred_at: datetime
    time_precision: TimePrecision
    longitude: float
    latitude: float
    location_precision: LocationPrecision
    place_name: str | None
    admin1: str | None
    admin2: str | None
    killed_best: int | None
    killed_low: int | None
    killed_high: int | None
    perpetrator_type: PerpetratorType
    perpetrator_name: str | None
    source_reliability: SourceReliability
    information_credibility: InformationCredibility
    narrative: str | None
    details: dict[str, object]


@dataclass(frozen=True)
class RowError:
    """A row that cannot be imported as it stands; ``message`` starts with the position."""

    position: str
    message: str


@dataclass(frozen=True)
class SkippedRow:
    """A valid row that Vigil chooses not to import, and why."""

    position: str
    reason: str


ImportResult = ImportedEvent | RowError | SkippedRow


# --- internal plumbing shared by the readers ------------------------------------------------


class FieldError(ValueError):
    """Raised by the field parsers; the reader turns it into a :class:`RowError`."""


@dataclass(frozen=True)
class SourceRow:
    """One feature or CSV record before interpretation.

    ``values`` maps lower-cased column names to raw values (strings from CSV, JSON values
    from GeoJSON). ``problem`` is set when the row is structurally broken (wrong number of
    CSV fields, a non-Point geometry) and nothing else should be read from it.
    """

    position: str
    values: Mapping[str, object]
    longitude: object
    latitude: object
    problem: str | None = None

    def error(self, message: str) -> RowError:
        return RowError(self.position, f"{self.position}: {message}")


def load_rows(path: Path, *, dataset: str, required: Sequence[tuple[str, ...]]) -> list[SourceRow]:
    """Read a whole dataset file into rows, refusing files that are not that dataset.

    The file is read eagerly so that a wrong file raises at call time, before the caller starts
    a transaction, and so no file handle is left open by an abandoned generator.

    Parameters
    ----------
    path
        GeoJSON or CSV file; the format is chosen by content (first non-space character ``{``
        means GeoJSON), not by extension.
    dataset
        Human name of the dataset for error messages (``"UCDP GED"``).
    required
        CSV columns that must exist, each entry a group of alternatives (any one suffices).
        ``latitude`` and ``longitude`` are always required in CSV.

    Raises
    ------
    DatasetFormatError
        If the file is empty, not UTF-8, not JSON/CSV, a JSON document that is not a GeoJSON
        FeatureCollection in WGS 84, or a CSV without the required columns.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(
            f"{path.name} is not a {dataset} file: it is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start})"
        ) from None
    stripped = text.lstrip()
    if not stripped:
        raise DatasetFormatError(f"{path.name} is empty")
    if stripped.startswith("{"):
        return _geojson_rows(text, name=path.name, dataset=dataset)
    return _csv_rows(text, name=path.name, dataset=dataset, required=required)


def _geojson_rows(text: str, *, name: str, dataset: str) -> list[SourceRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(
            f"{name} starts like GeoJSON but is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        found = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise DatasetFormatError(
            f"{name} is not a GeoJSON FeatureCollection (its type is {found!r}); export the "
            f"{dataset} events as a FeatureCollection of Points"
        )
    _check_crs(document.get("crs"), name=name)
    features = document.get("features")
    if not isinstance(features, list):
        raise DatasetFormatError(f"{name}: the FeatureCollection has no 'features' list")
    return [_feature_row(feature, number) for number, feature in enumerate(features, start=1)]


def _check_crs(crs: object, *, name: str) -> None:
    # RFC 7946 GeoJSON is always WGS 84, but GDAL still writes the old "crs" member; projected
    # coordinates would otherwise fail one row at a time with puzzling range errors.
    if crs is None:
        return
    crs_name = ""
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict):
        crs_name = str(crs["properties"].get("name", ""))
    if "CRS84" in crs_name.upper() or crs_name.endswith("4326"):
        return
    raise DatasetFormatError(
        f"{name} declares the coordinate reference system {crs_name or crs!r}; Vigil imports "
        "longitude/latitude in WGS 84 (CRS84 / EPSG:4326) only"
    )


def _feature_row(feature: object, number: int) -> SourceRow:
    position = f"feature {number}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return SourceRow(position, {}, None, None, problem="is not a GeoJSON Feature")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        return SourceRow(position, {}, None, None, problem="has no properties")
    values = {str(key).strip().lower(): value for key, value in properties.items()}
    geometry = feature.get("geometry")
    if geometry is None:
        # Some tools write attribute tables with coordinates as properties and no geometry.
        return SourceRow(position, values, values.get("longitude"), values.get("latitude"))
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else geometry
        return SourceRow(position, values, None, None, problem=f"geometry is a {kind}, not a Point")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        return SourceRow(
            position,
            values,
            None,
            None,
            problem=f"Point coordinates {coordinates!r} are not [longitude, latitude]",
        )
    return SourceRow(position, values, coordinates[0], coordinates[1])


def _csv_rows(
    text: str, *, name: str, dataset: str, required: Sequence[tuple[str, ...]]
) -> list[SourceRow]:
    first_line = text.lstrip().splitlines()[0]
    # Spreadsheets in many locales save with ';' and some tools export tab-separated files.
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text.lstrip("\r\n")), delimiter=delimiter)
    try:
        header = [column.strip().lower() for column in next(reader)]
    except csv.Error as exc:
        raise DatasetFormatError(f"{name}: the first line cannot be read as CSV ({exc})") from None
    needed = [("latitude",), ("longitude",), *required]
    missing = [" or ".join(group) for group in needed if not set(group) & set(header)]
    if missing:
        raise DatasetFormatError(
            f"{name} is neither GeoJSON (it does not start with '{{') nor a {dataset} CSV: "
            f"the header lacks the column(s) {', '.join(missing)}"
        )
    leading_blank_lines = len(text) - len(text.lstrip("\r\n"))
    offset = text[:leading_blank_lines].count("\n")
    rows: list[SourceRow] = []
    previous_end = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # A NUL byte or an oversized field: the file is damaged, not just one row.
            raise DatasetFormatError(
                f"{name}: line {offset + reader.line_num} cannot be read as CSV ({exc})"
            ) from None
        start = offset + previous_end + 1
        previous_end = reader.line_num
        if not any(field.strip() for field in record):
            continue
        position = f"line {start}"
        if len(record) != len(header):
            rows.append(
                SourceRow(
                    position,
                    {},
                    None,
                    None,
                    problem=f"has {len(record)} fields but the header has {len(header)} columns",
                )
            )
            continue
        values = dict(zip(header, record, strict=True))
        rows.append(SourceRow(position, values, values["longitude"], values["latitude"]))
    return rows


# --- field parsers: each raises FieldError with a message that needs no further context ----


def text(values: Mapping[str, object], name: str) -> str | None:
    """The column as stripped text; empty and missing are both ``None``."""
    value = values.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


def required_text(values: Mapping[str, object], name: str) -> str:
    result = text(values, name)
    if result is None:
        raise FieldError(f"{name} is missing")
    return result


def integer(values: Mapping[str, object], name: str, *, minimum: int | None = None) -> int | None:
    """The column as an int (``"3"``, ``3`` and ``3.0`` alike), ``None`` when empty."""
    value = values.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _as_int(value)
    if number is None:
        raise FieldError(f"{name} {value!r} is not a whole number")
    if minimum is not None and number < minimum:
        raise FieldError(f"{name} {number} is below {minimum}")
    return number


def required_integer(values: Mapping[str, object], name: str, *, minimum: int | None = None) -> int:
    number = integer(values, name, minimum=minimum)
    if number is None:
        raise FieldError(f"{name} is missing")
    return number


def loose_value(values: Mapping[str, object], name: str) -> object:
    """A context value for ``details``: an int when it reads as one, else stripped text.

    Lenient on purpose: these columns are kept for reading, never computed on, and GeoJSON
    and CSV copies of the same row must give the same details.
    """
    raw = text(values, name)
    if raw is None:
        return None
    number = _as_int(values.get(name))
    return raw if number is None else number


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if not math.isfinite(number) or not number.is_integer():
        return None
    return int(number)


def coordinates(row: SourceRow) -> tuple[float, float]:
    """Validated ``(longitude, latitude)`` in WGS 84 degrees."""
    if _blank(row.longitude) and _blank(row.latitude):
        raise FieldError("has no coordinates (no Point geometry and no latitude/longitude)")
    longitude = _coordinate(row.longitude, "longitude", 180.0)
    latitude = _coordinate(row.latitude, "latitude", 90.0)
    if longitude == 0.0 and latitude == 0.0:
        raise FieldError(
            "coordinates (0, 0) are 'null island', the usual placeholder for a missing location"
        )
    return longitude, latitude


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _coordinate(value: object, name: str, limit: float) -> float:
    if _blank(value):
        raise FieldError(f"{name} is missing")
    if isinstance(value, bool):
        raise FieldError(f"{name} {value!r} is not a number")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise FieldError(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise FieldError(f"{name} {value!r} is not a finite number")
    if not -limit <= number <= limit:
        raise FieldError(f"{name} {number!r} is out of range [{-limit:g}, {limit:g}]")
    return number


def parse_iso_date(value: str, name: str) -> date:
    """A date from ``2014-03-05``, ``2014-03-05T00:00:00`` or ``2014-03-05 00:00:00.000``."""
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        pass
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FieldError(f"{name} {value!r} is not a date") from None


def utc_midnight(day: date) -> datetime:
    """Start of a calendar day in UTC (datasets give calendar dates with no time zone)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def present(details: Mapping[str, object]) -> dict[str, object]:
    """Drop empty entries so ``details`` holds only what the row actually says."""
    return {key: value for key, value in details.items() if value is not None}
