"""AOR versions, their cells, and routing a point to the deepest unit whose AOR holds it."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point, box
from sqlalchemy import func, select

from geo import cells as geo_cells
from server.access.policy import system_actor
from server.reports.derived import placement
from server.units import service as units
from server.units.models import AorCell, AorVersion
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1, POINT_OUTSIDE

pytestmark = pytest.mark.integration


def _route(session, settings, lon, lat, precision="exact", accuracy=20.0):
    place = placement(lon, lat, precision, accuracy)
    return units.route_cells(session=session, cells=place.cells, mission=settings.mission)


@pytest.mark.parametrize(
    ("point", "expected"),
    [(POINT_A1_1, "coy-a1-1"), (POINT_A1_2, "coy-a1-2"), (POINT_B1, "bn-b1")],
    ids=["company-a1-1", "company-a1-2", "battalion-b1"],
)
def test_a_point_routes_to_the_deepest_unit(session, settings, mission, point, expected) -> None:
    assert _route(session, settings, *point) == mission.unit_id(expected)


def test_a_point_outside_every_aor_routes_nowhere(session, settings) -> None:
    assert _route(session, settings, *POINT_OUTSIDE) is None


def test_a_coarse_location_routes_at_the_resolution_it_supports(session, settings, mission):
    # A settlement-level location is indexed only to res 7; it still routes, by its res-7 cell.
    unit_id = _route(session, settings, *POINT_A1_1, precision="settlement", accuracy=None)
    assert unit_id == mission.unit_id("coy-a1-1")
    # A district-level location has no cell at the mission's resolutions: no AOR unit.
    assert _route(session, settings, *POINT_A1_1, precision="district", accuracy=None) is None


def test_routing_agrees_with_the_polygons(session, settings, mission) -> None:
    """For points spread over the seed AORs, the integer join gives the unit whose polygon holds
    the point's res-9 cell centre."""
    rng = np.random.default_rng(3)
    lons = rng.uniform(20.0, 21.0, 60)
    lats = rng.uniform(5.5, 6.0, 60)
    companies = {
        "coy-a1-1": box(20.0, 5.5, 20.25, 6.0),
        "coy-a1-2": box(20.25, 5.5, 20.5, 6.0),
        "bn-b1": box(20.5, 5.5, 21.0, 6.0),
    }
    for lon, lat in zip(lons, lats, strict=True):
        place = placement(lon, lat, "exact", 20.0)
        c_lat, c_lon = geo_cells.cell_center(place.cells[9])
        expected = [
            code for code, shape in companies.items() if shape.contains(Point(c_lon, c_lat))
        ]
        routed = units.route_cells(session=session, cells=place.cells, mission=settings.mission)
        assert routed == (mission.unit_id(expected[0]) if expected else None)


def test_changing_an_aor_closes_the_old_version_and_reroutes(session, settings, mission):
    actor = system_actor("test")
    unit = units.get_or_raise(session=session, unit_id=mission.unit_id("coy-a1-2"))
    old = units.current_aor(session=session, unit_id=unit.id)
    # coy-a1-2 takes over the whole battalion area; coy-a1-1 keeps its old AOR, so its ground is
    # now claimed by two companies at the same depth: the lower id wins, deterministically.
    new = units.set_aor(
        session=session,
        unit=unit,
        geometry=box(20.0, 5.5, 20.5, 6.0),
        actor=actor,
        mission=settings.mission,
    )
    session.flush()
    assert old is not None and old.valid_to is not None
    assert new.version == old.version + 1 and new.valid_to is None
    versions = units.aor_versions(session=session, unit_id=unit.id)
    assert [v.version for v in versions] == [old.version, new.version]
    per_resolution = dict(
        session.execute(
            select(AorCell.resolution, func.count())
            .where(AorCell.aor_version_id == new.id)
            .group_by(AorCell.resolution)
        ).all()
    )
    assert set(per_resolution) == set(settings.mission.h3_resolutions)
    # only one current version per unit
    current = session.scalar(
        select(func.count())
        .select_from(AorVersion)
        .where(AorVersion.unit_id == unit.id, AorVersion.valid_to.is_(None))
    )
    assert current == 1
    # Move coy-a1-1's AOR away: its old ground now routes to coy-a1-2.
    other = units.get_or_raise(session=session, unit_id=mission.unit_id("coy-a1-1"))
    units.set_aor(
        session=session,
        unit=other,
        geometry=box(20.0, 5.95, 20.05, 6.0),
        actor=actor,
        mission=settings.mission,
    )
    assert _route(session, settings, *POINT_A1_1) == mission.unit_id("coy-a1-2")


def test_reassign_updates_reports_and_incidents_after_an_aor_change(
    session, settings, mission, actor_of
) -> None:
    import uuid
    from datetime import UTC, datetime, timedelta

    from server.incidents.models import Incident, IncidentReport
    from server.reports import service as reports
    from server.reports.schemas import ReportCreate

    body = ReportCreate.model_validate(
        {
            "id": str(uuid.uuid4()),
            "category": "armed_group_movement",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
            "location": {"type": "Point", "coordinates": list(POINT_A1_1)},
            "location_accuracy_m": 20,
        }
    )
    report, _ = reports.create(
        session=session, report_in=body, actor=actor_of("analyst"), mission=settings.mission
    )
    assert report.aor_unit_id == mission.unit_id("coy-a1-1")
    unit = units.get_or_raise(session=session, unit_id=mission.unit_id("coy-a1-1"))
    units.set_aor(
        session=session,
        unit=unit,
        geometry=box(20.0, 5.95, 20.05, 6.0),
        actor=system_actor("test"),
        mission=settings.mission,
    )
    changed = units.reassign_all_aor_units(session=session, mission=settings.mission)
    assert changed > 0
    session.expire_all()
    refreshed = reports.get_or_raise(
        session=session, report_id=report.id, actor=actor_of("analyst")
    )
    assert refreshed.aor_unit_id == mission.unit_id("bn-a1")
    incident_id = session.scalar(
        select(IncidentReport.incident_id).where(IncidentReport.report_id == report.id)
    )
    assert session.get(Incident, incident_id).aor_unit_id == mission.unit_id("bn-a1")
