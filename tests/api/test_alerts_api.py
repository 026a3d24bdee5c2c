"""The alerts API as the app serves it: the inbox for my unit and chain, acknowledge, resolve,
silences, rules, channels, CAP 1.2 and the feed, KPIs — and a precise 4xx for every bad input
(a rule that does not parse, a matcher on an unknown label, a silence without an end,
acknowledging another unit's alert), with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import cap
from tests.api._builders import API, iso, report_body
from tests.seed import POINT_A1_1, POINT_B1

pytestmark = pytest.mark.integration

ALERTS = f"{API}/alerts"


def raise_attack(api: Any, point: tuple[float, float] = POINT_A1_1) -> dict[str, Any]:
    """A field report of an attack on a protected site; the in-process jobs raise its alert."""
    officer = "officer_a" if point[0] < 20.5 else "officer_b"
    created = api.as_(officer).post(
        f"{API}/reports", json=report_body(category="attack_on_protected_site", point=point)
    )
    assert created.status_code == 201, created.text
    items = api.as_("admin").get(f"{ALERTS}?state=open&severity=red").json()["items"]
    assert items, "the report raised no alert"
    return items[0]


def test_a_field_report_raises_an_alert_in_the_units_inbox(api) -> None:
    alert = raise_attack(api)
    assert alert["responsible_unit"] == "coy-a1-1"
    assert alert["chain"] == ["coy-a1-1", "bn-a1", "sector-a", "force-hq", "mission-hq"]
    mine = api.as_("commander_a").get(ALERTS).json()["items"]
    assert [a["id"] for a in mine] == [alert["id"]]
    # Sector B's commander sees nothing of sector A's ground.
    assert api.as_("commander_b").get(ALERTS).json()["items"] == []
    assert api.as_("commander_b").get(f"{ALERTS}/{alert['id']}").status_code == 404
    detail = api.as_("commander_a").get(f"{ALERTS}/{alert['id']}").json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[:2] == ["created", "delivered"]


def test_acknowledge_with_a_note_and_resolve(api) -> None:
    alert = raise_attack(api)
    url = f"{ALERTS}/{alert['id']}"
    acked = api.as_("commander_a").post(f"{url}/acknowledgement", json={"note": "QRF moving"})
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["state"] == "acknowledged" and body["ack_note"] == "QRF moving"
    assert body["escalate_at"] is None
    again = api.as_("commander_a").post(f"{url}/acknowledgement", json={})
    assert again.status_code == 409 and "already acknowledged" in again.json()["message"]
    resolved = api.as_("commander_a").post(f"{url}/resolution", json={"reason": "secured"})
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"


def test_acknowledging_another_units_alert_is_refused(api) -> None:
    alert = raise_attack(api)
    url = f"{ALERTS}/{alert['id']}/acknowledgement"
    other = api.as_("commander_b").post(url, json={})
    assert other.status_code == 404
    assert "not for your unit" in other.json()["message"]
    field_officer = api.as_("officer_a").post(url, json={})
    assert field_officer.status_code == 403
    assert api.as_("admin").get(f"{ALERTS}/{alert['id']}").json()["state"] == "open"


def test_the_cap_document_parses_back(api) -> None:
    alert = raise_attack(api)
    response = api.as_("commander_a").get(f"{ALERTS}/{alert['id']}.cap")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/cap+xml")
    message = cap.parse(response.content)
    assert message.identifier == alert["cap_identifier"]
    assert message.scope == "Restricted" and message.restriction
    (info,) = message.infos
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Extreme", "Observed")
    (area,) = info.areas
    assert area.geocodes == (("h3", alert["cell"]),)
    assert area.polygons[0][0] == area.polygons[0][-1]
    assert api.as_("commander_b").get(f"{ALERTS}/{alert['id']}.cap").status_code == 404


def test_a_sensitive_alert_carries_category_cell_and_count_only_even_in_cap(api) -> None:
    canary = "CANARY-survivor-name-and-story"
    created = api.as_("officer_a").post(
        f"{API}/reports", json=report_body(category="rape", narrative=canary)
    )
    assert created.status_code == 201
    (alert,) = api.as_("protection").get(f"{ALERTS}?severity=amber").json()["items"]
    assert alert["sensitive"] and alert["category"] == "rape"
    for user in ("protection", "commander_a", "officer_a"):
        for path in (f"{ALERTS}/{alert['id']}", f"{ALERTS}/{alert['id']}.cap", f"{ALERTS}/feed"):
            body = api.as_(user).get(path).content
            assert canary.encode() not in body, (user, path)
    # The day, not the hour; the coarse cell, not the point.
    seen = datetime.fromisoformat(alert["first_seen_at"])
    assert (seen.hour, seen.minute, seen.second) == (0, 0, 0)
    assert alert["cell"].startswith("86")  # resolution 6


def test_the_feed_lists_open_alerts_as_cap_links(api) -> None:
    alert = raise_attack(api)
    feed = api.as_("commander_a").get(f"{ALERTS}/feed")
    assert feed.status_code == 200 and "atom" in feed.headers["content-type"]
    assert f"/api/v1/alerts/{alert['id']}.cap".encode() in feed.content
    assert f"{alert['id']}.cap".encode() not in api.as_("commander_b").get(f"{ALERTS}/feed").content


def test_kpis(api) -> None:
    alert = raise_attack(api)
    api.as_("commander_a").post(f"{ALERTS}/{alert['id']}/acknowledgement", json={})
    rows = api.as_("analyst").get(f"{ALERTS}/kpis").json()
    (row,) = [r for r in rows if r["unit"] == "coy-a1-1" and r["severity"] == "red"]
    assert row["acknowledged"] == 1 and row["ack_p50_s"] is not None
    assert api.as_("analyst").get(f"{ALERTS}/kpis?since=yesterday").status_code == 422


# ------------------------------------------------------------------------------- silences


def test_silence_crud(api) -> None:
    body = {
        "matchers": ['rule="flash-tension"', 'unit="coy-a1-1"'],
        "ends_at": iso(datetime.now(UTC) + timedelta(hours=2)),
        "comment": "community meeting, expected rhetoric",
    }
    created = api.as_("commander_a").post(f"{ALERTS}/silences", json=body)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["active"] and silence["created_by"] == "commander-a"
    listed = api.as_("commander_a").get(f"{ALERTS}/silences").json()
    assert [s["id"] for s in listed] == [silence["id"]]
    ended = api.as_("commander_a").delete(f"{ALERTS}/silences/{silence['id']}")
    assert ended.status_code == 200 and not ended.json()["active"]
    assert api.as_("commander_a").get(f"{ALERTS}/silences").json() == []


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"matchers": ['rule="x"'], "comment": "why"}, 422, "needs an end"),
        (
            {"matchers": ['colour="red"'], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"},
            422,
            "unknown label 'colour'",
        ),
        (
            {"matchers": ["rule"], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"},
            422,
            "not a matcher",
        ),
        (
            {"matchers": ['rule=~"("'], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"},
            422,
            "regex",
        ),
        ({"matchers": [], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"}, 422, "matchers"),
        (
            {"matchers": ['rule="x"'], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"},
            422,
            "at most 14 days",
        ),
        (
            {"matchers": ['rule="x"'], "ends_at": "2020-01-01T00:00:00Z", "comment": "c"},
            422,
            "in the past",
        ),
        (
            {"matchers": ['rule="x"'], "ends_at": "2099-01-01T00:00:00", "comment": "c"},
            422,
            "ends_at",
        ),
    ],
    ids=[
        "no-end",
        "unknown-label",
        "not-a-matcher",
        "bad-regex",
        "no-matchers",
        "too-long",
        "already-over",
        "naive-time",
    ],
)
def test_bad_silences_are_refused(api, body, status, says) -> None:
    response = api.as_("commander_a").post(f"{ALERTS}/silences", json=body)
    assert response.status_code == status, response.text
    assert says in response.text
    assert api.as_("commander_a").get(f"{ALERTS}/silences?active=false").json() == []


def test_field_officers_may_not_silence(api) -> None:
    body = {
        "matchers": ['rule="x"'],
        "ends_at": iso(datetime.now(UTC) + timedelta(hours=1)),
        "comment": "c",
    }
    assert api.as_("officer_a").post(f"{ALERTS}/silences", json=body).status_code == 403


# ---------------------------------------------------------------------------------- rules


GOOD_RULE = {
    "id": "flash-looting-camp",
    "name": "Looting at a camp",
    "kind": "flash",
    "severity": "amber",
    "match": ['category="property_destruction_looting"', 'site_kind="idp_camp"'],
    "ack_within_min": 45,
}


def test_rule_crud(api) -> None:
    admin = api.as_("admin")
    created = admin.post(f"{ALERTS}/rules", json=GOOD_RULE)
    assert created.status_code == 201, created.text
    assert created.json()["definition"]["ack_within_min"] == 45
    assert admin.post(f"{ALERTS}/rules", json=GOOD_RULE).status_code == 409
    changed = admin.put(f"{ALERTS}/rules/{GOOD_RULE['id']}", json={**GOOD_RULE, "severity": "red"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert api.as_("commander_a").post(f"{ALERTS}/rules", json=GOOD_RULE).status_code == 403
    assert admin.delete(f"{ALERTS}/rules/{GOOD_RULE['id']}").status_code == 204
    assert admin.get(f"{ALERTS}/rules/{GOOD_RULE['id']}").status_code == 404
    ids = {r["id"] for r in admin.get(f"{ALERTS}/rules").json()}
    assert "flash-attack-on-protected-site" in ids


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "sometimes"}, "kind"),
        ({"severity": "purple"}, "severity"),
        ({"match": ['colour="red"']}, "match[0]"),
        ({"match": 'family="x"'}, "match"),
        ({"when": {"min_confidence": 50}}, "when.min_confidence"),
        ({"when": {"min_overdue_ratio": 2}}, "when.min_overdue_ratio"),
        ({"cap": {"urgency": "Soon"}}, "cap.urgency"),
        ({"ack_within_min": 0}, "ack_within_min"),
        ({"group_by": ["nowhere"]}, "group_by[0]"),
        ({"id": "Bad Id!"}, "id"),
        ({"surprise": True}, "surprise"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_rules_that_do_not_parse_are_refused(api, change, field) -> None:
    response = api.as_("admin").post(f"{ALERTS}/rules", json={**GOOD_RULE, **change})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert api.as_("admin").get(f"{ALERTS}/rules/{GOOD_RULE['id']}").status_code == 404


# ------------------------------------------------------------------------------- listing


@pytest.mark.parametrize(
    "query",
    ["state=sleeping", "severity=purple", "limit=0", "limit=100000", "cursor=%%%", "unit_id=x"],
)
def test_bad_list_queries_get_a_clear_422(api, query) -> None:
    response = api.as_("commander_a").get(f"{ALERTS}?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


def test_pages_follow_the_cursor(api) -> None:
    raise_attack(api, POINT_A1_1)
    raise_attack(api, POINT_B1)
    first = api.as_("admin").get(f"{ALERTS}?limit=1").json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.as_("admin").get(f"{ALERTS}?limit=1&cursor={first['next_cursor']}").json()
    assert second["items"][0]["id"] < first["items"][0]["id"]


def test_channels_are_for_admins_and_never_show_the_secret(api, mission) -> None:
    body = {
        "unit_id": mission.unit_id("bn-a1"),
        "kind": "webhook",
        "address": "https://ops.example/hook",
        "secret": "s3cret-signing-key-0123456789",
    }
    assert api.as_("commander_a").post(f"{ALERTS}/channels", json=body).status_code == 403
    created = api.as_("admin").post(f"{ALERTS}/channels", json=body)
    assert created.status_code == 201 and "secret" not in created.json()
    assert b"s3cret" not in api.as_("admin").get(f"{ALERTS}/channels").content
    bad = api.as_("admin").post(f"{ALERTS}/channels", json={**body, "address": "ftp://x"})
    assert bad.status_code == 422
