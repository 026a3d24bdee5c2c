"""The CAR demo scenario is internally consistent: the outline holds the real conflict events,
the AORs tile the country at every level of command, and the synthetic reports land where
(and when) the demo story needs them.

The demo is the first thing a new user sees; a gap between two AORs there would look like a
routing bug, and a report outside its officer's AOR would route to the wrong commander.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely import MultiPolygon, Point

from geo.precision import LocationPrecision
from server.demo.scenario import (
    DEMO_WINDOW,
    OFFICER_BATTALION_CODE,
    TOWNS,
    DemoUnit,
    as_multipolygon,
    car_outline,
    demo_field_reports,
    demo_patrols,
    demo_sites,
    demo_users,
    mission_units,
    patrol_fixes,
    patrol_id,
    report_id,
)
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    SourceReliability,
    SourceType,
    TimePrecision,
)
from server.taxonomy.codes import TAXONOMY, Sensitivity, get_category
from server.units.enums import Component, UnitKind
from server.users.enums import Role

UCDP_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ucdp"
UCDP_CAR = UCDP_DIR / "car_ucdp_ged_v23_1.geojson"

#: Area of the Central African Republic, km² (about 623,000).
CAR_AREA_KM2 = 622_984.0
#: Authalic (equal-area) radius of the WGS 84 ellipsoid, metres.
AUTHALIC_RADIUS_M = 6_371_007.2

NOW = datetime(2025, 3, 17, 9, 41, 27, tzinfo=UTC)

PRECURSORS = {c.code for c in TAXONOMY if c.precursor} - {"forced_displacement"}
SENSITIVE = {c.code for c in TAXONOMY if c.sensitivity is Sensitivity.RESTRICTED}

REPORT_KEYS = {
    "id",
    "category",
    "occurred_at",
    "time_precision",
    "location",
    "location_accuracy_m",
    "location_precision",
    "place_name",
    "admin1",
    "admin2",
    "source_type",
    "source_reliability",
    "information_credibility",
    "victims",
    "perpetrator_type",
    "perpetrator_name",
    "narrative",
    "protection_concern",
    "consent",
    "attachments",
    "reporter",
}


# --- helpers ------------------------------------------------------------------------------------


def equal_area_km2(geometry: shapely.Geometry) -> float:
    """Area on the authalic sphere via Lambert's cylindrical equal-area projection.

    Segments are densified first because a straight lon/lat segment is curved in the
    projection; at 0.05° the remaining error is far below the 10 % tolerance tested.
    """
    dense = shapely.segmentize(geometry, 0.05)

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = np.radians(coords[:, 0]), np.radians(coords[:, 1])
        return np.column_stack([AUTHALIC_RADIUS_M * lon, AUTHALIC_RADIUS_M * np.sin(lat)])

    return float(shapely.transform(dense, project).area) / 1e6


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def occurred(report: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(report["occurred_at"])


def where(report: dict[str, Any]) -> tuple[float, float]:
    lon, lat = report["location"]["coordinates"]
    return (lon, lat)


@pytest.fixture(scope="module")
def units() -> dict[str, DemoUnit]:
    return {unit.code: unit for unit in mission_units()}


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    return demo_field_reports(NOW)


def children(units: dict[str, DemoUnit], code: str) -> list[DemoUnit]:
    return [u for u in units.values() if u.parent_code == code]


def force_parents(units: dict[str, DemoUnit]) -> list[DemoUnit]:
    """Force HQ, the sectors and the battalions: every unit whose children tile it."""
    kinds = {UnitKind.FORCE_HQ, UnitKind.SECTOR, UnitKind.BATTALION}
    return [u for u in units.values() if u.kind in kinds]


# --- outline ------------------------------------------------------------------------------------


def test_outline_is_a_valid_polygon_of_moderate_detail() -> None:
    outline = car_outline()
    assert outline.geom_type == "Polygon"
    assert outline.is_valid, shapely.is_valid_reason(outline)
    assert 40 <= len(outline.exterior.coords) - 1 <= 80
    assert outline.exterior.is_ccw  # RFC 7946 orientation
    minx, miny, maxx, maxy = outline.bounds
    assert 14.0 < minx < 14.7
    assert 27.2 < maxx < 27.8
    assert 2.0 < miny < 2.5
    assert 10.8 < maxy < 11.3


def test_outline_contains_the_ucdp_car_events() -> None:
    if not UCDP_CAR.exists():
        pytest.skip(f"UCDP CAR extract not found at {UCDP_CAR} (shared data not mounted)")
    features = json.loads(UCDP_CAR.read_text(encoding="utf-8"))["features"]
    assert len(features) == 1848
    xy = np.array([f["geometry"]["coordinates"] for f in features], dtype=float)
    inside = shapely.contains_xy(car_outline(), xy[:, 0], xy[:, 1])
    assert inside.mean() >= 0.99, f"{(~inside).sum()} UCDP events outside the outline"


def test_outline_area_is_plausible() -> None:
    area = equal_area_km2(car_outline())
    assert abs(area / CAR_AREA_KM2 - 1) <= 0.10, f"{area:,.0f} km²"


def test_towns_are_inside_the_outline() -> None:
    outline = car_outline()
    outside = [name for name, xy in TOWNS.items() if not outline.contains(Point(xy))]
    assert outside == []


def test_bangui_is_on_the_southern_border() -> None:
    """Bangui sits on the Ubangi: inside, but within ~15 km of the border."""
    bangui = Point(TOWNS["Bangui"])
    assert car_outline().contains(bangui)
    assert car_outline().exterior.distance(bangui) < 15 / 111


# --- unit tree ----------------------------------------------------------------------------------


def test_unit_codes_unique_and_parents_precede_children() -> None:
    listed = mission_units()
    codes = [u.code for u in listed]
    assert len(codes) == len(set(codes))
    seen: set[str] = set()
    roots = []
    for unit in listed:
        if unit.parent_code is None:
            roots.append(unit.code)
        else:
            assert unit.parent_code in seen, f"{unit.code} listed before its parent"
        seen.add(unit.code)
    assert roots == ["mission-hq"]
    assert all(len(code) <= 64 and code == code.lower() and " " not in code for code in codes)


def test_hierarchy_shape(units: dict[str, DemoUnit]) -> None:
    """Force HQ -> 4 sectors -> 1 to 3 battalions -> 2 to 4 companies; sections beside it."""
    assert units["mission-hq"].kind is UnitKind.MISSION_HQ
    assert units["force-hq"].parent_code == "mission-hq"
    sectors = children(units, "force-hq")
    assert {s.code for s in sectors} == {
        "sector-west",
        "sector-centre",
        "sector-east",
        "jtf-bangui",
    }
    for sector in sectors:
        assert sector.kind is UnitKind.SECTOR
        battalions = children(units, sector.code)
        assert 1 <= len(battalions) <= 3
        if sector.code != "jtf-bangui":
            assert len(battalions) >= 2
        for battalion in battalions:
            assert battalion.kind is UnitKind.BATTALION
            companies = children(units, battalion.code)
            assert 2 <= len(companies) <= 4
            assert all(
                c.kind is UnitKind.COMPANY and not children(units, c.code) for c in companies
            )
    for unit in units.values():
        if unit.kind in {UnitKind.FORCE_HQ, UnitKind.SECTOR, UnitKind.BATTALION, UnitKind.COMPANY}:
            assert unit.component is Component.MILITARY
        if unit.kind in {UnitKind.POLICE_HQ, UnitKind.POLICE_UNIT}:
            assert unit.component is Component.POLICE
    assert [u.kind for u in children(units, "police-hq")] == [UnitKind.POLICE_UNIT] * 2


def test_who_sees_the_whole_mission(units: dict[str, DemoUnit]) -> None:
    whole = {u.code for u in units.values() if u.sees_whole_mission}
    assert {"mission-hq", "joc", "human-rights", "child-protection", "women-protection"} <= whole
    assert all(units[code].component is Component.CIVILIAN for code in whole)
    for code in ("joc", "human-rights", "child-protection", "women-protection", "police-hq"):
        assert units[code].aor is None
        assert units[code].parent_code == "mission-hq"


def test_every_aor_is_a_valid_multipolygon(units: dict[str, DemoUnit]) -> None:
    for unit in units.values():
        if unit.aor is None:
            continue
        assert isinstance(unit.aor, MultiPolygon), unit.code
        assert unit.aor.is_valid, (unit.code, shapely.is_valid_reason(unit.aor))
        assert unit.aor.area > 0, unit.code
        assert all(part.exterior.is_ccw for part in unit.aor.geoms), unit.code


def test_force_units_all_have_aors_and_bases(units: dict[str, DemoUnit]) -> None:
    for unit in force_parents(units) + [u for u in units.values() if u.kind is UnitKind.COMPANY]:
        assert unit.aor is not None, unit.code
        assert unit.base is not None, unit.code


def test_top_aors_are_the_whole_outline(units: dict[str, DemoUnit]) -> None:
    outline = car_outline()
    for code in ("mission-hq", "force-hq"):
        aor = units[code].aor
        assert aor is not None
        assert aor.symmetric_difference(outline).area <= 1e-9 * outline.area


@pytest.mark.parametrize("level", [UnitKind.FORCE_HQ, UnitKind.SECTOR, UnitKind.BATTALION])
def test_children_tile_their_parent(units: dict[str, DemoUnit], level: UnitKind) -> None:
    """Siblings do not overlap and together cover exactly their parent's AOR."""
    parents = [u for u in force_parents(units) if u.kind is level]
    assert parents
    for parent in parents:
        assert parent.aor is not None
        kids = [c.aor for c in children(units, parent.code) if c.aor is not None]
        assert len(kids) == len(children(units, parent.code)) >= 1, parent.code
        tolerance = 1e-6 * parent.aor.area
        for a, b in itertools.combinations(kids, 2):
            assert a.intersection(b).area <= tolerance, parent.code
        union = shapely.union_all(kids)
        assert union.symmetric_difference(parent.aor).area <= tolerance, parent.code
        assert sum(k.area for k in kids) == pytest.approx(parent.aor.area, rel=1e-6)


def test_every_point_of_the_outline_is_in_exactly_one_company(units: dict[str, DemoUnit]) -> None:
    outline = car_outline()
    minx, miny, maxx, maxy = outline.bounds
    # Irrational-ish offsets keep grid points off Voronoi edges and outline vertices.
    xs = np.arange(minx + 0.0137, maxx, 0.05)
    ys = np.arange(miny + 0.0071, maxy, 0.05)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    inside = shapely.contains_xy(outline, gx, gy)
    gx, gy = gx[inside], gy[inside]
    assert gx.size > 10_000
    companies = [u for u in units.values() if u.kind is UnitKind.COMPANY]
    hits = sum(shapely.contains_xy(c.aor, gx, gy).astype(int) for c in companies)
    assert np.all(hits == 1), f"{np.sum(hits == 0)} uncovered, {np.sum(hits > 1)} overlapping"


def test_bases_lie_inside_their_own_aor(units: dict[str, DemoUnit]) -> None:
    checked = 0
    for unit in units.values():
        if unit.base is not None and unit.aor is not None:
            assert unit.aor.contains(Point(unit.base)), unit.code
            checked += 1
    assert checked >= 40


def test_company_aors_are_voronoi_cells_of_their_bases(units: dict[str, DemoUnit]) -> None:
    """Each point of a company AOR is nearer its own base than any other company's."""
    companies = [u for u in units.values() if u.kind is UnitKind.COMPANY]
    bases = np.array([c.base for c in companies])
    for index, company in enumerate(companies):
        assert company.aor is not None
        probe = company.aor.representative_point()
        distances = np.hypot(bases[:, 0] - probe.x, bases[:, 1] - probe.y)
        assert int(np.argmin(distances)) == index, company.code


def test_police_aors_lie_within_the_outline(units: dict[str, DemoUnit]) -> None:
    outline = car_outline()
    for unit in children(units, "police-hq"):
        if unit.aor is not None:
            assert unit.aor.difference(outline).area <= 1e-9, unit.code


def test_sector_layout_is_plausible(units: dict[str, DemoUnit]) -> None:
    """West in the west, East in the east, the Bangui task force small and around Bangui."""
    aors = {code: units[code].aor for code in ("sector-west", "sector-centre", "sector-east")}
    centroid_lon = {code: aor.centroid.x for code, aor in aors.items() if aor is not None}
    assert centroid_lon["sector-west"] < 17.5 < centroid_lon["sector-centre"] < 21.0
    assert centroid_lon["sector-east"] > 21.5
    jtf = units["jtf-bangui"].aor
    assert jtf is not None
    assert jtf.contains(Point(TOWNS["Bangui"]))
    share = jtf.area / car_outline().area
    assert 0.002 < share < 0.03, share
    assert units["sector-west"].base == TOWNS["Bouar"]
    assert units["sector-centre"].base == TOWNS["Kaga-Bandoro"]
    assert units["sector-east"].base == TOWNS["Bria"]


def test_as_multipolygon_drops_non_polygonal_parts() -> None:
    square = shapely.box(0, 0, 1, 1)
    mixed = shapely.GeometryCollection([square, shapely.LineString([(2, 2), (3, 3)]), Point(5, 5)])
    result = as_multipolygon(mixed)
    assert isinstance(result, MultiPolygon)
    assert len(result.geoms) == 1
    assert result.area == pytest.approx(1.0)


# --- users --------------------------------------------------------------------------------------


def test_exactly_one_demo_user_per_role(units: dict[str, DemoUnit]) -> None:
    users = demo_users()
    assert Counter(u.role for u in users) == Counter(set(Role))
    assert {u.username: u.role for u in users} == {
        "admin": Role.ADMIN,
        "analyst": Role.ANALYST,
        "commander": Role.COMMANDER,
        "protection": Role.PROTECTION_OFFICER,
        "officer": Role.FIELD_OFFICER,
    }
    for user in users:
        assert user.unit_code in units, user
    by_name = {u.username: u for u in users}
    assert by_name["admin"].unit_code == "mission-hq"
    assert by_name["analyst"].unit_code == "joc"
    assert by_name["protection"].unit_code == "human-rights"
    assert units[by_name["commander"].unit_code].kind is UnitKind.SECTOR
    officer_unit = units[by_name["officer"].unit_code]
    assert officer_unit.code == OFFICER_BATTALION_CODE
    assert officer_unit.kind is UnitKind.BATTALION
    assert officer_unit.parent_code == "sector-centre"
    assert officer_unit.aor is not None
    assert officer_unit.aor.contains(Point(TOWNS["Bambari"]))


# --- field reports ------------------------------------------------------------------------------


def test_reports_have_the_report_create_shape(reports: list[dict[str, Any]]) -> None:
    assert 10 <= len(reports) <= 20
    for report in reports:
        assert set(report) == REPORT_KEYS, report["id"]
        get_category(report["category"])  # raises for a code the taxonomy does not know
        TimePrecision(report["time_precision"])
        LocationPrecision(report["location_precision"])
        SourceType(report["source_type"])
        SourceReliability(report["source_reliability"])
        InformationCredibility(report["information_credibility"])
        PerpetratorType(report["perpetrator_type"])
        assert report["location"]["type"] == "Point"
        assert isinstance(report["location_accuracy_m"], int)
        assert report["location_accuracy_m"] > 0
        assert set(report["consent"]) == {"aggregate_reporting", "referral"}
        assert report["attachments"] == []
        assert report["reporter"] in {"officer", "commander", "protection", "analyst"}
        json.dumps(report)  # plain JSON values only


def test_report_ids_are_unique_uuids_and_deterministic(reports: list[dict[str, Any]]) -> None:
    ids = [r["id"] for r in reports]
    assert len(ids) == len(set(ids))
    assert all(str(uuid.UUID(i)) == i for i in ids)
    assert [r["id"] for r in demo_field_reports(NOW)] == ids
    assert [r["id"] for r in demo_field_reports(NOW + timedelta(days=40))] == ids


def test_every_narrative_is_marked_demo(reports: list[dict[str, Any]]) -> None:
    assert all(r["narrative"].startswith("[DEMO]") for r in reports)


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        datetime(2025, 3, 17, 0, 0, 1, tzinfo=UTC),  # just after midnight on a Monday
        datetime(2024, 2, 29, 23, 59, 59),  # naive: taken as UTC
        datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # Bangui time
    ],
)
def test_occurred_at_within_the_30_days_before_now(now: datetime) -> None:
    now_utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    for report in demo_field_reports(now):
        moment = occurred(report)
        assert moment.utcoffset() == timedelta(0), report["occurred_at"]
        assert now_utc - DEMO_WINDOW <= moment <= now_utc, (report["id"], report["occurred_at"])
        assert now_utc - moment <= timedelta(days=30)


def test_reports_lie_inside_the_outline(reports: list[dict[str, Any]]) -> None:
    outline = car_outline()
    assert all(outline.contains(Point(where(r))) for r in reports)


def test_officer_reports_lie_in_the_officers_battalion(
    units: dict[str, DemoUnit], reports: list[dict[str, Any]]
) -> None:
    battalion = units[OFFICER_BATTALION_CODE].aor
    assert battalion is not None
    mine = [r for r in reports if r["reporter"] == "officer"]
    assert len(mine) >= 4
    outside = [r["place_name"] for r in mine if not battalion.contains(Point(where(r)))]
    assert outside == []


def test_commander_reports_lie_in_the_commanders_sector(
    units: dict[str, DemoUnit], reports: list[dict[str, Any]]
) -> None:
    commander = next(u for u in demo_users() if u.username == "commander")
    aor = units[commander.unit_code].aor
    assert aor is not None
    assert all(aor.contains(Point(where(r))) for r in reports if r["reporter"] == "commander")


def test_victim_counts_are_consistent(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        victims = report["victims"]
        killed = victims["killed"]
        assert 0 <= killed["low"] <= killed["best"] <= killed["high"], report["id"]
        rows = victims["disaggregation"]
        assert sum(row["killed"] for row in rows) <= killed["high"]
        for field in ("injured", "abducted", "displaced"):
            assert sum(row[field] for row in rows) <= victims[field], (report["id"], field)
        for row in rows:
            assert row["sex"] in {"female", "male", "unknown"}
            assert row["age_group"] in {"child", "adult", "elderly", "unknown"}


def test_sensitive_cases_filed_by_protection_or_officer_with_mixed_consent(
    reports: list[dict[str, Any]],
) -> None:
    sensitive = [r for r in reports if r["category"] in SENSITIVE]
    assert len(sensitive) >= 3
    assert all(r["reporter"] in {"protection", "officer"} for r in sensitive)
    assert all(r["protection_concern"] for r in sensitive)
    flags = {flag for r in sensitive for flag in r["consent"].values()}
    assert flags == {True, False}
    misconduct = [r for r in reports if r["category"] == "sexual_exploitation_abuse"]
    assert misconduct
    assert all(r["reporter"] == "protection" for r in misconduct)
    assert all(r["perpetrator_type"] == "peacekeepers" for r in misconduct)


def test_idp_camp_attack_near_bambari_or_kaga_bandoro(reports: list[dict[str, Any]]) -> None:
    attacks = [r for r in reports if r["category"] == "attack_on_protected_site"]
    assert attacks
    towns = (TOWNS["Bambari"], TOWNS["Kaga-Bandoro"])
    assert all(min(haversine_km(where(r), t) for t in towns) < 20 for r in attacks)


def test_one_killing_reported_by_three_sources(reports: list[dict[str, Any]]) -> None:
    """The merge-suggestion demo: same category, within a few km and hours, distinct sources."""
    killings = [r for r in reports if r["category"] == "killing_of_civilians"]
    assert len(killings) >= 3
    for a, b in itertools.combinations(killings, 2):
        assert haversine_km(where(a), where(b)) < 5
        assert abs(occurred(a) - occurred(b)) <= timedelta(hours=6)
    assert len({r["source_type"] for r in killings}) == len(killings)
    assert {"officer", "analyst", "protection"} <= {r["reporter"] for r in killings}


def test_precursors_cluster_in_one_area(reports: list[dict[str, Any]]) -> None:
    precursors = [r for r in reports if r["category"] in PRECURSORS]
    assert {r["category"] for r in precursors} == PRECURSORS
    for a, b in itertools.combinations(precursors, 2):
        assert haversine_km(where(a), where(b)) < 50
    first_precursor = min(occurred(r) for r in precursors)
    killing = min(occurred(r) for r in reports if r["category"] == "killing_of_civilians")
    assert first_precursor < killing  # warning signs come before the violence


def test_reports_are_fresh_copies() -> None:
    first = demo_field_reports(NOW)
    first[0]["victims"]["injured"] = 999
    first[0]["victims"]["disaggregation"].append({})
    second = demo_field_reports(NOW)
    assert second[0]["victims"]["injured"] != 999
    assert {} not in second[0]["victims"]["disaggregation"]


# --- protected sites and patrols ----------------------------------------------------------------


def test_sites_are_inside_the_outline_with_valid_kinds() -> None:
    from server.sites.enums import SiteKind

    outline = car_outline()
    sites = demo_sites()
    assert len({s.name for s in sites}) == len(sites)
    assert {s.kind for s in sites} == {k.value for k in SiteKind}  # every kind appears
    for site in sites:
        assert outline.contains(Point(site.where)), site.name
        assert site.population is None or site.population > 0


def test_the_killing_and_the_camp_attack_happened_at_protected_sites(
    reports: list[dict[str, Any]],
) -> None:
    by_key = {r["id"]: r for r in reports}
    killing = by_key[report_id("grimari-road-killing-patrol")]
    attack = by_key[report_id("bambari-idp-site-attack")]
    sites = {s.name: s.where for s in demo_sites()}
    assert haversine_km(where(killing), sites["Village water point, Bambari-Grimari road"]) < 0.1
    assert haversine_km(where(attack), sites["IDP site, southern edge of Bambari"]) < 0.1


@pytest.fixture(scope="module")
def patrol_tracks() -> dict[str, list[tuple[datetime, float, float]]]:
    return {p.key: patrol_fixes(p, NOW) for p in demo_patrols()}


def test_patrols_belong_to_company_bases_and_have_fresh_ids(
    units: dict[str, DemoUnit],
) -> None:
    patrols = demo_patrols()
    assert len({p.key for p in patrols}) == len(patrols)
    assert len({patrol_id(p.key) for p in patrols}) == len(patrols)
    assert patrol_id(patrols[0].key) == patrol_id(patrols[0].key)
    for patrol in patrols:
        assert units[patrol.unit_code].kind is UnitKind.COMPANY, patrol.key


def test_patrol_fixes_are_plausible_recent_and_inside_the_country(
    patrol_tracks: dict[str, list[tuple[datetime, float, float]]],
) -> None:
    from geo.tracks import implausible_fixes
    from server.patrols.enums import PatrolType
    from server.patrols.service import GROUND_MAX_SPEED_MPS, MAX_SPEED_MPS

    outline = car_outline()
    kinds = {p.key: PatrolType(p.kind) for p in demo_patrols()}
    for key, fixes in patrol_tracks.items():
        times = [t.timestamp() for t, _, _ in fixes]
        assert all(b > a for a, b in itertools.pairwise(times)), key
        assert fixes[0][0] >= NOW - DEMO_WINDOW and fixes[-1][0] < NOW, key
        speed = MAX_SPEED_MPS.get(kinds[key], GROUND_MAX_SPEED_MPS)
        flags = implausible_fixes(
            times, [x for _, x, _ in fixes], [y for _, _, y in fixes], max_speed_mps=speed
        )
        assert not flags.any(), key
        assert all(outline.contains(Point(x, y)) for _, x, y in fixes), key


def test_patrol_fixes_are_deterministic(
    patrol_tracks: dict[str, list[tuple[datetime, float, float]]],
) -> None:
    again = {p.key: patrol_fixes(p, NOW) for p in demo_patrols()}
    assert again == patrol_tracks


def test_the_patrols_leave_the_scenes_of_the_story_uncovered(
    patrol_tracks: dict[str, list[tuple[datetime, float, float]]],
    reports: list[dict[str, Any]],
) -> None:
    """The point of the demo: the village of the killing and the attacked camp were last
    patrolled well before what happened there."""
    by_key = {r["id"]: r for r in reports}

    def last_visit(place: tuple[float, float]) -> datetime:
        near = [t for fixes in patrol_tracks.values() for t, x, y in fixes
                if haversine_km((x, y), place) < 0.5]  # fmt: skip
        assert near, place
        return max(near)

    killing = by_key[report_id("grimari-road-killing-patrol")]
    assert occurred(killing) - last_visit(where(killing)) > timedelta(days=3)
    attack = by_key[report_id("bambari-idp-site-attack")]
    assert occurred(attack) - last_visit(where(attack)) > timedelta(hours=24)
    east = where(by_key[report_id("bambari-east-armed-presence")])
    assert all(
        haversine_km((x, y), east) > 3 for fixes in patrol_tracks.values() for _, x, y in fixes
    )
