"""Patrols over the API: plans and status, tracks as GeoJSON, GPX and fixes, jumps kept but left
out, who may record and read, and bad input refused with nothing stored changed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from geo.tracks import haversine_m
from tests.api._builders import API, gpx_document, hours_ago, iso, track_feature, walk_fixes
from tests.seed import POINT_A1_1, POINT_B1

PATROLS = f"{API}/patrols"


def create_patrol(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post(PATROLS, json={"kind": "foot", **body})
    assert response.status_code == 201, response.text
    return response.json()


def upload_gpx(client: Any, patrol_id: str, data: bytes) -> Any:
    return client.post(
        f"{PATROLS}/{patrol_id}/track/gpx",
        files={"file": ("patrol.gpx", data, "application/gpx+xml")},
    )


def walked_km(fixes: list[dict[str, Any]]) -> float:
    lon = [f["lon"] for f in fixes]
    lat = [f["lat"] for f in fixes]
    return float(haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum()) / 1000


def test_a_planned_patrol_gets_its_type_radius_and_unit(api):
    officer = api.as_("officer_a")
    body = create_patrol(
        officer,
        kind="escort_firewood",
        name="Firewood escort, IDP site south",
        planned_start=iso(hours_ago(-2)),
        planned_end=iso(hours_ago(-6)),
        planned_route={"type": "LineString", "coordinates": [[20.12, 5.75], [20.14, 5.76]]},
    )
    assert body["status"] == "planned"
    assert body["unit_id"] == api.mission.unit_id("bn-a1")
    assert body["sensing_radius_m"] == 300.0  # escorts stay with the people they escort
    assert body["planned_route"]["coordinates"] == [[20.12, 5.75], [20.14, 5.76]]
    assert body["track"] is None and body["fix_count"] == 0
    again = officer.get(f"{PATROLS}/{body['id']}")
    assert again.status_code == 200 and again.json()["name"] == body["name"]


def test_a_geojson_track_starts_the_patrol_and_derives_its_track(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    fixes = walk_fixes(POINT_A1_1, fixes=30)

    response = officer.post(f"{PATROLS}/{patrol['id']}/track", json=track_feature(fixes))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "patrol_id": patrol["id"],
        "status": "underway",
        "stored": 30,
        "repeated": 0,
        "excluded": 0,
    }
    body = officer.get(f"{PATROLS}/{patrol['id']}").json()
    assert body["status"] == "underway"
    assert body["started_at"].startswith(fixes[0]["t"][:19])
    assert body["fix_count"] == 30 and body["coverage_at"] is not None
    assert body["track"]["type"] == "LineString"
    assert body["track"]["coordinates"] == [[f["lon"], f["lat"]] for f in fixes]
    assert body["track_km"] == pytest.approx(walked_km(fixes), abs=1e-4)  # rounded to 0.1 m
    assert body["track_minutes"] == pytest.approx(29.0)


def test_appending_fixes_is_idempotent_per_fix_time(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer, status="underway")
    fixes = walk_fixes(POINT_A1_1, fixes=10)
    first = officer.post(f"{PATROLS}/{patrol['id']}/track/points", json={"points": fixes[:6]})
    again = officer.post(f"{PATROLS}/{patrol['id']}/track/points", json={"points": fixes[3:]})
    assert first.json()["stored"] == 6
    assert (again.json()["stored"], again.json()["repeated"]) == (4, 3)
    assert officer.get(f"{PATROLS}/{patrol['id']}").json()["fix_count"] == 10


def test_a_gpx_upload_is_a_track(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    fixes = walk_fixes(POINT_A1_1, fixes=12)
    response = upload_gpx(officer, patrol["id"], gpx_document(fixes))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 12
    stored = officer.get(f"{PATROLS}/{patrol['id']}/fixes").json()
    assert [(f["lon"], f["lat"]) for f in stored] == [(f["lon"], f["lat"]) for f in fixes]


def test_an_implausible_jump_is_kept_flagged_and_left_out_of_the_track(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    fixes = walk_fixes(POINT_A1_1, fixes=8)
    fixes[4] = {**fixes[4], "lon": 20.9, "lat": 5.95}  # 80 km in a minute: a GPS jump
    response = officer.post(f"{PATROLS}/{patrol['id']}/track", json=track_feature(fixes))
    assert response.json()["excluded"] == 1
    stored = officer.get(f"{PATROLS}/{patrol['id']}/fixes").json()
    assert [f["excluded"] for f in stored] == [False] * 4 + [True] + [False] * 3
    assert stored[4]["exclusion_reason"] == "implausible_jump"
    body = officer.get(f"{PATROLS}/{patrol['id']}").json()
    assert [20.9, 5.95] not in body["track"]["coordinates"]
    assert body["excluded_fix_count"] == 1 and body["fix_count"] == 8
    assert body["track_km"] < 2.0  # the 160 km there and back are not walked


def test_air_patrols_may_fly_fast(api):
    commander = api.as_("commander_a")
    patrol = create_patrol(commander, kind="air")
    fixes = walk_fixes(POINT_A1_1, fixes=5, step=(0.02, 0.0))  # ~130 km/h
    response = commander.post(f"{PATROLS}/{patrol['id']}/track", json=track_feature(fixes))
    assert response.json()["excluded"] == 0


def test_the_status_moves_on_and_never_back(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    url = f"{PATROLS}/{patrol['id']}"
    underway = officer.patch(url, json={"status": "underway"})
    assert underway.status_code == 200 and underway.json()["started_at"] is not None
    done = officer.patch(url, json={"status": "completed"})
    assert done.json()["status"] == "completed" and done.json()["ended_at"] is not None
    back = officer.patch(url, json={"status": "underway"})
    assert back.status_code == 409, back.text
    assert back.json()["code"] == "invalid_transition"
    assert officer.get(url).json()["status"] == "completed"


def test_a_planned_patrol_can_be_aborted_and_replanned_fields_change(api):
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    url = f"{PATROLS}/{patrol['id']}"
    changed = officer.patch(url, json={"name": "Market escort", "sensing_radius_m": 800})
    assert changed.json()["name"] == "Market escort"
    assert changed.json()["sensing_radius_m"] == 800
    assert officer.patch(url, json={"status": "aborted"}).json()["status"] == "aborted"


def test_patrols_are_for_your_own_unit_or_below(api):
    officer = api.as_("officer_a")
    below = create_patrol(officer, unit_id=api.mission.unit_id("coy-a1-1"))
    assert below["unit_id"] == api.mission.unit_id("coy-a1-1")
    other = officer.post(PATROLS, json={"kind": "foot", "unit_id": api.mission.unit_id("bn-b1")})
    assert other.status_code == 403, other.text
    assert "your own unit" in other.json()["message"]
    listed = api.as_("analyst").get(PATROLS, params={"unit": api.mission.unit_id("bn-b1")})
    assert listed.json()["items"] == []  # nothing was stored


def test_roles_without_patrol_duties_cannot_record_them(api):
    response = api.as_("analyst").post(PATROLS, json={"kind": "foot"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_patrols_are_seen_within_scope_only(api):
    patrol = create_patrol(api.as_("officer_a"))
    url = f"{PATROLS}/{patrol['id']}"
    assert api.as_("commander_a").get(url).status_code == 200  # sector above the battalion
    assert api.as_("analyst").get(url).status_code == 200  # the JOC sees the mission
    assert api.as_("officer_b").get(url).status_code == 404
    assert api.as_("commander_b").get(url).status_code == 404
    foreign = api.as_("officer_b").post(
        f"{url}/track/points", json={"points": walk_fixes(POINT_B1, fixes=2)}
    )
    assert foreign.status_code == 404
    ids_b = {p["id"] for p in api.as_("officer_b").get(PATROLS).json()["items"]}
    assert patrol["id"] not in ids_b


def test_the_patrol_list_pages_and_filters(api):
    officer = api.as_("officer_a")
    made = [create_patrol(officer, kind=k) for k in ("foot", "night", "mobile")]
    first = officer.get(PATROLS, params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = officer.get(PATROLS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    seen = [p["id"] for p in first["items"] + rest["items"]]
    assert set(seen) >= {p["id"] for p in made} and len(seen) == len(set(seen))
    night = officer.get(PATROLS, params={"kind": "night"}).json()["items"]
    assert [p["id"] for p in night] == [made[1]["id"]]
    planned = officer.get(PATROLS, params={"status": "underway"}).json()["items"]
    assert planned == []


# --------------------------------------------------------------------------- bad input


def assert_refused(response: Any, field: str, fragment: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert field in messages, f"{field!r} not among {messages}"
    assert fragment.lower() in messages[field].lower(), messages[field]


@pytest.fixture
def patrol_with_track(api: Any) -> dict[str, Any]:
    officer = api.as_("officer_a")
    patrol = create_patrol(officer)
    fixes = walk_fixes(POINT_A1_1, fixes=5, began_hours_ago=6)
    assert (
        officer.post(f"{PATROLS}/{patrol['id']}/track", json=track_feature(fixes)).status_code
        == 200
    )
    return officer.get(f"{PATROLS}/{patrol['id']}").json()


def _unchanged(api: Any, before: dict[str, Any]) -> None:
    after = api.as_("officer_a").get(f"{PATROLS}/{before['id']}").json()
    assert after["fix_count"] == before["fix_count"]
    assert after["track"] == before["track"]
    assert after["track_km"] == before["track_km"]


def _times_swapped(fixes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [dict(f) for f in fixes]
    out[1]["t"], out[2]["t"] = out[2]["t"], out[1]["t"]
    return out


def _time_repeated(fixes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [dict(f) for f in fixes]
    out[2]["t"] = out[1]["t"]
    return out


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda fx: track_feature(_times_swapped(fx)), "properties.times", "increasing time"),
        (lambda fx: track_feature(_time_repeated(fx)), "properties.times", "repeats the time"),
        (lambda fx: track_feature(fx[:1]), "geometry.coordinates", "at least two positions"),
        (
            lambda fx: {**track_feature(fx), "properties": {"times": [f["t"] for f in fx[:-1]]}},
            "body",
            "one fix time per position",
        ),
        (
            lambda fx: {
                **track_feature(fx),
                "geometry": {"type": "LineString", "coordinates": [[200.0, 5.0], [20.1, 5.7]]},
            },
            "geometry.coordinates",
            "out of range",
        ),
        (
            lambda fx: {**track_feature(fx), "properties": {}},
            "properties.coordTimes",
            "required",
        ),
        (
            lambda fx: track_feature(
                [{**f, "t": iso(hours_ago(-5 - i))} for i, f in enumerate(fx)]
            ),
            "properties.times",
            "in the future",
        ),
    ],
    ids=[
        "unsorted",
        "duplicate",
        "single-point",
        "times-mismatch",
        "lon-range",
        "no-times",
        "future",
    ],
)
def test_a_bad_geojson_track_is_refused_and_nothing_changes(
    api, patrol_with_track, mutate, field, fragment
):
    fixes = walk_fixes(POINT_A1_1, fixes=4, began_hours_ago=2)
    response = api.as_("officer_a").post(
        f"{PATROLS}/{patrol_with_track['id']}/track", json=mutate(fixes)
    )
    assert_refused(response, field, fragment)
    _unchanged(api, patrol_with_track)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"this is not xml at all", "not a GPX file"),
        (b"<html><body>hello</body></html>", "root element is not <gpx>"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg>', "not a GPX file"),
        (
            b'<gpx version="1.1"><wpt lat="5.7" lon="20.1"><name>camp</name></wpt></gpx>',
            "no track points",
        ),
        (None, "has no <time>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><gpx><trk><name>&b;</name></trk></gpx>',
            "not a GPX file",
        ),
    ],
    ids=["text", "html", "binary", "truncated", "waypoints-only", "no-times", "entity-expansion"],
)
def test_a_file_that_is_not_a_gpx_track_is_refused(api, patrol_with_track, data, fragment):
    if data is None:
        data = gpx_document(walk_fixes(POINT_A1_1, fixes=3, began_hours_ago=2), with_times=False)
    response = upload_gpx(api.as_("officer_a"), patrol_with_track["id"], data)
    assert_refused(response, "file", fragment)
    _unchanged(api, patrol_with_track)


def test_a_gpx_with_unsorted_times_is_refused(api, patrol_with_track):
    fixes = _times_swapped(walk_fixes(POINT_A1_1, fixes=4, began_hours_ago=2))
    response = upload_gpx(api.as_("officer_a"), patrol_with_track["id"], gpx_document(fixes))
    assert_refused(response, "file", "increasing time")
    _unchanged(api, patrol_with_track)


def test_fix_appends_refuse_bad_coordinates_and_order(api, patrol_with_track):
    url = f"{PATROLS}/{patrol_with_track['id']}/track/points"
    officer = api.as_("officer_a")
    fixes = walk_fixes(POINT_A1_1, fixes=3, began_hours_ago=2)
    assert_refused(
        officer.post(url, json={"points": [{**fixes[0], "lat": 95.0}]}), "points.0.lat", "90"
    )
    assert_refused(
        officer.post(url, json={"points": list(reversed(fixes))}), "points", "increasing time"
    )
    assert_refused(officer.post(url, json={"points": []}), "points", "at least 1")
    _unchanged(api, patrol_with_track)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"kind": "submarine"}, "kind", "foot"),
        ({"kind": "foot", "status": "completed"}, "status", "planned"),
        ({"kind": "foot", "sensing_radius_m": -1}, "sensing_radius_m", "greater than 0"),
        ({"kind": "foot", "unit_id": 999_999}, "unit_id", "does not exist"),
        (
            {
                "kind": "foot",
                "planned_start": "2026-11-20T08:00:00Z",
                "planned_end": "2026-11-20T07:00:00Z",
            },
            "body",
            "planned_end must be after",
        ),
        (
            {"kind": "foot", "planned_route": {"type": "LineString", "coordinates": [[20, 5]]}},
            "planned_route.coordinates",
            "at least two",
        ),
    ],
    ids=["kind", "status", "radius", "unit", "window", "route"],
)
def test_a_bad_patrol_is_refused(api, body, field, fragment):
    assert_refused(api.as_("officer_a").post(PATROLS, json=body), field, fragment)
    assert api.as_("officer_a").get(PATROLS).json()["items"] == []


def test_a_client_id_cannot_be_reused(api):
    patrol_id = str(uuid.uuid4())
    create_patrol(api.as_("officer_a"), id=patrol_id)
    again = api.as_("officer_a").post(PATROLS, json={"kind": "night", "id": patrol_id})
    assert_refused(again, "id", "already exists")
