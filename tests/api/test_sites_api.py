"""Protected sites over the API: create, read, update with versions, delete; routed to the AOR
that holds them; who may manage them where; bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api._builders import API, polygon
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1

SITES = f"{API}/sites"


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def create_site(client: Any, **body: Any) -> dict[str, Any]:
    payload = {"name": "IDP site", "kind": "idp_camp", "location": point(*POINT_A1_1), **body}
    response = client.post(SITES, json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_camp_is_stored_with_its_population_and_responsible_unit(api):
    site = create_site(api.as_("protection"), population=8500, notes="Opened after the attacks")
    assert site["type"] == "Feature" and site["geometry"] == point(*POINT_A1_1)
    props = site["properties"]
    assert props["kind"] == "idp_camp" and props["population"] == 8500
    assert props["aor_unit_id"] == api.mission.unit_id("coy-a1-1")  # the deepest AOR
    assert props["version"] == 1
    read = api.as_("officer_b").get(f"{SITES}/{site['id']}")  # every user may read sites
    assert read.status_code == 200 and read.json()["properties"]["name"] == "IDP site"


def test_a_market_outline_gets_a_point_inside_it(api):
    area = polygon(20.36, 5.74, 20.38, 5.76)
    site = create_site(api.as_("analyst"), kind="market", location=None, area=area)
    assert site["geometry"]["type"] == "MultiPolygon"
    lon, lat = site["properties"]["location"]["coordinates"]
    assert 20.36 < lon < 20.38 and 5.74 < lat < 5.76
    assert site["properties"]["aor_unit_id"] == api.mission.unit_id("coy-a1-2")


def test_sites_are_listed_and_filtered_by_kind(api):
    client = api.as_("protection")
    camp = create_site(client)
    water = create_site(client, kind="water_point", location=point(*POINT_B1))
    everything = {f["id"] for f in api.as_("officer_a").get(SITES).json()["features"]}
    assert {camp["id"], water["id"]} <= everything
    only_water = client.get(SITES, params={"kind": "water_point"}).json()["features"]
    assert [f["id"] for f in only_water] == [water["id"]]


def test_an_update_needs_the_current_version_and_moves_the_site(api):
    client = api.as_("protection")
    site = create_site(client)
    url = f"{SITES}/{site['id']}"
    moved = client.patch(url, json={"version": 1, "location": point(*POINT_A1_2), "population": 9})
    assert moved.status_code == 200, moved.text
    props = moved.json()["properties"]
    assert props["version"] == 2 and props["population"] == 9
    assert props["aor_unit_id"] == api.mission.unit_id("coy-a1-2")
    stale = client.patch(url, json={"version": 1, "name": "Renamed"})
    assert stale.status_code == 412, stale.text
    assert client.get(url).json()["properties"]["name"] == "IDP site"


def test_a_site_is_deleted(api):
    client = api.as_("protection")
    site = create_site(client)
    assert client.delete(f"{SITES}/{site['id']}").status_code == 204
    assert client.get(f"{SITES}/{site['id']}").status_code == 404


def test_a_commander_manages_sites_in_their_own_area_only(api):
    commander = api.as_("commander_a")
    own = create_site(commander)
    foreign = commander.post(
        SITES, json={"name": "Market", "kind": "market", "location": point(*POINT_B1)}
    )
    assert foreign.status_code == 403, foreign.text
    theirs = create_site(api.as_("commander_b"), location=point(*POINT_B1))
    assert commander.delete(f"{SITES}/{theirs['id']}").status_code == 403
    assert (
        commander.patch(
            f"{SITES}/{own['id']}", json={"version": 1, "location": point(*POINT_B1)}
        ).status_code
        == 403
    )  # moving it out of the sector
    assert api.as_("analyst").get(f"{SITES}/{theirs['id']}").status_code == 200


def test_field_officers_do_not_manage_sites(api):
    response = api.as_("officer_a").post(
        SITES, json={"name": "x", "kind": "market", "location": point(*POINT_A1_1)}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"name": "x", "kind": "idp_camp"}, "body", "location"),
        ({"name": "x", "kind": "hospital", "location": point(20.1, 5.7)}, "kind", "idp_camp"),
        (
            {
                "name": "x",
                "kind": "market",
                "location": point(20.5, 5.9),
                "area": polygon(20.1, 5.7, 20.11, 5.71),
            },
            "location",
            "inside its area",
        ),
        (
            {"name": "x", "kind": "idp_camp", "area": polygon(20.0, 5.5, 20.5, 6.0)},
            "area",
            "at most",
        ),
        (
            {"name": "x", "kind": "idp_camp", "location": point(20.1, 5.7), "population": -3},
            "population",
            "greater than or equal to 0",
        ),
        ({"name": "", "kind": "idp_camp", "location": point(20.1, 5.7)}, "name", "at least 1"),
    ],
    ids=["nowhere", "kind", "point-outside", "too-large", "population", "name"],
)
def test_a_bad_site_is_refused_and_nothing_is_stored(api, body, field, fragment):
    response = api.as_("protection").post(SITES, json=body)
    assert response.status_code == 422, response.text
    messages = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert field in messages, messages
    assert fragment.lower() in messages[field].lower(), messages[field]
    assert api.as_("protection").get(SITES).json()["features"] == []
