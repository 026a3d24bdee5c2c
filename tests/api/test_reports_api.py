"""Reports: idempotent create, read, filtered and paginated lists, GeoJSON, optimistic
updates, and the verification state machine."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api._builders import API, hours_ago, iso, report_body
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1

REPORTS = f"{API}/reports"


def create(client: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(REPORTS, json=report_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def listed_ids(client: Any, **params: Any) -> set[str]:
    response = client.get(REPORTS, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return {item["id"] for item in response.json()["items"]}


def verify(client: Any, report_id: str, to_state: str, note: str | None = None) -> Any:
    body: dict[str, Any] = {"to_state": to_state}
    if note is not None:
        body["note"] = note
    return client.post(f"{REPORTS}/{report_id}/verification", json=body)


# --------------------------------------------------------------------------- create and read


def test_create_stores_the_report_and_derives_units_family_and_incident(api):
    body = report_body()

    response = api.as_("officer_a").post(REPORTS, json=body)

    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    report = response.json()
    assert report["id"] == body["id"]
    assert report["version"] == 1
    assert report["category"] == "killing_of_civilians"
    assert report["family"] == "violence_against_civilians"
    assert report["location"] == {"type": "Point", "coordinates": list(POINT_A1_1)}
    assert report["reporting_unit_id"] == api.mission.unit_id("bn-a1")
    assert report["aor_unit_id"] == api.mission.unit_id("coy-a1-1")
    assert report["created_by_user_id"] == api.mission.users["officer_a"].id
    assert report["verification_state"] == "reported"
    assert report["sensitivity"] == "normal"
    assert report["victims"]["killed"] == {"best": 2, "low": 1, "high": 3}
    assert report["incident_id"] is not None
    assert set(report["cells"]) >= {"5", "9"}
    read = api.as_("officer_a").get(f"{REPORTS}/{body['id']}")
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert read.json() == report


def test_resending_the_same_report_returns_the_stored_one_with_200(api):
    officer = api.as_("officer_a")
    body = report_body()
    first = officer.post(REPORTS, json=body)

    again = officer.post(REPORTS, json=body)

    assert first.status_code == 201
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert listed_ids(officer) == {body["id"]}


def test_same_id_with_different_content_is_409_and_keeps_the_original(api):
    officer = api.as_("officer_a")
    body = report_body()
    officer.post(REPORTS, json=body)

    changed = officer.post(REPORTS, json={**body, "narrative": "A different story."})

    assert changed.status_code == 409
    assert changed.json()["code"] == "id_reused_with_different_content"
    stored = officer.get(f"{REPORTS}/{body['id']}").json()
    assert stored["narrative"] == body["narrative"]
    assert stored["version"] == 1


def test_same_id_and_content_from_another_user_is_409(api):
    body = report_body()
    api.as_("officer_a").post(REPORTS, json=body)

    response = api.as_("analyst").post(REPORTS, json=body)

    assert response.status_code == 409
    stored = api.as_("analyst").get(f"{REPORTS}/{body['id']}").json()
    assert stored["created_by_user_id"] == api.mission.users["officer_a"].id


def test_report_outside_the_readers_scope_is_404(api):
    report = create(api.as_("officer_a"), point=POINT_A1_1)

    assert api.as_("commander_b").get(f"{REPORTS}/{report['id']}").status_code == 404
    assert api.as_("commander_a").get(f"{REPORTS}/{report['id']}").status_code == 200


def test_sensitive_report_is_redacted_for_readers_without_need_to_know(api):
    report = create(api.as_("protection"), category="sexual_violence", victims={})

    analyst_view = api.as_("analyst").get(f"{REPORTS}/{report['id']}")
    protection_view = api.as_("protection").get(f"{REPORTS}/{report['id']}")

    assert analyst_view.status_code == 200
    assert analyst_view.json()["detail"] == "redacted"
    assert set(analyst_view.json()) == {"detail", "id", "category", "family", "day", "h3_res6"}
    assert "ETag" not in analyst_view.headers
    assert protection_view.json()["detail"] == "full"
    assert protection_view.json()["narrative"] == report["narrative"]


# --------------------------------------------------------------------------- listing


@pytest.fixture
def spread(api: Any) -> dict[str, str]:
    """Reports spread over space, time, categories and verification states."""
    analyst = api.as_("analyst")
    ids = {
        "a1_1_recent": create(analyst, point=POINT_A1_1, hours_ago=2)["id"],
        "a1_2_day_old": create(
            analyst, point=POINT_A1_2, hours_ago=30, category="attack_on_civilians"
        )["id"],
        "b1_week_old": create(
            analyst, point=POINT_B1, hours_ago=24 * 7, category="forced_displacement"
        )["id"],
        "b1_abduction": create(analyst, point=POINT_B1, hours_ago=5, category="abduction")["id"],
    }
    assert verify(analyst, ids["a1_2_day_old"], "under_verification").status_code == 200
    return ids


def test_list_without_filters_returns_everything_newest_first(api, spread):
    response = api.as_("analyst").get(REPORTS)

    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["id"] for i in items] == [
        spread["a1_1_recent"],
        spread["b1_abduction"],
        spread["a1_2_day_old"],
        spread["b1_week_old"],
    ]


def test_list_by_bbox(api, spread):
    around_a1_2 = "20.3,5.7,20.4,5.8"
    whole_sector_b = "20.5,5.5,21.0,6.0"

    analyst = api.as_("analyst")

    assert listed_ids(analyst, bbox=around_a1_2) == {spread["a1_2_day_old"]}
    assert listed_ids(analyst, bbox=whole_sector_b) == {
        spread["b1_week_old"],
        spread["b1_abduction"],
    }
    assert listed_ids(analyst, bbox="0,0,1,1") == set()


def test_list_by_time_window_with_exclusive_end(api, spread):
    analyst = api.as_("analyst")

    last_day = listed_ids(analyst, occurred_from=iso(hours_ago(24)))
    earlier = listed_ids(analyst, occurred_to=iso(hours_ago(24)))
    middle = listed_ids(analyst, occurred_from=iso(hours_ago(48)), occurred_to=iso(hours_ago(4)))

    assert last_day == {spread["a1_1_recent"], spread["b1_abduction"]}
    assert earlier == {spread["a1_2_day_old"], spread["b1_week_old"]}
    assert middle == {spread["a1_2_day_old"], spread["b1_abduction"]}


def test_time_window_end_is_exclusive(api):
    analyst = api.as_("analyst")
    report = create(analyst)
    at = report["occurred_at"]

    assert listed_ids(analyst, occurred_to=at) == set()
    assert listed_ids(analyst, occurred_from=at) == {report["id"]}


def test_list_by_category_and_by_family(api, spread):
    analyst = api.as_("analyst")

    by_category = listed_ids(analyst, category=["abduction", "forced_displacement"])
    by_family = listed_ids(analyst, family="violence_against_civilians")

    assert by_category == {spread["b1_abduction"], spread["b1_week_old"]}
    assert by_family == {spread["a1_1_recent"], spread["a1_2_day_old"]}


def test_list_by_unit_subtree(api, spread):
    analyst = api.as_("analyst")

    battalion_a = listed_ids(analyst, unit=api.mission.unit_id("bn-a1"))
    company = listed_ids(analyst, unit=api.mission.unit_id("coy-a1-2"))
    sector_b = listed_ids(analyst, unit=api.mission.unit_id("sector-b"))

    assert battalion_a == {spread["a1_1_recent"], spread["a1_2_day_old"]}
    assert company == {spread["a1_2_day_old"]}
    assert sector_b == {spread["b1_week_old"], spread["b1_abduction"]}


def test_list_by_verification_state(api, spread):
    analyst = api.as_("analyst")

    under = listed_ids(analyst, verification_state="under_verification")
    reported = listed_ids(analyst, verification_state="reported")

    assert under == {spread["a1_2_day_old"]}
    assert reported == set(spread.values()) - under


def test_filters_combine_with_and(api, spread):
    ids = listed_ids(api.as_("analyst"), bbox="20.5,5.5,21.0,6.0", occurred_from=iso(hours_ago(24)))

    assert ids == {spread["b1_abduction"]}


def test_list_is_limited_to_the_readers_scope(api, spread):
    assert listed_ids(api.as_("commander_b")) == {spread["b1_week_old"], spread["b1_abduction"]}
    assert listed_ids(api.as_("officer_a")) == {spread["a1_1_recent"], spread["a1_2_day_old"]}


def test_cursor_pages_neither_skip_nor_repeat_even_with_inserts_between_pages(api):
    analyst = api.as_("analyst")
    same_moment = iso(hours_ago(6))
    created = [create(analyst, hours_ago=1 + k)["id"] for k in range(5)]
    # Four reports at the very same moment: the id breaks the tie.
    created += [create(analyst, occurred_at=same_moment)["id"] for _ in range(4)]
    created += [create(analyst, hours_ago=10 + k)["id"] for k in range(3)]

    seen: list[str] = []
    sort_keys: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = analyst.get(REPORTS, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [i["id"] for i in body["items"]]
        sort_keys += [(i["occurred_at"], i["id"]) for i in body["items"]]
        pages += 1
        if pages == 1:
            # Filed while the client is paging: newer than everything listed, so it belongs
            # before the first page and must not shift the pages that follow.
            create(analyst, hours_ago=0.5)
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == len(set(seen)) == len(created)
    assert set(seen) == set(created)
    assert sort_keys == sorted(sort_keys, reverse=True)


def test_geojson_format_is_an_rfc7946_feature_collection(api, spread):
    response = api.as_("analyst").get(REPORTS, params={"format": "geojson"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection
    assert collection["next_cursor"] is None
    features = {f["id"]: f for f in collection["features"]}
    assert set(features) == set(spread.values())
    feature = features[spread["a1_2_day_old"]]
    assert feature["type"] == "Feature"
    # RFC 7946: [longitude, latitude] in WGS 84.
    assert feature["geometry"] == {"type": "Point", "coordinates": list(POINT_A1_2)}
    assert feature["properties"]["category"] == "attack_on_civilians"
    assert feature["properties"]["verification_state"] == "under_verification"
    assert "location" not in feature["properties"]


def test_geojson_shows_a_redacted_report_as_its_closed_hexagon(api):
    report = create(api.as_("protection"), category="sexual_violence", victims={})

    response = api.as_("analyst").get(REPORTS, params={"format": "geojson"})

    (feature,) = response.json()["features"]
    assert feature["id"] == report["id"]
    assert feature["geometry"]["type"] == "Polygon"
    (ring,) = feature["geometry"]["coordinates"]
    assert len(ring) == 7
    assert ring[0] == ring[-1]
    assert set(feature["properties"]) == {"detail", "id", "category", "family", "day", "h3_res6"}


def test_geojson_pages_with_the_same_cursor(api):
    analyst = api.as_("analyst")
    ids = {create(analyst, hours_ago=1 + k)["id"] for k in range(3)}

    first = analyst.get(REPORTS, params={"format": "geojson", "limit": 2}).json()
    second = analyst.get(
        REPORTS, params={"format": "geojson", "limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert len(first["features"]) == 2
    assert second["next_cursor"] is None
    assert {f["id"] for f in first["features"] + second["features"]} == ids


# --------------------------------------------------------------------------- updating


def test_update_with_if_match_bumps_the_version_and_returns_an_etag(api):
    officer = api.as_("officer_a")
    report = create(officer)

    response = officer.patch(
        f"{REPORTS}/{report['id']}",
        json={"narrative": "Three men killed, not two.", "victims": {"killed": {"best": 3}}},
        headers={"If-Match": '"1"'},
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["version"] == 2
    assert response.json()["narrative"] == "Three men killed, not two."
    assert response.json()["victims"]["killed"]["best"] == 3
    stored = officer.get(f"{REPORTS}/{report['id']}")
    assert stored.headers["ETag"] == '"2"'
    assert stored.json()["narrative"] == "Three men killed, not two."


def test_update_with_version_in_the_body(api):
    officer = api.as_("officer_a")
    report = create(officer)

    response = officer.patch(
        f"{REPORTS}/{report['id']}", json={"version": 1, "place_name": "Kidjigra quarter"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["place_name"] == "Kidjigra quarter"
    assert response.json()["version"] == 2


def test_weak_etag_is_accepted(api):
    officer = api.as_("officer_a")
    report = create(officer)

    response = officer.patch(
        f"{REPORTS}/{report['id']}", json={"place_name": "Ippy"}, headers={"If-Match": 'W/"1"'}
    )

    assert response.status_code == 200, response.text


def test_stale_version_is_412_and_changes_nothing(api):
    officer = api.as_("officer_a")
    report = create(officer)
    officer.patch(f"{REPORTS}/{report['id']}", json={"version": 1, "place_name": "First edit"})

    stale = officer.patch(
        f"{REPORTS}/{report['id']}",
        json={"place_name": "Lost update"},
        headers={"If-Match": '"1"'},
    )

    assert stale.status_code == 412
    assert stale.json()["code"] == "stale_version"
    stored = officer.get(f"{REPORTS}/{report['id']}").json()
    assert stored["place_name"] == "First edit"
    assert stored["version"] == 2


def test_update_without_a_version_is_428_and_changes_nothing(api):
    officer = api.as_("officer_a")
    report = create(officer)

    response = officer.patch(f"{REPORTS}/{report['id']}", json={"place_name": "No version"})

    assert response.status_code == 428
    assert response.json()["code"] == "version_required"
    stored = officer.get(f"{REPORTS}/{report['id']}").json()
    assert stored["place_name"] is None
    assert stored["version"] == 1


def test_if_match_and_body_version_must_agree(api):
    officer = api.as_("officer_a")
    report = create(officer)

    response = officer.patch(
        f"{REPORTS}/{report['id']}",
        json={"version": 2, "place_name": "Conflicting"},
        headers={"If-Match": '"1"'},
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "version"
    assert officer.get(f"{REPORTS}/{report['id']}").json()["version"] == 1


def test_changing_the_location_reroutes_the_report(api):
    officer = api.as_("officer_a")
    report = create(officer, point=POINT_A1_1)

    response = officer.patch(
        f"{REPORTS}/{report['id']}",
        json={"version": 1, "location": {"type": "Point", "coordinates": list(POINT_A1_2)}},
    )

    assert response.status_code == 200, response.text
    assert response.json()["aor_unit_id"] == api.mission.unit_id("coy-a1-2")
    incident = api.as_("officer_a").get(f"{API}/incidents/{report['incident_id']}").json()
    assert incident["aor_unit_id"] == api.mission.unit_id("coy-a1-2")


def test_field_officer_may_not_edit_someone_elses_report(api):
    report = create(api.as_("analyst"))

    response = api.as_("officer_a").patch(
        f"{REPORTS}/{report['id']}", json={"version": 1, "narrative": "Edited by another"}
    )

    assert response.status_code == 403
    assert api.as_("analyst").get(f"{REPORTS}/{report['id']}").json()["version"] == 1


def test_author_may_not_edit_once_verification_has_started(api):
    officer = api.as_("officer_a")
    report = create(officer)
    assert verify(api.as_("analyst"), report["id"], "under_verification").status_code == 200

    response = officer.patch(f"{REPORTS}/{report['id']}", json={"version": 2, "narrative": "x"})

    assert response.status_code == 403
    assert (
        api.as_("analyst").get(f"{REPORTS}/{report['id']}").json()["narrative"]
        == (report["narrative"])
    )


# --------------------------------------------------------------------------- verification


def test_verification_walks_the_state_machine_and_records_each_step(api):
    report = create(api.as_("officer_a"))
    commander = api.as_("commander_a")
    analyst = api.as_("analyst")

    started = verify(commander, report["id"], "under_verification", note="Patrol sent")
    decided = verify(analyst, report["id"], "verified", note="Two sources agree")
    reopened = verify(analyst, report["id"], "under_verification", note="New witness")
    discredited = verify(api.as_("protection"), report["id"], "discredited", note="Staged")

    assert [r.status_code for r in (started, decided, reopened, discredited)] == [200] * 4
    assert started.json()["verification_state"] == "under_verification"
    assert decided.json()["verification_state"] == "verified"
    assert discredited.headers["ETag"] == '"5"'
    history = analyst.get(f"{REPORTS}/{report['id']}/verification")
    assert history.status_code == 200
    steps = [
        (h["from_state"], h["to_state"], h["actor_user_id"], h["note"]) for h in history.json()
    ]
    users = api.mission.users
    assert steps == [
        ("reported", "under_verification", users["commander_a"].id, "Patrol sent"),
        ("under_verification", "verified", users["analyst"].id, "Two sources agree"),
        ("verified", "under_verification", users["analyst"].id, "New witness"),
        ("under_verification", "discredited", users["protection"].id, "Staged"),
    ]
    stamps = [h["at"] for h in history.json()]
    assert stamps == sorted(stamps)
    stored = analyst.get(f"{REPORTS}/{report['id']}").json()
    assert stored["verification_state"] == "discredited"
    assert stored["version"] == 5


@pytest.mark.parametrize("role", ["officer_a", "admin"])
def test_field_officers_and_admins_may_not_verify(api, role):
    report = create(api.as_("officer_a"))

    response = verify(api.as_(role), report["id"], "under_verification")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert api.as_("analyst").get(f"{REPORTS}/{report['id']}/verification").json() == []


@pytest.mark.parametrize("role", ["officer_a", "admin", "commander_a"])
def test_only_analysts_and_protection_officers_decide(api, role):
    report = create(api.as_("officer_a"))
    verify(api.as_("analyst"), report["id"], "under_verification")

    response = verify(api.as_(role), report["id"], "verified")

    assert response.status_code == 403
    stored = api.as_("analyst").get(f"{REPORTS}/{report['id']}").json()
    assert stored["verification_state"] == "under_verification"


@pytest.mark.parametrize("role", ["analyst", "protection"])
def test_analysts_and_protection_officers_decide(api, role):
    report = create(api.as_("officer_a"))
    verify(api.as_("commander_a"), report["id"], "under_verification")

    response = verify(api.as_(role), report["id"], "verified")

    assert response.status_code == 200, response.text
    assert response.json()["verification_state"] == "verified"


def test_a_step_the_state_machine_does_not_allow_is_409(api):
    report = create(api.as_("officer_a"))

    response = verify(api.as_("analyst"), report["id"], "verified")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert "under_verification" in response.json()["message"]
    assert api.as_("analyst").get(f"{REPORTS}/{report['id']}/verification").json() == []


def test_reopening_a_decided_report_needs_a_note(api):
    report = create(api.as_("officer_a"))
    analyst = api.as_("analyst")
    verify(analyst, report["id"], "under_verification")
    verify(analyst, report["id"], "discredited")

    blank = verify(analyst, report["id"], "under_verification", note="   ")
    missing = verify(analyst, report["id"], "under_verification")

    for response in (blank, missing):
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "note"
    assert analyst.get(f"{REPORTS}/{report['id']}").json()["verification_state"] == "discredited"
    assert len(analyst.get(f"{REPORTS}/{report['id']}/verification").json()) == 2


def test_verification_with_a_stale_version_is_412(api):
    report = create(api.as_("officer_a"))
    analyst = api.as_("analyst")

    response = analyst.post(
        f"{REPORTS}/{report['id']}/verification",
        json={"to_state": "under_verification", "version": 7},
    )

    assert response.status_code == 412
    assert analyst.get(f"{REPORTS}/{report['id']}").json()["verification_state"] == "reported"


def test_commander_cannot_verify_outside_their_area(api):
    report = create(api.as_("officer_a"), point=POINT_A1_1)

    response = verify(api.as_("commander_b"), report["id"], "under_verification")

    assert response.status_code == 404
