"""Incidents: one per report at first; merge, unmerge, merge suggestions; counting incidents
rather than reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api._builders import API, report_body
from tests.seed import POINT_A1_1, POINT_B1

REPORTS = f"{API}/reports"
INCIDENTS = f"{API}/incidents"
MERGE = f"{INCIDENTS}/merge"
SUGGESTIONS = f"{INCIDENTS}/merge-suggestions"

#: About 1.1 km east of POINT_A1_1; about 0.55 km east; about 1.1 km west.
NEAR_A1_1 = (POINT_A1_1[0] + 0.01, POINT_A1_1[1])
CLOSE_A1_1 = (POINT_A1_1[0] + 0.005, POINT_A1_1[1])
WEST_A1_1 = (POINT_A1_1[0] - 0.01, POINT_A1_1[1])


def create(client: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(REPORTS, json=report_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def active(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get(INCIDENTS, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def incident(client: Any, incident_id: str) -> dict[str, Any]:
    response = client.get(f"{INCIDENTS}/{incident_id}")
    assert response.status_code == 200, response.text
    return response.json()


def merge(client: Any, *incident_ids: str, **extra: Any) -> Any:
    return client.post(MERGE, json={"incident_ids": list(incident_ids), **extra})


def pairs(suggestions: list[dict[str, Any]]) -> list[frozenset[str]]:
    return [frozenset((s["incident_id"], s["candidate_id"])) for s in suggestions]


@pytest.fixture
def massacre(api: Any) -> list[dict[str, Any]]:
    """One massacre reported by three sources: a patrol, a hotline call, a human rights officer.

    The first one filed (the oldest incident) calls it an attack; the others a killing.
    """
    analyst = api.as_("analyst")
    return [
        create(
            analyst,
            category="attack_on_civilians",
            victims={"killed": {"best": 4}},
            hours_ago=3,
            point=POINT_A1_1,
        ),
        create(analyst, victims={"killed": {"best": 7}}, hours_ago=2.5, point=NEAR_A1_1),
        create(analyst, victims={"killed": {"best": 5}}, hours_ago=2, point=CLOSE_A1_1),
    ]


def test_every_report_starts_as_its_own_incident(api):
    report = create(api.as_("officer_a"), victims={"killed": {"best": 3}})

    found = incident(api.as_("officer_a"), report["incident_id"])

    assert found["status"] == "active"
    assert found["report_ids"] == [report["id"]]
    assert found["report_count"] == 1
    assert found["category"] == report["category"]
    assert found["killed_best"] == 3
    assert found["location"] == report["location"]
    assert found["aor_unit_id"] == report["aor_unit_id"]


def test_merging_three_reports_counts_one_incident(api, massacre):
    analyst = api.as_("analyst")
    unrelated = create(analyst, category="abduction", point=POINT_B1)
    family = "violence_against_civilians"
    before = active(analyst, family=family)
    assert len(before) == 3

    response = merge(analyst, *(r["incident_id"] for r in massacre), note="Same market attack")

    assert response.status_code == 200, response.text
    fused = response.json()
    after = active(analyst, family=family)
    assert len(after) == len(before) - 2
    assert [i["id"] for i in after] == [fused["id"]]
    assert fused["id"] == massacre[0]["incident_id"]  # the oldest incident is kept
    assert fused["report_count"] == 3
    assert sorted(fused["report_ids"]) == sorted(r["id"] for r in massacre)
    assert fused["killed_best"] == 7  # the largest estimate, not 4 + 7 + 5
    assert fused["category"] == "killing_of_civilians"  # the most severe
    assert fused["severity_weight"] == 10.0
    assert fused["occurred_at"] == massacre[0]["occurred_at"]  # the earliest
    # The other family is not touched, and every report now points at the one incident.
    assert [i["id"] for i in active(analyst, family="abduction")] == [unrelated["incident_id"]]
    for report in massacre:
        assert analyst.get(f"{REPORTS}/{report['id']}").json()["incident_id"] == fused["id"]


def test_merged_incidents_stay_readable_and_point_at_the_survivor(api, massacre):
    analyst = api.as_("analyst")
    target = merge(analyst, *(r["incident_id"] for r in massacre)).json()["id"]

    absorbed = incident(analyst, massacre[1]["incident_id"])
    listed = {i["id"] for i in active(analyst, include_merged="true")}

    assert absorbed["status"] == "merged"
    assert absorbed["merged_into_id"] == target
    assert absorbed["report_ids"] == []
    assert listed == {r["incident_id"] for r in massacre}
    # Out of scope stays out of scope, merged or not.
    assert api.as_("commander_b").get(f"{INCIDENTS}/{massacre[1]['incident_id']}").status_code == (
        404
    )
    assert active(api.as_("commander_b"), include_merged="true") == []


def test_merging_the_survivor_again_repoints_incidents_merged_into_it(api, massacre):
    analyst = api.as_("analyst")
    first, second, third = (r["incident_id"] for r in massacre)
    assert merge(analyst, second, third).json()["id"] == second

    again = merge(analyst, first, second)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first
    assert again.json()["report_count"] == 3
    assert incident(analyst, third)["merged_into_id"] == first
    assert incident(analyst, second)["merged_into_id"] == first


def test_merge_into_a_named_incident(api, massacre):
    analyst = api.as_("analyst")
    into = massacre[2]["incident_id"]

    response = merge(analyst, massacre[0]["incident_id"], massacre[1]["incident_id"], into=into)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == into
    assert response.json()["report_count"] == 3


def test_merging_an_incident_that_was_merged_already_is_422(api, massacre):
    analyst = api.as_("analyst")
    merge(analyst, massacre[0]["incident_id"], massacre[1]["incident_id"])

    response = merge(analyst, massacre[1]["incident_id"], massacre[2]["incident_id"])

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "incident_ids"
    assert incident(analyst, massacre[2]["incident_id"])["report_count"] == 1


def test_merging_an_unknown_incident_is_404_and_changes_nothing(api, massacre):
    analyst = api.as_("analyst")

    response = merge(analyst, massacre[0]["incident_id"], "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert len(active(analyst)) == 3


@pytest.mark.parametrize("role", ["officer_a", "commander_a", "admin"])
def test_only_analysts_and_protection_officers_merge(api, massacre, role):
    response = merge(api.as_(role), *(r["incident_id"] for r in massacre))

    assert response.status_code == 403
    assert len(active(api.as_("analyst"))) == 3


def test_unmerge_splits_a_report_back_into_its_own_incident(api, massacre):
    analyst = api.as_("analyst")
    fused = merge(analyst, *(r["incident_id"] for r in massacre)).json()
    split = massacre[1]  # the report with the largest estimate

    response = analyst.post(
        f"{INCIDENTS}/{fused['id']}/unmerge",
        json={"report_ids": [split["id"]], "note": "Different village"},
    )

    assert response.status_code == 200, response.text
    remaining = response.json()["incident"]
    (new,) = response.json()["new_incidents"]
    assert remaining["id"] == fused["id"]
    assert remaining["report_count"] == 2
    assert split["id"] not in remaining["report_ids"]
    assert remaining["killed_best"] == 5  # re-derived without the split report
    assert new["report_ids"] == [split["id"]]
    assert new["killed_best"] == 7
    assert new["status"] == "active"
    assert len(active(analyst, family="violence_against_civilians")) == 2
    assert analyst.get(f"{REPORTS}/{split['id']}").json()["incident_id"] == new["id"]


def test_unmerge_cannot_empty_an_incident_or_take_foreign_reports(api, massacre):
    analyst = api.as_("analyst")
    fused = merge(analyst, massacre[0]["incident_id"], massacre[1]["incident_id"]).json()
    url = f"{INCIDENTS}/{fused['id']}/unmerge"

    everything = analyst.post(url, json={"report_ids": [massacre[0]["id"], massacre[1]["id"]]})
    foreign = analyst.post(url, json={"report_ids": [massacre[2]["id"]]})

    for response in (everything, foreign):
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "report_ids"
    assert incident(analyst, fused["id"])["report_count"] == 2


def test_unmerge_needs_the_merge_permission(api, massacre):
    fused = merge(api.as_("analyst"), massacre[0]["incident_id"], massacre[1]["incident_id"])

    response = api.as_("officer_a").post(
        f"{INCIDENTS}/{fused.json()['id']}/unmerge", json={"report_ids": [massacre[1]["id"]]}
    )

    assert response.status_code == 403
    assert incident(api.as_("analyst"), fused.json()["id"])["report_count"] == 2


# --------------------------------------------------------------------------- suggestions


@pytest.fixture
def candidates(api: Any) -> dict[str, str]:
    """Incident ids: a killing, and around it reports that are or are not the same event."""
    analyst = api.as_("analyst")

    def incident_of(**overrides: Any) -> str:
        return create(analyst, **overrides)["incident_id"]

    return {
        "killing": incident_of(hours_ago=10, point=POINT_A1_1),
        # Same category, 0.55 km and 30 minutes away: the best match.
        "same_category_close": incident_of(hours_ago=9.5, point=CLOSE_A1_1),
        # Same family (attack on civilians), 1.1 km and two hours away (1.65 km from the
        # close one).
        "same_family": incident_of(category="attack_on_civilians", hours_ago=8, point=WEST_A1_1),
        # Same place and time, different family.
        "other_family": incident_of(category="abduction", hours_ago=10, point=POINT_A1_1),
        # Same family, same place, five days earlier.
        "days_apart": incident_of(hours_ago=10 + 24 * 5, point=POINT_A1_1),
        # Same family and time, 70 km away in sector B.
        "far_away": incident_of(hours_ago=10, point=POINT_B1),
    }


def test_suggestions_pair_same_family_close_in_space_and_time_best_first(api, candidates):
    response = api.as_("analyst").get(SUGGESTIONS)

    assert response.status_code == 200, response.text
    found = response.json()
    c = candidates
    assert pairs(found) == [
        frozenset((c["killing"], c["same_category_close"])),
        frozenset((c["killing"], c["same_family"])),
        frozenset((c["same_category_close"], c["same_family"])),
    ]
    scores = [s["score"] for s in found]
    assert scores == sorted(scores, reverse=True)
    best = found[0]
    assert best["same_category"] is True
    assert 0.5 < best["distance_km"] < 0.6
    assert best["hours_apart"] == 0.5
    assert found[1]["same_category"] is False
    assert 1.0 < found[1]["distance_km"] < 1.2
    assert found[1]["hours_apart"] == 2.0


def test_suggestions_for_one_incident_name_it_first(api, candidates):
    killing = candidates["killing"]

    response = api.as_("analyst").get(f"{INCIDENTS}/{killing}/merge-suggestions")

    assert response.status_code == 200, response.text
    found = response.json()
    assert [s["incident_id"] for s in found] == [killing, killing]
    assert [s["candidate_id"] for s in found] == [
        candidates["same_category_close"],
        candidates["same_family"],
    ]


def test_suggestion_distance_and_time_are_configurable_per_request(api, candidates):
    analyst = api.as_("analyst")
    c = candidates

    tight_space = analyst.get(SUGGESTIONS, params={"max_km": 0.8}).json()
    tight_time = analyst.get(SUGGESTIONS, params={"max_hours": 1}).json()
    wide = analyst.get(SUGGESTIONS, params={"max_km": 100, "max_hours": 24 * 6}).json()

    assert pairs(tight_space) == [frozenset((c["killing"], c["same_category_close"]))]
    assert pairs(tight_time) == [frozenset((c["killing"], c["same_category_close"]))]
    assert frozenset((c["killing"], c["days_apart"])) in pairs(wide)
    assert frozenset((c["killing"], c["far_away"])) in pairs(wide)
    assert all(c["other_family"] not in p for p in pairs(wide))


@pytest.fixture
def tight_api(api: Any, settings: Any, engine: Any, session_factory: Any) -> Iterator[Any]:
    """The API of a mission configured to suggest merges within 0.8 km and 1 hour only."""
    from server.app import create_app
    from server.worker.queue import InProcessQueue

    mission = settings.mission.model_copy(update={"merge_max_km": 0.8, "merge_max_hours": 1.0})
    tight = settings.model_copy(update={"mission": mission})
    app = create_app(tight, session_factory=session_factory, engine=engine, queue=InProcessQueue())
    with TestClient(app, raise_server_exceptions=False) as http:
        yield type(api)(http=http, tokens=app.state.tokens, mission=api.mission)


def test_suggestion_defaults_come_from_the_mission_settings(api, candidates, tight_api):
    found = tight_api.as_("analyst").get(SUGGESTIONS).json()

    c = candidates
    assert pairs(found) == [frozenset((c["killing"], c["same_category_close"]))]


def test_merged_incidents_are_no_longer_suggested(api, candidates):
    analyst = api.as_("analyst")
    c = candidates
    merge(analyst, c["killing"], c["same_category_close"])

    found = analyst.get(SUGGESTIONS).json()

    assert pairs(found) == [frozenset((c["killing"], c["same_family"]))]


def test_suggestions_need_the_merge_permission(api, candidates):
    response = api.as_("officer_a").get(SUGGESTIONS)
    one = api.as_("commander_a").get(f"{INCIDENTS}/{candidates['killing']}/merge-suggestions")

    assert response.status_code == 403
    assert one.status_code == 403


def test_unknown_incident_is_404(api):
    missing = "00000000-0000-4000-8000-000000000000"

    assert api.as_("analyst").get(f"{INCIDENTS}/{missing}").status_code == 404
    assert api.as_("analyst").get(f"{INCIDENTS}/{missing}/merge-suggestions").status_code == 404
