"""UCDP and ACLED imports through the crosswalk: counts, precision, idempotency, bad rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.access.policy import system_actor
from server.imports import service as imports
from server.imports.acled import read_acled
from server.imports.ucdp import read_ucdp
from server.incidents.models import Incident, IncidentStatus
from server.reports.enums import ReportOrigin, TimePrecision
from server.reports.models import Report

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _import(session_factory, settings, rows, dataset="ucdp-ged", **kwargs):
    return imports.import_events(
        session_factory=session_factory,
        dataset=dataset,
        rows=rows,
        actor=system_actor("test-import"),
        mission=settings.mission,
        **kwargs,
    )


def _count(session, dataset: str) -> int:
    return (
        session.scalar(select(func.count()).select_from(Report).where(Report.dataset == dataset))
        or 0
    )


def test_car_ucdp_imports_every_event_once(
    session_factory, session, settings, shared_data, mission
) -> None:
    path = shared_data / "ucdp" / "car_ucdp_ged_v23_1.geojson"
    started = time.perf_counter()
    first = _import(session_factory, settings, read_ucdp(path))
    elapsed = time.perf_counter() - started
    print(f"\nCAR UCDP import: {first.imported} events in {elapsed:.1f} s")
    assert (first.read, first.imported, len(first.errors)) == (1848, 1848, 0)
    assert _count(session, "ucdp-ged") == 1848
    # one incident per imported event; every report is linked
    assert (
        session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(Incident.status == IncidentStatus.ACTIVE)
        )
        >= 1848
    )
    # re-running changes nothing
    second = _import(session_factory, settings, read_ucdp(path))
    assert (second.imported, second.updated, second.unchanged) == (0, 0, 1848)
    assert _count(session, "ucdp-ged") == 1848
    # precision from where_prec: a where_prec 3 (district) event has no mission-resolution cell
    district = session.scalars(
        select(Report)
        .where(Report.dataset == "ucdp-ged", Report.location_precision == "district")
        .limit(1)
    ).one()
    assert district.h3_res5 is None and district.h3_res8 is None
    exact_place = session.scalars(
        select(Report)
        .where(Report.dataset == "ucdp-ged", Report.location_precision == "settlement")
        .limit(1)
    ).one()
    assert exact_place.h3_res7 is not None and exact_place.h3_res8 is None
    assert exact_place.origin is ReportOrigin.IMPORT


def test_drc_ucdp_year_only_dates(session_factory, session, settings, shared_data) -> None:
    path = shared_data / "ucdp" / "drc_ucdp_ged_events_2023_2025.geojson"
    started = time.perf_counter()
    result = _import(session_factory, settings, read_ucdp(path))
    print(f"\nDRC UCDP import: {result.imported} events in {time.perf_counter() - started:.1f} s")
    assert (result.imported, len(result.errors)) == (1943, 0)
    precisions = set(
        session.scalars(
            select(Report.time_precision).where(Report.dataset == "ucdp-ged").distinct()
        )
    )
    assert precisions == {TimePrecision.YEAR}
    # DRC lies outside every seeded AOR: imported, but routed to no unit
    assert (
        session.scalar(
            select(func.count())
            .select_from(Report)
            .where(Report.dataset == "ucdp-ged", Report.aor_unit_id.is_not(None))
        )
        == 0
    )


def test_a_revised_event_is_updated_not_duplicated(
    session_factory, session, settings, shared_data, tmp_path
) -> None:
    source = json.loads((shared_data / "ucdp" / "car_ucdp_ged_v23_1.geojson").read_text())
    source["features"] = source["features"][:20]
    original = tmp_path / "ucdp.geojson"
    original.write_text(json.dumps(source))
    _import(session_factory, settings, read_ucdp(original))
    source["features"][0]["properties"]["best"] += 5
    source["features"][0]["properties"]["high"] += 5
    revised = tmp_path / "ucdp-revised.geojson"
    revised.write_text(json.dumps(source))
    result = _import(session_factory, settings, read_ucdp(revised))
    assert (result.imported, result.updated, result.unchanged) == (0, 1, 19)
    event_id = str(source["features"][0]["properties"]["id"])
    report = session.scalars(select(Report).where(Report.external_id == event_id)).one()
    session.refresh(report)
    assert report.version == 2
    assert report.killed_best == source["features"][0]["properties"]["best"]


def test_bad_rows_are_reported_and_good_rows_kept(
    session_factory, session, settings, tmp_path
) -> None:
    features = []
    for index, (lon, lat) in enumerate([(20.1, 5.7), (200.0, 5.7), (20.2, 5.8)]):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "id": 9_000_000 + index,
                    "year": 2020,
                    "type_of_violence": 3,
                    "where_prec": 1,
                    "date_prec": 1,
                    "date_start": "2020-05-01T00:00:00",
                    "date_end": "2020-05-01T00:00:00",
                    "best": 2,
                    "low": 2,
                    "high": 2,
                    "side_a": "UPC",
                    "side_b": "Civilians",
                    "deaths_civilians": 2,
                },
            }
        )
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = _import(session_factory, settings, read_ucdp(path))
    assert result.imported == 2
    assert len(result.errors) == 1
    assert result.errors[0].position == "feature 2"
    assert "longitude" in result.errors[0].message


def test_acled_sample_imports_through_the_crosswalk(session_factory, session, settings) -> None:
    result = _import(
        session_factory, settings, read_acled(FIXTURES / "acled_sample.csv"), dataset="acled"
    )
    assert result.imported == 15 and len(result.skipped) == 2 and len(result.errors) == 1
    categories = set(session.scalars(select(Report.category).where(Report.dataset == "acled")))
    assert {"killing_of_civilians", "armed_clash", "sexual_violence"} <= categories
    # sexual violence from a dataset is still restricted
    sgbv = session.scalars(
        select(Report).where(Report.dataset == "acled", Report.category == "sexual_violence")
    ).first()
    assert sgbv.sensitivity.value == "restricted"


def test_import_into_a_named_unit_and_unknown_unit(
    session_factory, session, settings, mission, shared_data, tmp_path
) -> None:
    source = json.loads((shared_data / "ucdp" / "car_ucdp_ged_v23_1.geojson").read_text())
    source["features"] = source["features"][:3]
    path = tmp_path / "three.geojson"
    path.write_text(json.dumps(source))
    _import(session_factory, settings, read_ucdp(path), unit_code="joc")
    units_used = set(
        session.scalars(select(Report.reporting_unit_id).where(Report.dataset == "ucdp-ged"))
    )
    assert units_used == {mission.unit_id("joc")}
    with pytest.raises(ValueError, match="no unit with code"):
        _import(session_factory, settings, read_ucdp(path), unit_code="nowhere")
