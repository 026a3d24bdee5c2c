"""UCDP GED and ACLED file parsers: real files in full, bad rows one by one, wrong files refused."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from geo.precision import LocationPrecision
from server.imports.acled import acled_actor_type, read_acled
from server.imports.records import (
    DatasetFormatError,
    ImportedEvent,
    ImportResult,
    RowError,
    SkippedRow,
)
from server.imports.ucdp import read_ucdp, ucdp_actor_type
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    SourceReliability,
    TimePrecision,
)
from server.taxonomy.codes import TAXONOMY

UCDP_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ucdp"
CAR_FILE = UCDP_DIR / "car_ucdp_ged_v23_1.geojson"
DRC_FILE = UCDP_DIR / "drc_ucdp_ged_events_2023_2025.geojson"
ACLED_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "acled_sample.csv"

ALL_CODES = {category.code for category in TAXONOMY}

#: A GeoJSON Feature as json.loads gives it.
Feature = dict[str, Any]


def _events(results: list[ImportResult]) -> list[ImportedEvent]:
    return [r for r in results if isinstance(r, ImportedEvent)]


def _errors(results: list[ImportResult]) -> list[RowError]:
    return [r for r in results if isinstance(r, RowError)]


def _without_position(event: ImportedEvent) -> ImportedEvent:
    return dataclasses.replace(event, position="")


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _feature(properties: dict[str, Any], lon: object, lat: object) -> Feature:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def _write_geojson(path: Path, features: list[Feature]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


@pytest.fixture(scope="module")
def ucdp_dir() -> Path:
    if not UCDP_DIR.is_dir():
        pytest.skip(f"UCDP extracts not found at {UCDP_DIR} (shared data is not checked out)")
    return UCDP_DIR


@pytest.fixture(scope="module")
def car_results(ucdp_dir: Path) -> list[ImportResult]:
    return list(read_ucdp(ucdp_dir / CAR_FILE.name))


@pytest.fixture(scope="module")
def car_by_id(car_results: list[ImportResult]) -> dict[str, ImportedEvent]:
    return {event.external_id: event for event in _events(car_results)}


@pytest.fixture(scope="module")
def car_features(ucdp_dir: Path) -> list[Feature]:
    document: dict[str, list[Feature]] = json.loads((ucdp_dir / CAR_FILE.name).read_text("utf-8"))
    return document["features"]


@pytest.fixture(scope="module")
def drc_results(ucdp_dir: Path) -> list[ImportResult]:
    return list(read_ucdp(ucdp_dir / DRC_FILE.name))


@pytest.fixture(scope="module")
def acled_results() -> list[ImportResult]:
    return list(read_acled(ACLED_FIXTURE))


# --- UCDP GED 23.1, Central African Republic -------------------------------------------------


def test_car_file_imports_every_feature(car_results: list[ImportResult]) -> None:
    kinds = Counter(type(result).__name__ for result in car_results)
    assert kinds == {"ImportedEvent": 1848}, [str(e) for e in _errors(car_results)[:5]]


def test_car_events_keep_file_order_and_unique_ids(car_results: list[ImportResult]) -> None:
    events = _events(car_results)
    assert [e.position for e in events] == [f"feature {n}" for n in range(1, 1849)]
    assert len({e.external_id for e in events}) == 1848
    assert {e.dataset for e in events} == {"ucdp-ged"}


def test_car_points_lie_in_the_published_bounding_box(car_results: list[ImportResult]) -> None:
    # README: lon 14.61-27.20, lat 3.19-10.47, rounded to 2 decimals (the westernmost point is
    # 14.6088), so allow half a unit of the last published digit.
    half = 0.005
    outside = [
        e.external_id
        for e in _events(car_results)
        if not (
            14.61 - half <= e.longitude <= 27.20 + half
            and 3.19 - half <= e.latitude <= 10.47 + half
        )
    ]
    assert outside == []


def test_car_events_are_graded_and_dated_in_utc(car_results: list[ImportResult]) -> None:
    events = _events(car_results)
    assert all(e.occurred_at.utcoffset() == timedelta(0) for e in events)
    assert {e.source_reliability for e in events} == {SourceReliability.B}
    assert {e.information_credibility for e in events} == {InformationCredibility.PROBABLY_TRUE}
    assert {e.narrative for e in events} == {None}
    assert {e.category for e in events} <= ALL_CODES


def test_car_first_feature_in_full(car_by_id: dict[str, ImportedEvent]) -> None:
    event = car_by_id["36210"]
    assert event.position == "feature 1"
    assert event.category == "armed_clash"
    assert event.occurred_at == datetime(2009, 2, 20, tzinfo=UTC)
    assert event.time_precision is TimePrecision.DAY
    assert (event.longitude, event.latitude) == (26.486881, 5.399784)
    assert event.location_precision is LocationPrecision.PROVINCE
    assert event.place_name == "Central African Republic remote southeast"
    assert (event.admin1, event.admin2) == (None, None)
    assert (event.killed_best, event.killed_low, event.killed_high) == (3, 3, 3)
    assert event.perpetrator_type is PerpetratorType.STATE_FORCES
    assert event.perpetrator_name == "Government of Uganda"
    assert event.details["side_b"] == "LRA"
    assert event.details["dyad_name"] == "Government of Uganda - LRA"
    assert event.details["deaths_b"] == 3
    assert event.details["date_end"] == "2009-02-20"


@pytest.mark.parametrize(
    ("ged_id", "where_prec", "expected"),
    [
        ("36212", 1, LocationPrecision.SETTLEMENT),
        ("33542", 2, LocationPrecision.AREA),
        ("32069", 3, LocationPrecision.DISTRICT),
        ("176093", 4, LocationPrecision.PROVINCE),
        ("36210", 5, LocationPrecision.PROVINCE),
        ("61575", 6, LocationPrecision.COUNTRY),
    ],
    ids=[
        "where1-settlement",
        "where2-area",
        "where3-district",
        "where4-province",
        "where5-province",
        "where6-country",
    ],
)
def test_car_location_precision(
    car_by_id: dict[str, ImportedEvent], ged_id: str, where_prec: int, expected: LocationPrecision
) -> None:
    event = car_by_id[ged_id]
    assert event.details["where_prec"] == where_prec
    assert event.location_precision is expected


@pytest.mark.parametrize(
    ("ged_id", "date_prec", "expected_precision", "expected_start"),
    [
        ("36210", 1, TimePrecision.DAY, datetime(2009, 2, 20, tzinfo=UTC)),
        ("33807", 2, TimePrecision.WEEK, datetime(2009, 9, 13, tzinfo=UTC)),
        ("36251", 3, TimePrecision.WEEK, datetime(2010, 5, 10, tzinfo=UTC)),
        ("30490", 4, TimePrecision.MONTH, datetime(2012, 3, 1, tzinfo=UTC)),
        ("36211", 5, TimePrecision.YEAR, datetime(2009, 8, 7, tzinfo=UTC)),
    ],
    ids=["date1-day", "date2-week", "date3-week", "date4-month", "date5-year"],
)
def test_car_time_precision(
    car_by_id: dict[str, ImportedEvent],
    ged_id: str,
    date_prec: int,
    expected_precision: TimePrecision,
    expected_start: datetime,
) -> None:
    event = car_by_id[ged_id]
    assert event.details["date_prec"] == date_prec
    assert event.time_precision is expected_precision
    assert event.occurred_at == expected_start


def test_car_date_end_falls_within_the_period(car_results: list[ImportResult]) -> None:
    # The period [occurred_at, occurred_at + precision) must hold UCDP's whole date range.
    longest = {
        TimePrecision.DAY: 1,
        TimePrecision.WEEK: 7,
        TimePrecision.MONTH: 31,
        TimePrecision.YEAR: 366,
    }
    late = [
        e.external_id
        for e in _events(car_results)
        if (datetime.fromisoformat(str(e.details["date_end"])).replace(tzinfo=UTC) - e.occurred_at)
        >= timedelta(days=longest[e.time_precision])
    ]
    assert late == []


def test_car_categories_follow_type_of_violence(car_results: list[ImportResult]) -> None:
    by_type = Counter((e.details["type_of_violence"], e.category) for e in _events(car_results))
    one_sided = by_type[(3, "killing_of_civilians")] + by_type[(3, "attack_on_civilians")]
    assert one_sided == 1076
    assert by_type[(1, "armed_clash")] + by_type[(2, "armed_clash")] == 772
    assert sum(by_type.values()) == 1848


@pytest.mark.parametrize(
    ("ged_id", "expected"),
    [("22775", "killing_of_civilians"), ("22782", "attack_on_civilians")],
    ids=["deaths-only-in-deaths_unknown", "no-deaths"],
)
def test_car_one_sided_events_without_civilian_deaths(
    car_by_id: dict[str, ImportedEvent], ged_id: str, expected: str
) -> None:
    event = car_by_id[ged_id]
    assert event.details["deaths_civilians"] == 0
    assert event.category == expected


def test_car_perpetrator_is_side_a(car_results: list[ImportResult]) -> None:
    events = _events(car_results)
    assert all(e.perpetrator_name == e.details["side_a"] for e in events)
    kinds = {e.perpetrator_name: e.perpetrator_type for e in events}
    assert kinds["anti-Balaka"] is PerpetratorType.MILITIA_COMMUNITY_DEFENCE
    assert kinds["Government of Central African Republic"] is PerpetratorType.STATE_FORCES
    assert kinds["UPC"] is PerpetratorType.NON_STATE_ARMED_GROUP


def test_details_are_json_ready(
    car_results: list[ImportResult],
    drc_results: list[ImportResult],
    acled_results: list[ImportResult],
) -> None:
    for event in _events(car_results + drc_results + acled_results):
        assert json.loads(json.dumps(event.details)) == event.details


@pytest.mark.parametrize(
    ("side_a", "expected"),
    [
        ("Government of Central African Republic", PerpetratorType.STATE_FORCES),
        ("Government of DR Congo (Zaire)", PerpetratorType.STATE_FORCES),
        ("anti-Balaka", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Anti-Balaka - Mokom, FPRC, MPC, RPRC", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Christians (CAR)", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Mayi Mayi Chini ya Tuna", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Mai-Mai Yakutumba", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("CODECO", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("URDPC", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Wazalendo", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Zaire self-defense group", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("Bolembe village", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        ("FPRC", PerpetratorType.NON_STATE_ARMED_GROUP),
        ("IS", PerpetratorType.NON_STATE_ARMED_GROUP),
        ("M23", PerpetratorType.NON_STATE_ARMED_GROUP),
        ("XXX490", PerpetratorType.UNKNOWN),
        ("", PerpetratorType.UNKNOWN),
        (None, PerpetratorType.UNKNOWN),
    ],
    ids=lambda value: str(value) if not isinstance(value, PerpetratorType) else "",
)
def test_ucdp_actor_type(side_a: str | None, expected: PerpetratorType) -> None:
    assert ucdp_actor_type(side_a) is expected


# --- UCDP extract, DR Congo (year only, GED + Candidate) -------------------------------------


def test_drc_file_imports_every_feature(drc_results: list[ImportResult]) -> None:
    kinds = Counter(type(result).__name__ for result in drc_results)
    assert kinds == {"ImportedEvent": 1943}, [str(e) for e in _errors(drc_results)[:5]]
    assert len({e.external_id for e in _events(drc_results)}) == 1943


def test_drc_dates_are_whole_years(drc_results: list[ImportResult]) -> None:
    events = _events(drc_results)
    assert {e.time_precision for e in events} == {TimePrecision.YEAR}
    assert all(
        e.occurred_at == datetime(int(str(e.details["year"])), 1, 1, tzinfo=UTC) for e in events
    )
    assert {e.occurred_at.year for e in events} == {2023, 2024, 2025}


def test_drc_candidate_events_are_less_credible(drc_results: list[ImportResult]) -> None:
    grading = Counter(
        (e.details["dataset_status"], e.information_credibility) for e in _events(drc_results)
    )
    assert grading == {
        ("candidate", InformationCredibility.POSSIBLY_TRUE): 1002,
        ("ged", InformationCredibility.PROBABLY_TRUE): 941,
    }


def test_drc_extract_without_where_prec_or_low_high(drc_results: list[ImportResult]) -> None:
    events = _events(drc_results)
    assert {e.location_precision for e in events} == {LocationPrecision.AREA}
    assert {(e.killed_low, e.killed_high) for e in events} == {(None, None)}
    assert all(e.killed_best is not None for e in events)
    first = events[0]
    assert (first.external_id, first.admin1, first.admin2) == (
        "ged_0",
        "Nord Kivu province",
        "Lubero territory",
    )


# --- UCDP as CSV ---------------------------------------------------------------------------------

CSV_SAMPLE_IDS = [36210, 36211, 33542, 32069, 176093, 61575, 30490, 22775, 22782]


def test_ucdp_csv_parses_like_the_geojson(
    tmp_path: Path,
    car_features: list[Feature],
    car_by_id: dict[str, ImportedEvent],
) -> None:
    features = [f for f in car_features if f["properties"]["id"] in CSV_SAMPLE_IDS]
    assert len(features) == len(CSV_SAMPLE_IDS)
    columns = list(features[0]["properties"])
    rows = []
    for feature in features:
        properties = dict(feature["properties"])
        # GED's own CSV writes timestamps with a space and milliseconds.
        for column in ("date_start", "date_end"):
            properties[column] = str(properties[column]).replace("T", " ") + ".000"
        longitude, latitude = feature["geometry"]["coordinates"]
        rows.append([properties[c] for c in columns] + [latitude, longitude])
    path = _write_csv(tmp_path / "ged.csv", [*columns, "latitude", "longitude"], rows)

    results = list(read_ucdp(path))

    assert [r.position for r in results] == [f"line {n}" for n in range(2, 2 + len(features))]
    from_csv = [_without_position(e) for e in _events(results)]
    in_file_order = [str(f["properties"]["id"]) for f in features]
    assert from_csv == [_without_position(car_by_id[ged_id]) for ged_id in in_file_order]


# --- bad rows --------------------------------------------------------------------------------

GOOD_UCDP = {
    "id": 1,
    "type_of_violence": 3,
    "side_a": "anti-Balaka",
    "side_b": "Civilians",
    "where_prec": 1,
    "where_description": "Bossangoa town",
    "adm_1": "Ouham prefecture",
    "adm_2": "Bossangoa",
    "date_prec": 1,
    "date_start": "2014-02-03T00:00:00",
    "date_end": "2014-02-03T00:00:00",
    "deaths_civilians": 2,
    "best": 2,
    "low": 2,
    "high": 3,
}


def test_bad_geojson_features_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    geometry_null: Feature = {
        "type": "Feature",
        "properties": {**GOOD_UCDP, "id": 3},
        "geometry": None,
    }
    path = _write_geojson(
        tmp_path / "bad.geojson",
        [
            _feature({**GOOD_UCDP, "id": 1}, 17.45, 6.49),
            _feature({**GOOD_UCDP, "id": 2}, 17.45, 123),
            geometry_null,
            _feature({**GOOD_UCDP, "id": 4, "date_start": "2014-13-45"}, 17.45, 6.49),
            _feature({**GOOD_UCDP, "id": 5, "type_of_violence": 4}, 17.45, 6.49),
            _feature({**GOOD_UCDP, "id": 6}, 17.45, 6.49),
        ],
    )

    results = list(read_ucdp(path))

    assert [type(r) for r in results] == [
        ImportedEvent,
        RowError,
        RowError,
        RowError,
        RowError,
        ImportedEvent,
    ]
    assert [e.external_id for e in _events(results)] == ["1", "6"]
    errors = _errors(results)
    assert [e.position for e in errors] == ["feature 2", "feature 3", "feature 4", "feature 5"]
    assert errors[0].message == "feature 2: latitude 123.0 is out of range [-90, 90]"
    assert errors[1].message.startswith("feature 3: has no coordinates")
    assert errors[2].message == "feature 4: date_start '2014-13-45' is not a date"
    assert errors[3].message.startswith("feature 5: UCDP type_of_violence 4 has no Vigil category")
    assert "GET /api/v1/taxonomy" in errors[3].message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"latitude": "123"}, "latitude 123.0 is out of range [-90, 90]"),
        ({"longitude": "-181.5"}, "longitude -181.5 is out of range [-180, 180]"),
        ({"latitude": "", "longitude": ""}, "has no coordinates"),
        ({"latitude": "six"}, "latitude 'six' is not a number"),
        ({"latitude": "0", "longitude": "0"}, "coordinates (0, 0) are 'null island'"),
        ({"date_start": "2014-13-45"}, "date_start '2014-13-45' is not a date"),
        ({"date_start": "", "year": ""}, "has neither date_start nor year"),
        ({"date_prec": "9"}, "date_prec 9 is not a UCDP date precision"),
        ({"where_prec": "8"}, "where_prec 8 is not a UCDP location precision"),
        ({"type_of_violence": "4"}, "UCDP type_of_violence 4 has no Vigil category"),
        ({"type_of_violence": "x"}, "type_of_violence 'x' is not a whole number"),
        ({"best": "-2"}, "best -2 is below 0"),
        ({"id": ""}, "id (or event_id) is missing"),
    ],
    ids=[
        "latitude-123",
        "longitude-out-of-range",
        "no-coordinates",
        "latitude-not-number",
        "null-island",
        "bad-date",
        "no-date-at-all",
        "bad-date-prec",
        "bad-where-prec",
        "unknown-type",
        "type-not-number",
        "negative-deaths",
        "no-id",
    ],
)
def test_bad_csv_row_is_reported_between_good_rows(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    header = [*GOOD_UCDP, "year", "latitude", "longitude"]
    good = {**{k: str(v) for k, v in GOOD_UCDP.items()}, "year": "2014"}
    good |= {"latitude": "6.49", "longitude": "17.45"}
    # A quoted place name spanning two lines: positions must be the record's first line.
    first = {**good, "where_description": "Bossangoa,\nnear the Catholic mission"}
    rows = [first, {**good, "id": "2", **change}, {**good, "id": "3"}]
    path = _write_csv(tmp_path / "ged.csv", header, [[r[c] for c in header] for r in rows])

    results = list(read_ucdp(path))

    assert [type(r) for r in results] == [ImportedEvent, RowError, ImportedEvent]
    assert [r.position for r in results] == ["line 2", "line 4", "line 5"]
    error = results[1]
    assert isinstance(error, RowError)
    assert error.message.startswith(f"line 4: {expected}"), error.message


def test_csv_row_with_the_wrong_number_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "ged.csv"
    path.write_text(
        "id,type_of_violence,year,latitude,longitude\n"
        "1,3,2014,6.49,17.45\n"
        "2,3,2014,6.49\n"
        "\n"
        "3,3,2014,6.49,17.45\n",
        "utf-8",
    )
    results = list(read_ucdp(path))
    assert [r.position for r in results] == ["line 2", "line 3", "line 5"]
    assert results[1] == RowError("line 3", "line 3: has 4 fields but the header has 5 columns")


def test_non_point_geometry_is_a_row_error(tmp_path: Path) -> None:
    polygon = {
        "type": "Feature",
        "properties": GOOD_UCDP,
        "geometry": {"type": "Polygon", "coordinates": [[[17, 6], [18, 6], [18, 7], [17, 6]]]},
    }
    path = _write_geojson(tmp_path / "poly.geojson", [polygon, _feature(GOOD_UCDP, 17.45, 6.49)])
    results = list(read_ucdp(path))
    assert results[0] == RowError("feature 1", "feature 1: geometry is a Polygon, not a Point")
    assert isinstance(results[1], ImportedEvent)


# --- files that are not datasets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", "Patrol notes for Bambari, 3 March.\nNothing to report.\n", "header lacks"),
        ("empty.csv", "  \n", "is empty"),
        ("feature.geojson", json.dumps(_feature(GOOD_UCDP, 17.45, 6.49)), "FeatureCollection"),
        ("list.json", "{not json at all", "not valid JSON"),
        (
            "wrong_columns.csv",
            "event_id_cnty,latitude,longitude\nCEN1,4.3,18.5\n",
            "type_of_violence",
        ),
        (
            "projected.geojson",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                    "features": [],
                }
            ),
            "EPSG:3857",
        ),
    ],
    ids=["plain-text", "blank", "single-feature", "broken-json", "acled-csv", "projected-crs"],
)
def test_file_that_is_not_a_ucdp_dataset_is_refused(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content, "utf-8")
    # Raised on the call itself, before anything is iterated.
    with pytest.raises(DatasetFormatError, match=expected):
        read_ucdp(path)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01")
    with pytest.raises(DatasetFormatError, match="not UTF-8"):
        read_acled(path)


def test_format_is_chosen_by_content_not_extension(tmp_path: Path) -> None:
    path = _write_geojson(tmp_path / "export.csv", [_feature(GOOD_UCDP, 17.45, 6.49)])
    results = list(read_ucdp(path))
    assert [r.position for r in results] == ["feature 1"]
    assert isinstance(results[0], ImportedEvent)


# --- ACLED ------------------------------------------------------------------------------------

ACLED_EXPECTED = {
    "CEN90001": ("killing_of_civilians", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
    "CEN90002": ("attack_on_civilians", PerpetratorType.NON_STATE_ARMED_GROUP),
    "DRC90003": ("sexual_violence", PerpetratorType.NON_STATE_ARMED_GROUP),
    "DRC90004": ("abduction", PerpetratorType.NON_STATE_ARMED_GROUP),
    "CEN90005": ("armed_clash", PerpetratorType.STATE_FORCES),
    "DRC90006": ("armed_clash", PerpetratorType.NON_STATE_ARMED_GROUP),
    "DRC90007": ("killing_of_civilians", PerpetratorType.NON_STATE_ARMED_GROUP),
    "DRC90008": ("armed_clash", PerpetratorType.NON_STATE_ARMED_GROUP),
    "CEN90009": ("civil_unrest", PerpetratorType.UNKNOWN),
    "CEN90010": ("civil_unrest", PerpetratorType.UNKNOWN),
    "CEN90011": ("property_destruction_looting", PerpetratorType.NON_STATE_ARMED_GROUP),
    "DRC90012": ("armed_group_movement", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
    "DRC90013": ("armed_group_movement", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
    "CEN90014": ("armed_group_movement", PerpetratorType.STATE_FORCES),
    "CEN90018": ("armed_clash", PerpetratorType.NON_STATE_ARMED_GROUP),
}


def test_acled_fixture_outcomes(acled_results: list[ImportResult]) -> None:
    kinds = Counter(type(result).__name__ for result in acled_results)
    assert kinds == {"ImportedEvent": 15, "SkippedRow": 2, "RowError": 1}
    assert [r.position for r in acled_results] == [f"line {n}" for n in range(2, 20)]


@pytest.mark.parametrize(
    ("event_id", "category", "perpetrator"),
    [(k, *v) for k, v in ACLED_EXPECTED.items()],
    ids=list(ACLED_EXPECTED),
)
def test_acled_event_category_and_perpetrator(
    acled_results: list[ImportResult],
    event_id: str,
    category: str,
    perpetrator: PerpetratorType,
) -> None:
    event = {e.external_id: e for e in _events(acled_results)}[event_id]
    assert event.category == category
    assert event.perpetrator_type is perpetrator


def test_acled_unmapped_types_are_skipped_with_reason(acled_results: list[ImportResult]) -> None:
    skipped = [r for r in acled_results if isinstance(r, SkippedRow)]
    assert [s.position for s in skipped] == ["line 16", "line 17"]
    assert "Agreement" in skipped[0].reason
    assert "Arrests" in skipped[1].reason


def test_acled_bad_row_is_reported_and_the_next_row_still_comes(
    acled_results: list[ImportResult],
) -> None:
    assert acled_results[16] == RowError(
        "line 18", "line 18: latitude 123.0 is out of range [-90, 90]"
    )
    last = acled_results[17]
    assert isinstance(last, ImportedEvent)
    assert last.external_id == "CEN90018"


@pytest.mark.parametrize(
    ("event_id", "precision", "start", "coded_date"),
    [
        ("CEN90001", TimePrecision.DAY, datetime(2023, 1, 15, tzinfo=UTC), "2023-01-15"),
        ("CEN90002", TimePrecision.DAY, datetime(2023, 2, 14, tzinfo=UTC), "2023-02-14"),
        ("DRC90004", TimePrecision.WEEK, datetime(2023, 3, 6, tzinfo=UTC), "2023-03-09"),
        ("CEN90011", TimePrecision.MONTH, datetime(2023, 2, 1, tzinfo=UTC), "2023-02-28"),
        ("CEN90018", TimePrecision.DAY, datetime(2023, 12, 25, tzinfo=UTC), "2023-12-25"),
    ],
    ids=["iso-day", "named-month-day", "week-from-middle", "month-from-day", "named-december"],
)
def test_acled_dates(
    acled_results: list[ImportResult],
    event_id: str,
    precision: TimePrecision,
    start: datetime,
    coded_date: str,
) -> None:
    event = {e.external_id: e for e in _events(acled_results)}[event_id]
    assert event.time_precision is precision
    assert event.occurred_at == start
    assert event.details["event_date"] == coded_date


def test_acled_event_in_full(acled_results: list[ImportResult]) -> None:
    event = _events(acled_results)[0]
    assert event.dataset == "acled"
    assert event.external_id == "CEN90001"
    assert (event.longitude, event.latitude) == (20.6756, 5.768)
    assert event.location_precision is LocationPrecision.SETTLEMENT
    assert (event.place_name, event.admin1, event.admin2) == ("Bambari", "Ouaka", "Bambari")
    assert (event.killed_best, event.killed_low, event.killed_high) == (3, None, None)
    assert event.perpetrator_name == "Anti-Balaka"
    assert event.narrative is not None
    assert event.narrative.startswith("Synthetic test row")
    assert (event.source_reliability, event.information_credibility) == (
        SourceReliability.B,
        InformationCredibility.PROBABLY_TRUE,
    )
    assert event.details["inter1"] == "Political militia"
    assert event.details["actor2"] == "Civilians (Central African Republic)"
    assert event.details["civilian_targeting"] is True


def test_acled_fixture_rows_are_all_marked_synthetic(acled_results: list[ImportResult]) -> None:
    with ACLED_FIXTURE.open(encoding="utf-8", newline="") as handle:
        notes = [row["notes"] for row in csv.DictReader(handle)]
    assert len(notes) == len(acled_results)
    assert all(note.startswith("Synthetic test row") for note in notes)


@pytest.mark.parametrize(
    ("event_id", "precision"),
    [
        ("CEN90001", LocationPrecision.SETTLEMENT),
        ("DRC90004", LocationPrecision.AREA),
        ("CEN90014", LocationPrecision.PROVINCE),
    ],
    ids=["geo1-settlement", "geo2-area", "geo3-province"],
)
def test_acled_location_precision(
    acled_results: list[ImportResult], event_id: str, precision: LocationPrecision
) -> None:
    event = {e.external_id: e for e in _events(acled_results)}[event_id]
    assert event.location_precision is precision


@pytest.mark.parametrize(
    ("inter", "actor", "expected"),
    [
        (
            1,
            "Military Forces of the Central African Republic (2016-)",
            PerpetratorType.STATE_FORCES,
        ),
        (2, "M23: March 23 Movement", PerpetratorType.NON_STATE_ARMED_GROUP),
        (3, "Wazalendo", PerpetratorType.MILITIA_COMMUNITY_DEFENCE),
        (
            4,
            "CODECO: Cooperative for the Development of Congo",
            PerpetratorType.MILITIA_COMMUNITY_DEFENCE,
        ),
        (5, "Rioters (Central African Republic)", PerpetratorType.UNKNOWN),
        (
            8,
            "MONUSCO: United Nations Organization Stabilization Mission in the DRC (2010-)",
            PerpetratorType.PEACEKEEPERS,
        ),
        (8, "Military Forces of Rwanda (2000-)", PerpetratorType.STATE_FORCES),
        (8, "Wagner Group", PerpetratorType.UNKNOWN),
        (None, "Unidentified Armed Group", PerpetratorType.UNKNOWN),
    ],
    ids=[
        "state",
        "rebel",
        "political-militia",
        "identity-militia",
        "rioters",
        "un-mission",
        "foreign-army",
        "private-military",
        "no-inter",
    ],
)
def test_acled_actor_type(inter: int | None, actor: str, expected: PerpetratorType) -> None:
    assert acled_actor_type(inter, actor) is expected


def test_acled_geojson_parses_like_the_csv(
    tmp_path: Path, acled_results: list[ImportResult]
) -> None:
    with ACLED_FIXTURE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = []
    for row in rows:
        longitude, latitude = float(row.pop("longitude")), float(row.pop("latitude"))
        features.append(_feature(dict(row), longitude, latitude))
    path = _write_geojson(tmp_path / "acled.geojson", features)

    results = list(read_acled(path))

    assert [r.position for r in results] == [f"feature {n}" for n in range(1, len(rows) + 1)]
    assert [type(r) for r in results] == [type(r) for r in acled_results]
    assert [_without_position(e) for e in _events(results)] == [
        _without_position(e) for e in _events(acled_results)
    ]
    assert [e.message.split(": ", 1)[1] for e in _errors(results)] == [
        e.message.split(": ", 1)[1] for e in _errors(acled_results)
    ]


ACLED_HEADER = [
    "event_id_cnty",
    "event_date",
    "time_precision",
    "event_type",
    "sub_event_type",
    "actor1",
    "inter1",
    "inter2",
    "civilian_targeting",
    "latitude",
    "longitude",
    "geo_precision",
    "fatalities",
]
GOOD_ACLED = {
    "event_id_cnty": "CEN1",
    "event_date": "2023-05-02",
    "time_precision": "1",
    "event_type": "Violence against civilians",
    "sub_event_type": "Attack",
    "actor1": "Anti-Balaka",
    "inter1": "3",
    "inter2": "7",
    "civilian_targeting": "Civilian targeting",
    "latitude": "5.7680",
    "longitude": "20.6756",
    "geo_precision": "1",
    "fatalities": "1",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"event_type": "Remote violence", "sub_event_type": "Shelling"},
            "event_type 'Remote violence' / sub_event_type 'Shelling' is not one of ACLED's",
        ),
        ({"event_date": "31 February 2023"}, "event_date '31 February 2023' is not a date"),
        ({"event_date": "15 Brumaire 2023"}, "event_date '15 Brumaire 2023' is not a date"),
        ({"event_date": "yesterday"}, "event_date 'yesterday' is not a date"),
        ({"time_precision": "4"}, "time_precision 4 is not an ACLED time_precision code"),
        ({"geo_precision": ""}, "geo_precision is missing"),
        ({"inter1": "Bandits"}, "inter1 'Bandits' is not an ACLED actor type"),
        ({"inter1": "9"}, "inter1 '9' is not an ACLED actor type"),
        ({"fatalities": "many"}, "fatalities 'many' is not a whole number"),
        ({"civilian_targeting": "maybe"}, "civilian_targeting 'maybe' is neither"),
        ({"event_id_cnty": " "}, "event_id_cnty is missing"),
        ({"longitude": ""}, "longitude is missing"),
    ],
    ids=[
        "pre-2019-type",
        "impossible-date",
        "unknown-month",
        "not-a-date",
        "bad-time-precision",
        "no-geo-precision",
        "unknown-inter-label",
        "inter-out-of-range",
        "fatalities-not-number",
        "bad-civilian-targeting",
        "no-event-id",
        "no-longitude",
    ],
)
def test_bad_acled_row_is_reported_between_good_rows(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    rows = [GOOD_ACLED, {**GOOD_ACLED, "event_id_cnty": "CEN2", **change}, GOOD_ACLED]
    path = _write_csv(
        tmp_path / "acled.csv", ACLED_HEADER, [[r[c] for c in ACLED_HEADER] for r in rows]
    )

    results = list(read_acled(path))

    assert [type(r) for r in results] == [ImportedEvent, RowError, ImportedEvent]
    assert results[1].position == "line 3"
    assert isinstance(results[1], RowError)
    assert results[1].message.startswith(f"line 3: {expected}"), results[1].message


def test_acled_file_without_civilian_targeting_column_uses_inter2(tmp_path: Path) -> None:
    header = [c for c in ACLED_HEADER if c != "civilian_targeting"]
    strike = {
        **GOOD_ACLED,
        "event_type": "Explosions/Remote violence",
        "sub_event_type": "Air/drone strike",
    }
    rows = [strike, {**strike, "event_id_cnty": "CEN2", "inter2": "2"}]
    path = _write_csv(tmp_path / "old.csv", header, [[r[c] for c in header] for r in rows])
    categories = [e.category for e in _events(list(read_acled(path)))]
    assert categories == ["killing_of_civilians", "armed_clash"]


def test_acled_csv_missing_required_columns_is_refused(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "acled.csv", ["event_id_cnty", "latitude", "longitude"], [])
    with pytest.raises(DatasetFormatError, match="event_date") as caught:
        read_acled(path)
    assert "sub_event_type" in str(caught.value)


def test_acled_reads_semicolon_separated_and_upper_case_exports(tmp_path: Path) -> None:
    path = tmp_path / "acled_excel.csv"
    header = ";".join(column.upper() for column in ACLED_HEADER)
    row = ";".join(GOOD_ACLED[c] for c in ACLED_HEADER)
    path.write_text(f"\ufeff{header}\n{row}\n", "utf-8")
    results = list(read_acled(path))
    assert [type(r) for r in results] == [ImportedEvent]
    assert results[0].position == "line 2"
