"""Units and versioned areas of responsibility, and re-routing of reports when an AOR changes."""

from __future__ import annotations

from typing import Any

import pytest
from shapely.geometry import Point, shape

from tests.api._builders import API, polygon, report_body
from tests.seed import POINT_A1_1

UNITS = f"{API}/units"

NON_ADMINS = ["analyst", "protection", "commander_a", "officer_a"]


def unit_body(**overrides: Any) -> dict[str, Any]:
    return {
        "code": "coy-a1-3",
        "name": "Company A1-3",
        "kind": "company",
        "component": "military",
        **overrides,
    }


def unit_codes(api: Any) -> list[str]:
    response = api.as_("admin").get(UNITS)
    assert response.status_code == 200, response.text
    return [u["code"] for u in response.json()]


def versions(api: Any, unit_id: int) -> list[dict[str, Any]]:
    response = api.as_("admin").get(f"{UNITS}/{unit_id}/aor/versions")
    assert response.status_code == 200, response.text
    return response.json()


def test_list_shows_the_hierarchy_with_paths_and_current_aor_versions(api):
    response = api.as_("officer_a").get(UNITS)

    assert response.status_code == 200
    units = {u["code"]: u for u in response.json()}
    assert set(units) == set(api.mission.units)
    coy = units["coy-a1-1"]
    assert coy["parent_id"] == api.mission.unit_id("bn-a1")
    chain = ["mission-hq", "force-hq", "sector-a", "bn-a1", "coy-a1-1"]
    assert coy["path"] == "/" + "".join(f"{api.mission.unit_id(c)}/" for c in chain)
    assert coy["depth"] == 4
    assert coy["current_aor_version"] == 1
    assert units["joc"]["current_aor_version"] is None


def test_current_aor_is_a_geojson_feature(api):
    unit_id = api.mission.unit_id("coy-a1-1")

    response = api.as_("commander_a").get(f"{UNITS}/{unit_id}/aor")

    assert response.status_code == 200
    feature = response.json()
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert shape(feature["geometry"]).equals(shape(polygon(20.0, 5.5, 20.25, 6.0)))
    assert feature["properties"]["version"] == 1
    assert feature["properties"]["unit_code"] == "coy-a1-1"
    assert feature["properties"]["area_km2"] > 0


def test_unit_without_aor_answers_404_for_its_aor(api):
    response = api.as_("analyst").get(f"{UNITS}/{api.mission.unit_id('joc')}/aor")

    assert response.status_code == 404


def test_admin_creates_a_unit_with_an_aor_and_its_cells_are_stored(api):
    body = unit_body(parent_id=api.mission.unit_id("bn-a1"), aor=polygon(20.1, 5.6, 20.2, 5.7))

    response = api.as_("admin").post(UNITS, json=body)

    assert response.status_code == 201, response.text
    unit = response.json()
    assert unit["depth"] == 4
    assert unit["path"].endswith(f"/{unit['id']}/")
    assert unit["current_aor_version"] == 1
    (version,) = versions(api, unit["id"])
    assert version["valid_to"] is None
    assert version["resolutions"] == [5, 6, 7, 8, 9]
    assert version["cell_count"] > 0
    assert 100 < version["area_km2"] < 150  # 0.1° × 0.1° near the equator ≈ 123 km²


@pytest.mark.parametrize("role", NON_ADMINS)
def test_only_admins_create_change_or_delete_units(api, role):
    client = api.as_(role)
    coy = api.mission.unit_id("coy-a1-2")

    created = client.post(UNITS, json=unit_body(parent_id=api.mission.unit_id("bn-a1")))
    renamed = client.patch(f"{UNITS}/{coy}", json={"name": "Renamed"})
    moved_aor = client.put(f"{UNITS}/{coy}/aor", json={"geometry": polygon(20, 5, 21, 6)})
    deleted = client.delete(f"{UNITS}/{coy}")

    assert [created.status_code, renamed.status_code, moved_aor.status_code] == [403, 403, 403]
    assert deleted.status_code == 403
    assert "coy-a1-3" not in unit_codes(api)
    assert api.as_("admin").get(f"{UNITS}/{coy}").json()["name"] == "Company A1-2"
    assert len(versions(api, coy)) == 1


def test_admin_renames_a_unit(api):
    coy = api.mission.unit_id("coy-a1-2")

    response = api.as_("admin").patch(f"{UNITS}/{coy}", json={"name": "Company A1-2 (Ippy)"})

    assert response.status_code == 200, response.text
    assert api.as_("officer_a").get(f"{UNITS}/{coy}").json()["name"] == "Company A1-2 (Ippy)"


def test_moving_a_unit_below_its_own_subunit_is_422(api):
    bn = api.mission.unit_id("bn-a1")

    response = api.as_("admin").patch(
        f"{UNITS}/{bn}", json={"parent_id": api.mission.unit_id("coy-a1-1")}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "parent_id"
    assert api.as_("admin").get(f"{UNITS}/{bn}").json()["parent_id"] == api.mission.unit_id(
        "sector-a"
    )


def test_moving_a_unit_rewrites_the_paths_of_its_subtree(api):
    bn = api.mission.unit_id("bn-a1")
    sector_b = api.mission.unit_id("sector-b")

    response = api.as_("admin").patch(f"{UNITS}/{bn}", json={"parent_id": sector_b})

    assert response.status_code == 200, response.text
    coy = api.as_("admin").get(f"{UNITS}/{api.mission.unit_id('coy-a1-1')}").json()
    assert f"/{sector_b}/{bn}/" in coy["path"]
    assert coy["depth"] == 4


def test_unit_in_use_cannot_be_deleted(api):
    bn = api.mission.unit_id("bn-a1")

    response = api.as_("admin").delete(f"{UNITS}/{bn}")

    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert "bn-a1" in unit_codes(api)


def test_an_unused_unit_is_deleted(api):
    admin = api.as_("admin")
    unit_id = admin.post(UNITS, json=unit_body(parent_id=api.mission.unit_id("bn-a1"))).json()["id"]

    response = admin.delete(f"{UNITS}/{unit_id}")

    assert response.status_code == 204
    assert admin.get(f"{UNITS}/{unit_id}").status_code == 404


def test_unknown_unit_is_404(api):
    assert api.as_("admin").get(f"{UNITS}/999999").status_code == 404
    assert (
        api.as_("admin")
        .put(f"{UNITS}/999999/aor", json={"geometry": polygon(20, 5, 21, 6)})
        .status_code
        == 404
    )


def test_changing_an_aor_opens_a_new_version_and_closes_the_old(api):
    coy = api.mission.unit_id("coy-a1-2")
    new_area = polygon(20.25, 5.5, 20.5, 5.8)

    response = api.as_("admin").put(f"{UNITS}/{coy}/aor", json={"geometry": new_area})

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["valid_to"] is None
    assert response.json()["cell_count"] > 0
    old, new = versions(api, coy)
    assert (old["version"], new["version"]) == (1, 2)
    assert old["valid_to"] is not None
    assert old["valid_to"] == new["valid_from"]
    assert new["valid_to"] is None
    assert shape(old["geometry"]).equals(shape(polygon(20.25, 5.5, 20.5, 6.0)))
    assert shape(new["geometry"]).equals(shape(new_area))
    current = api.as_("admin").get(f"{UNITS}/{coy}/aor").json()
    assert current["properties"]["version"] == 2
    assert api.as_("admin").get(f"{UNITS}/{coy}").json()["current_aor_version"] == 2


def test_changing_an_aor_reroutes_reports_to_the_new_deepest_unit(api):
    analyst = api.as_("analyst")
    admin = api.as_("admin")
    report = analyst.post(f"{API}/reports", json=report_body(point=POINT_A1_1)).json()
    assert report["aor_unit_id"] == api.mission.unit_id("coy-a1-1")

    # Company A1-1 gives up its eastern strip (where the report is) to company A1-2.
    shrink = admin.put(
        f"{UNITS}/{api.mission.unit_id('coy-a1-1')}/aor",
        json={"geometry": polygon(20.0, 5.5, 20.1, 6.0)},
    )
    assert shrink.status_code == 200, shrink.text
    assert not shape(shrink.json()["geometry"]).contains(Point(POINT_A1_1))
    # In the gap only the battalion's AOR holds the point.
    between = analyst.get(f"{API}/reports/{report['id']}").json()
    assert between["aor_unit_id"] == api.mission.unit_id("bn-a1")

    grow = admin.put(
        f"{UNITS}/{api.mission.unit_id('coy-a1-2')}/aor",
        json={"geometry": polygon(20.1, 5.5, 20.5, 6.0)},
    )
    assert grow.status_code == 200, grow.text

    after = analyst.get(f"{API}/reports/{report['id']}").json()
    assert after["aor_unit_id"] == api.mission.unit_id("coy-a1-2")
    incident = analyst.get(f"{API}/incidents/{report['incident_id']}").json()
    assert incident["aor_unit_id"] == api.mission.unit_id("coy-a1-2")
    # A report filed after the change is routed the same way at once.
    fresh = analyst.post(f"{API}/reports", json=report_body(point=POINT_A1_1)).json()
    assert fresh["aor_unit_id"] == api.mission.unit_id("coy-a1-2")
