"""GET /api/v1/hotspots: the threat picture, with need-to-know, suppression and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api._builders import API, report_body
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1

HOTSPOTS = f"{API}/hotspots"
REPORTS = f"{API}/reports"


def file_cluster(
    client: Any,
    point: tuple[float, float],
    n: int,
    *,
    spread: float = 0.0008,
    hours_ago: float = 20.0,
    **fields: Any,
) -> list[str]:
    """File ``n`` reports within a few hundred metres of ``point``."""
    ids = []
    for i in range(n):
        lon = point[0] + spread * (i % 3)
        lat = point[1] + spread * (i // 3)
        response = client.post(
            REPORTS, json=report_body(point=(lon, lat), hours_ago=hours_ago, **fields)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def features_by_cell(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f["properties"] for f in body["features"]}


def test_a_cluster_of_killings_is_a_hot_spot(api):
    analyst = api.as_("analyst")
    file_cluster(analyst, POINT_A1_1, 9, category="killing_of_civilians")

    response = analyst.get(HOTSPOTS, params={"resolution": 8, "window_days": 30})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection"
    meta = body["metadata"]
    assert meta["resolution"] == 8 and meta["window_days"] == 30
    assert meta["unit_id"] == api.mission.unit_id("mission-hq")  # the JOC's nearest AOR
    assert meta["incidents"] == 9 and meta["source"] == "computed"
    assert meta["audience"] == "general"
    hot = [p for p in features_by_cell(body).values() if p["confidence"] > 0]
    assert hot, "the cluster's cells should be hot"
    assert max(p["count"] for p in hot) >= 3
    assert sum(p["count"] for p in features_by_cell(body).values()) == 9
    first = body["features"][0]
    assert first["geometry"]["type"] == "Polygon"
    assert len(first["geometry"]["coordinates"][0]) == 7


def test_one_massacre_reported_three_times_counts_once(api):
    analyst = api.as_("analyst")
    ids = file_cluster(analyst, POINT_A1_2, 3, spread=0.0, category="killing_of_civilians")
    incidents = [analyst.get(f"{REPORTS}/{i}").json()["incident_id"] for i in ids]
    merged = analyst.post(f"{API}/incidents/merge", json={"incident_ids": incidents})
    assert merged.status_code == 200, merged.text

    body = analyst.get(HOTSPOTS, params={"resolution": 8}).json()

    assert body["metadata"]["incidents"] == 1


def test_sensitive_incidents_are_outside_the_general_picture(api):
    protection = api.as_("protection")
    file_cluster(
        protection,
        POINT_B1,
        6,
        category="sexual_violence",
        consent={"aggregate_reporting": True, "referral": False},
    )

    general = api.as_("analyst").get(HOTSPOTS, params={"resolution": 8}).json()
    full = protection.get(HOTSPOTS, params={"resolution": 8}).json()

    assert general["metadata"]["incidents"] == 0
    assert general["features"] == []
    assert full["metadata"]["audience"] == "full"
    assert full["metadata"]["incidents"] == 6


def test_a_sensitive_family_is_shown_only_coarse_and_suppressed(api):
    protection = api.as_("protection")
    file_cluster(
        protection,
        POINT_B1,
        6,
        category="sexual_violence",
        consent={"aggregate_reporting": True, "referral": False},
    )
    # Two more far away, and two without consent next to the six.
    file_cluster(
        protection,
        POINT_A1_1,
        2,
        category="sexual_violence",
        consent={"aggregate_reporting": True, "referral": False},
    )
    file_cluster(protection, POINT_B1, 2, category="sexual_violence")
    analyst = api.as_("analyst")

    fine = analyst.get(HOTSPOTS, params={"resolution": 7, "family": "sexual_violence"})
    coarse = analyst.get(HOTSPOTS, params={"resolution": 6, "family": "sexual_violence"})

    assert fine.status_code == 422
    assert fine.json()["errors"][0]["field"] == "query:resolution"
    assert coarse.status_code == 200, coarse.text
    counts = [p["count"] for p in features_by_cell(coarse.json()).values()]
    assert 6 in counts  # consented cluster shown; the two without consent are not in it
    assert not any(1 <= c <= 4 for c in counts), "a small sensitive count was shown"
    assert coarse.json()["metadata"]["suppressed_cells"] >= 1
    # Protection officers see the family at any resolution, unsuppressed.
    full = protection.get(HOTSPOTS, params={"resolution": 8, "family": "sexual_violence"})
    assert full.status_code == 200
    assert full.json()["metadata"]["incidents"] == 10


def test_discredited_reports_raise_no_threat(api):
    analyst = api.as_("analyst")
    ids = file_cluster(analyst, POINT_A1_1, 4, category="attack_on_civilians")
    for report_id in ids:
        for state in ("under_verification", "discredited"):
            moved = analyst.post(f"{REPORTS}/{report_id}/verification", json={"to_state": state})
            assert moved.status_code == 200, moved.text

    body = analyst.get(HOTSPOTS, params={"resolution": 8}).json()

    assert body["metadata"]["incidents"] == 0


def test_a_new_build_up_is_emerging_and_surging(api):
    analyst = api.as_("analyst")
    # Quiet for months, then incidents in the last three weeks only.
    for week in (0, 1, 2):
        file_cluster(
            analyst, POINT_A1_2, 5, hours_ago=24 * 7 * week + 30, category="attack_on_civilians"
        )

    body = analyst.get(HOTSPOTS, params={"resolution": 8, "window_days": 365}).json()

    meta = body["metadata"]
    assert (meta["bin_days"], meta["n_bins"]) == (7, 53)
    categories = {p["emerging"] for p in features_by_cell(body).values()}
    assert categories & {"new_hot", "consecutive_hot"}, categories
    assert any(p["surge_flag"] for p in features_by_cell(body).values())


def test_precursors_flag_a_cell_before_any_killing(api):
    analyst = api.as_("analyst")
    file_cluster(analyst, POINT_A1_1, 3, spread=0.0, category="hate_speech_incitement")
    file_cluster(analyst, POINT_A1_1, 2, spread=0.0, category="threats_intimidation")

    body = analyst.get(HOTSPOTS, params={"resolution": 8, "window_days": 30}).json()

    flagged = [p for p in features_by_cell(body).values() if p["precursor_flag"]]
    assert flagged and all(p["precursor_index"] >= 2.0 for p in flagged)


def test_a_unit_outside_scope_is_404_and_a_unit_in_scope_uses_its_aor(api):
    officer_b = api.as_("officer_b")
    assert officer_b.get(HOTSPOTS, params={"unit": api.mission.unit_id("bn-a1")}).status_code == 404
    own = officer_b.get(HOTSPOTS, params={"resolution": 8})
    assert own.status_code == 200, own.text
    assert own.json()["metadata"]["unit_id"] == api.mission.unit_id("bn-b1")


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"resolution": 4}, "query:resolution", "mission's resolutions"),
        ({"resolution": 12}, "query:resolution", "mission's resolutions"),
        ({"resolution": 8, "window_days": 0}, "query:window_days", "at least 1"),
        ({"resolution": 9, "window_days": 3650}, "query:window_days", "too long"),
        ({"resolution": 8, "family": "no_such_family"}, "query:family", "unknown family"),
        ({"resolution": 8, "category": "no_such_code"}, "query:category", "unknown"),
        ({"resolution": 8, "half_life_days": 0}, "query:half_life_days", "greater than 0"),
        ({"resolution": "fine"}, "query:resolution", "integer"),
    ],
    ids=[
        "resolution-not-the-missions",
        "resolution-out-of-range",
        "zero-window",
        "decades-at-res-9",
        "unknown-family",
        "unknown-category",
        "zero-half-life",
        "resolution-not-a-number",
    ],
)
def test_bad_queries_are_422_naming_the_field(api, params, field, fragment):
    response = api.as_("analyst").get(HOTSPOTS, params=params)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors and errors[0]["field"] == field
    assert fragment in response.json()["message"]


def test_an_aor_with_no_cells_is_422(api):
    admin = api.as_("admin")
    tiny = [[20.6, 5.6], [20.6005, 5.6], [20.6005, 5.6005], [20.6, 5.6005], [20.6, 5.6]]
    created = admin.post(
        f"{API}/units",
        json={
            "code": "post-tiny",
            "name": "Tiny observation post",
            "kind": "company",
            "component": "military",
            "parent_id": api.mission.unit_id("bn-b1"),
            "aor": {"type": "Polygon", "coordinates": [tiny]},
        },
    )
    assert created.status_code == 201, created.text

    response = api.as_("analyst").get(
        HOTSPOTS, params={"unit": created.json()["id"], "resolution": 5}
    )

    assert response.status_code == 422
    assert "no cells" in response.json()["message"]


def test_a_stored_snapshot_is_served_and_recomputed_when_dirty(api, session):
    from server.hotspots.models import HotspotDirty
    from server.worker import tasks

    analyst = api.as_("analyst")
    file_cluster(analyst, POINT_A1_1, 4, category="killing_of_civilians")
    assert session.query(HotspotDirty).count() > 0  # written with the reports
    tasks.recompute_dirty_hotspots()
    assert session.query(HotspotDirty).count() == 0

    stored = analyst.get(
        HOTSPOTS,
        params={"unit": api.mission.unit_id("coy-a1-1"), "resolution": 8, "window_days": 30},
    ).json()
    assert stored["metadata"]["source"] == "stored"
    assert stored["metadata"]["incidents"] == 4

    file_cluster(analyst, POINT_A1_1, 2, category="killing_of_civilians")
    tasks.recompute_dirty_hotspots()
    again = analyst.get(
        HOTSPOTS,
        params={"unit": api.mission.unit_id("coy-a1-1"), "resolution": 8, "window_days": 30},
    ).json()
    assert again["metadata"]["source"] == "stored"
    assert again["metadata"]["incidents"] == 6
