"""Coverage, gaps, presence around a cell and tasking over the API, on the seeded mission: what
a patrol covers, which threatened cells nobody has visited, who is responsible, and routes that
would close them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from geo import cells as geo_cells
from server.worker import tasks
from tests.api._builders import API, report_body, track_feature, walk_fixes
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1

PATROLS = f"{API}/patrols"
COVERAGE = f"{API}/coverage"
GAPS = f"{API}/gaps"
TASKING = f"{API}/tasking"
SITES = f"{API}/sites"
REPORTS = f"{API}/reports"

#: A point in bn-b1, 7 km north-east of its base.
EAST_OF_B1 = (20.80, 5.79)


def cell8(lon: float, lat: float) -> str:
    return geo_cells.cell_to_string(int(geo_cells.point_cells([lat], [lon], 8)[0]))


def patrol_through(
    client: Any, start: tuple[float, float], *, hours_ago: float = 3.0, fixes: int = 20, **kw: Any
) -> dict[str, Any]:
    created = client.post(PATROLS, json={"kind": "foot", **kw})
    assert created.status_code == 201, created.text
    track = walk_fixes(start, fixes=fixes, began_hours_ago=hours_ago)
    added = client.post(f"{PATROLS}/{created.json()['id']}/track", json=track_feature(track))
    assert added.status_code == 200, added.text
    return {"patrol": client.get(f"{PATROLS}/{created.json()['id']}").json(), "fixes": track}


def file_report(client: Any, point: tuple[float, float], **fields: Any) -> None:
    response = client.post(REPORTS, json=report_body(point=point, **fields))
    assert response.status_code == 201, response.text


def gaps_by_cell(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f["properties"] for f in body["features"]}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- coverage


def test_coverage_sums_km_minutes_and_patrols_per_cell(api):
    officer = api.as_("officer_a")
    first = patrol_through(officer, POINT_A1_1, hours_ago=5)
    second = patrol_through(officer, POINT_A1_1, hours_ago=2, fixes=10)

    body = officer.get(COVERAGE, params={"unit": api.mission.unit_id("bn-a1")}).json()

    meta = body["metadata"]
    assert meta["resolution"] == 8 and meta["unit_id"] == api.mission.unit_id("bn-a1")
    walked = first["patrol"]["track_km"] + second["patrol"]["track_km"]
    assert meta["km"] == pytest.approx(walked, abs=1e-2)
    assert meta["minutes"] == pytest.approx(19 + 9, abs=0.1)
    cells = {f["id"]: f["properties"] for f in body["features"]}
    assert max(p["patrol_count"] for p in cells.values()) == 2
    start_cell = cell8(*POINT_A1_1)
    assert cells[start_cell]["patrol_count"] == 2 and cells[start_cell]["km"] > 0
    last_fix = parse(second["fixes"][-1]["t"])
    assert max(parse(p["last_presence_at"]) for p in cells.values()) == last_fix
    sensed_only = [p for p in cells.values() if p["km"] == 0]
    assert sensed_only, "a foot patrol's 500 m sensing radius reaches the neighbouring cells"
    assert body["features"][0]["geometry"]["type"] == "Polygon"


def test_coverage_filters_by_patrolling_unit_and_window(api):
    officer = api.as_("officer_a")
    patrol_through(officer, POINT_A1_1, hours_ago=5)
    patrol_through(officer, POINT_A1_1, hours_ago=2, unit_id=api.mission.unit_id("coy-a1-1"))
    area = {"unit": api.mission.unit_id("bn-a1")}
    company = officer.get(
        COVERAGE, params={**area, "patrol_unit": api.mission.unit_id("coy-a1-1")}
    ).json()
    assert {p["properties"]["patrol_count"] for p in company["features"]} == {1}
    everyone = officer.get(COVERAGE, params=area).json()
    assert everyone["metadata"]["km"] > company["metadata"]["km"]
    later = officer.get(COVERAGE, params={**area, "since": "2099-01-01T00:00:00Z",
                                          "until": "2099-01-02T00:00:00Z"}).json()  # fmt: skip
    assert later["features"] == []
    elsewhere = officer.get(COVERAGE, params={"unit": api.mission.unit_id("coy-a1-2")}).json()
    assert elsewhere["features"] == []  # the track is in coy-a1-1's AOR


def test_coverage_at_a_coarser_resolution_rolls_up(api):
    officer = api.as_("officer_a")
    walk = patrol_through(officer, POINT_A1_1, hours_ago=3)
    fine = officer.get(COVERAGE, params={"resolution": 8}).json()
    coarse = officer.get(COVERAGE, params={"resolution": 6}).json()
    assert coarse["metadata"]["km"] == pytest.approx(walk["patrol"]["track_km"], abs=1e-2)
    assert 0 < len(coarse["features"]) < len(fine["features"])


# --------------------------------------------------------------------------- gaps


def test_a_protected_site_nobody_visits_is_a_gap_until_a_patrol_passes(api):
    site = api.as_("protection").post(
        SITES,
        json={
            "name": "IDP site A",
            "kind": "idp_camp",
            "location": {"type": "Point", "coordinates": list(POINT_A1_1)},
            "population": 9900,
        },
    )
    assert site.status_code == 201, site.text
    cell = cell8(*POINT_A1_1)

    before = gaps_by_cell(api.as_("analyst").get(GAPS).json())

    assert cell in before
    gap = before[cell]
    assert gap["reasons"] == ["site"] and gap["last_presence_at"] is None
    assert gap["hours_uncovered"] == 720.0  # never visited: the cap
    assert gap["exposure"] == pytest.approx(3.0)  # 1 + log10(1 + 9900 / 100)
    assert gap["allowed_hours"] == 84.0  # a week / threat 1, halved by the site
    assert gap["score"] == pytest.approx(1.0 * 720.0 * 3.0)
    assert gap["unit_code"] == "coy-a1-1"
    assert [s["name"] for s in gap["sites"]] == ["IDP site A"]

    patrol_through(api.as_("officer_a"), POINT_A1_1, hours_ago=4)

    after = gaps_by_cell(api.as_("analyst").get(GAPS).json())
    assert cell not in after


def test_a_flash_incident_is_a_gap_of_the_unit_that_holds_it(api):
    file_report(api.as_("analyst"), EAST_OF_B1, hours_ago=5, category="killing_of_civilians")
    cell = cell8(*EAST_OF_B1)

    for user in ("analyst", "commander_b", "officer_b"):
        gaps = gaps_by_cell(api.as_(user).get(GAPS).json())
        assert cell in gaps, user
        assert gaps[cell]["reasons"] == ["flash"] and gaps[cell]["unit_code"] == "bn-b1"
        assert gaps[cell]["allowed_hours"] == 56.0  # 168 h / threat 3
    for user in ("commander_a", "officer_a"):
        assert cell not in gaps_by_cell(api.as_(user).get(GAPS).json()), user
    unit_a = api.as_("analyst").get(GAPS, params={"unit": api.mission.unit_id("sector-a")})
    assert cell not in gaps_by_cell(unit_a.json())
    only_hot = api.as_("analyst").get(GAPS, params={"threat": "hot"}).json()
    assert cell not in gaps_by_cell(only_hot)
    only_flash = api.as_("analyst").get(GAPS, params={"threat": ["flash", "surge"]}).json()
    assert cell in gaps_by_cell(only_flash)


def test_an_old_visit_leaves_the_gap_open_and_a_recent_one_closes_it(api):
    file_report(api.as_("analyst"), EAST_OF_B1, hours_ago=5, category="killing_of_civilians")
    cell = cell8(*EAST_OF_B1)
    officer = api.as_("officer_b")
    patrol_through(officer, EAST_OF_B1, hours_ago=100, fixes=3)

    gap = gaps_by_cell(api.as_("analyst").get(GAPS).json())[cell]

    assert gap["hours_uncovered"] == pytest.approx(100 - 2 / 60, abs=0.05)
    assert gap["last_presence_at"] is not None and gap["last_patrol_id"] is not None
    patrol_through(officer, EAST_OF_B1, hours_ago=10, fixes=3)
    assert cell not in gaps_by_cell(api.as_("analyst").get(GAPS).json())


def test_a_sensitive_incident_raises_a_gap_for_protection_officers_only(api):
    file_report(
        api.as_("protection"),
        EAST_OF_B1,
        hours_ago=5,
        category="sexual_violence",
        consent={"aggregate_reporting": True, "referral": False},
    )
    cell = cell8(*EAST_OF_B1)
    assert cell not in gaps_by_cell(api.as_("analyst").get(GAPS).json())
    assert cell not in gaps_by_cell(api.as_("commander_b").get(GAPS).json())
    full = api.as_("protection").get(GAPS).json()
    assert full["metadata"]["audience"] == "full"
    assert gaps_by_cell(full)[cell]["reasons"] == ["flash"]


def test_hot_spots_of_the_stored_picture_are_threats(api):
    analyst = api.as_("analyst")
    for i in range(9):
        offset = 0.0008 * (i % 3), 0.0008 * (i // 3)
        point = (POINT_A1_2[0] + offset[0], POINT_A1_2[1] + offset[1])
        file_report(analyst, point, hours_ago=200, category="attack_on_civilians")
    assert analyst.get(GAPS).json()["metadata"]["threat_as_of"] is None
    tasks.refresh_hotspots()

    body = analyst.get(GAPS).json()

    assert body["metadata"]["threat_as_of"] is not None
    hot = [g for g in gaps_by_cell(body).values() if "hot" in g["reasons"]]
    assert hot, "the cluster's cells are hot in the stored snapshots"
    assert all(g["unit_code"] == "coy-a1-2" for g in hot)


def test_gaps_are_ranked_and_limited(api):
    file_report(api.as_("analyst"), EAST_OF_B1, hours_ago=5, category="killing_of_civilians")
    api.as_("protection").post(
        SITES,
        json={"name": "Water point", "kind": "water_point",
              "location": {"type": "Point", "coordinates": [20.9, 5.9]}},
    )  # fmt: skip
    body = api.as_("analyst").get(GAPS).json()
    scores = [f["properties"]["score"] for f in body["features"]]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 2
    assert [f["properties"]["rank"] for f in body["features"]] == list(range(1, len(scores) + 1))
    one = api.as_("analyst").get(GAPS, params={"limit": 1}).json()
    assert len(one["features"]) == 1 and one["metadata"]["total"] == body["metadata"]["total"]


# --------------------------------------------------------------------------- around a cell


def test_presence_around_a_cell_names_the_gap_and_the_nearest_presence(api):
    file_report(api.as_("analyst"), EAST_OF_B1, hours_ago=5, category="killing_of_civilians")
    cell = cell8(*EAST_OF_B1)
    commander = api.as_("commander_b")

    body = commander.get(f"{COVERAGE}/around/{cell}").json()

    assert body["cell"] == cell and body["last_presence_at"] is None
    assert body["unit_id"] == api.mission.unit_id("bn-b1")
    assert [g["cell"] for g in body["gaps"]][:1] == [cell]
    assert body["nearest"]["kind"] == "base"
    assert body["nearest"]["distance_km"] == pytest.approx(7.3, abs=0.8)
    # An underway patrol a few hundred metres away is nearer than the base.
    created = api.as_("officer_b").post(PATROLS, json={"kind": "foot", "status": "underway"})
    fix = [{"t": walk_fixes(EAST_OF_B1, fixes=1, began_hours_ago=0.2)[0]["t"],
            "lon": 20.803, "lat": 5.792}]  # fmt: skip
    added = api.as_("officer_b").post(
        f"{PATROLS}/{created.json()['id']}/track/points", json={"points": fix}
    )
    assert added.status_code == 200, added.text
    nearer = commander.get(f"{COVERAGE}/around/{cell}").json()
    assert nearer["nearest"]["kind"] == "patrol"
    assert nearer["nearest"]["distance_km"] < 1.0
    assert nearer["ring_hours_uncovered"] == pytest.approx(0.2, abs=0.05)


def test_presence_around_refuses_cells_it_cannot_answer(api):
    commander = api.as_("commander_a")
    fine = geo_cells.cell_to_string(int(geo_cells.point_cells([5.79], [20.80], 10)[0]))
    assert commander.get(f"{COVERAGE}/around/{fine}").status_code == 422
    assert commander.get(f"{COVERAGE}/around/not-a-cell").status_code == 422
    assert commander.get(f"{COVERAGE}/around/{cell8(*POINT_B1)}").status_code == 404


# --------------------------------------------------------------------------- tasking


def test_tasking_routes_the_patrols_to_the_gaps(api):
    analyst = api.as_("analyst")
    file_report(analyst, EAST_OF_B1, hours_ago=5, category="killing_of_civilians")
    file_report(analyst, (20.70, 5.70), hours_ago=8, category="attack_on_protected_site")
    far = (20.98, 5.98)  # 35 km out: beyond a foot patrol's reach
    file_report(analyst, far, hours_ago=8, category="killing_of_civilians")

    response = api.as_("commander_b").post(
        TASKING,
        json={
            "unit_id": api.mission.unit_id("bn-b1"),
            "patrols": [{"count": 2, "kind": "foot", "max_range_km": 25, "max_duration_hours": 8}],
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gaps_considered"] == 3 and body["rule"] in ("gain", "gain_per_km")
    visited = {s["cell"] for r in body["routes"] for s in r["stops"]}
    assert {cell8(*EAST_OF_B1), cell8(20.70, 5.70)} <= visited
    assert cell8(*far) not in visited
    for route in body["routes"]:
        assert route["km"] <= 25 and route["hours"] <= 8
        if route["stops"]:
            assert route["geometry"]["coordinates"][0] == route["base"]["coordinates"]
            assert route["stops"][-1]["cumulative_km"] + route["return_km"] == pytest.approx(
                route["km"], abs=1e-2
            )
    summary = body["summary"]
    assert summary["gaps_covered"] == 2 and summary["threat_covered"] < summary["threat_total"]
    assert body["nearest_first"]["threat_covered"] <= summary["threat_covered"] + 1e-6


def test_tasking_needs_the_role_a_base_and_sane_patrols(api):
    patrols = [{"kind": "foot", "max_range_km": 10, "max_duration_hours": 4}]
    officer = api.as_("officer_b").post(TASKING, json={"patrols": patrols})
    assert officer.status_code == 403
    no_base = api.as_("analyst").post(
        TASKING, json={"unit_id": api.mission.unit_id("joc"), "patrols": patrols}
    )
    assert no_base.status_code == 422, no_base.text
    assert no_base.json()["errors"][0]["field"] == "patrols.0.base"
    empty = api.as_("commander_b").post(TASKING, json={"patrols": []})
    assert empty.status_code == 422
    too_many = api.as_("commander_b").post(TASKING, json={"patrols": [{**patrols[0], "count": 41}]})
    assert too_many.status_code == 422
    foreign = api.as_("commander_a").post(
        TASKING, json={"unit_id": api.mission.unit_id("bn-b1"), "patrols": patrols}
    )
    assert foreign.status_code == 404


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (GAPS, {"resolution": 9}, "query:resolution"),
        (GAPS, {"threat": "rumour"}, "query:threat"),
        (COVERAGE, {"resolution": 4}, "query:resolution"),
        (
            COVERAGE,
            {"since": "2026-11-20T00:00:00Z", "until": "2026-11-19T00:00:00Z"},
            "query:since",
        ),
        (
            COVERAGE,
            {"since": "2024-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "query:since",
        ),
        (COVERAGE, {"since": "yesterday"}, "query:since"),
    ],
    ids=["gap-resolution", "threat", "coverage-resolution", "reversed", "too-long", "not-a-time"],
)
def test_bad_queries_are_refused_with_the_field(api, url, params, field):
    response = api.as_("analyst").get(url, params=params)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


def test_units_outside_scope_are_not_found(api):
    other = api.mission.unit_id("bn-b1")
    assert api.as_("officer_a").get(GAPS, params={"unit": other}).status_code == 404
    assert api.as_("officer_a").get(COVERAGE, params={"unit": other}).status_code == 404
