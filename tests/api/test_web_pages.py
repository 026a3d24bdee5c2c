"""The browser pages through the app: sign-in and the session cookie (idle and absolute expiry,
CSRF), the JOC page's alerts with their acknowledge buttons, the threat map's alert layer, the
offline assets, and a clear 4xx for bad page parameters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api._builders import API, report_body
from tests.seed import PASSWORD, POINT_A1_1, POINT_B1

pytestmark = pytest.mark.integration

COOKIE = "vigil_session"


def sign_in(api: Any, username: str, next_path: str = "/joc") -> Any:
    api.http.cookies.clear()
    response = api.http.post(
        "/login",
        data={"username": username.replace("_", "-"), "password": PASSWORD, "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == next_path
    return api.http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def raise_attack(api: Any, point: tuple[float, float] = POINT_A1_1) -> int:
    officer = "officer_a" if point[0] < 20.5 else "officer_b"
    created = api.as_(officer).post(
        f"{API}/reports", json=report_body(category="attack_on_protected_site", point=point)
    )
    assert created.status_code == 201, created.text
    items = api.as_("admin").get(f"{API}/alerts?state=open&severity=red").json()["items"]
    return int(next(a["id"] for a in items if a["responsible_unit"] in ("coy-a1-1", "bn-b1")))


def alert_state(api: Any, alert_id: int) -> str:
    return str(api.as_("admin").get(f"{API}/alerts/{alert_id}").json()["state"])


# ------------------------------------------------------------------------------- sign-in


def test_pages_need_a_session(api) -> None:
    api.http.cookies.clear()
    for path in ("/joc", "/maps/threat"):
        response = api.http.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_a_wrong_password_gets_the_form_again(api) -> None:
    response = api.http.post(
        "/login", data={"username": "commander-a", "password": "nope"}, follow_redirects=False
    )
    assert response.status_code == 401 and "<form" in response.text
    assert COOKIE not in response.cookies


def test_an_expired_session_is_sent_to_sign_in(api, app, mission) -> None:
    user = mission.users["commander_a"]
    long_ago = datetime.now(UTC) - timedelta(hours=13)
    stale = app.state.sessions.issue(
        user_id=user.id, token_version=user.token_version, started_at=long_ago, now=long_ago
    )
    idle = datetime.now(UTC) - timedelta(minutes=31)
    dozed = app.state.sessions.issue(
        user_id=user.id, token_version=user.token_version, started_at=idle, now=idle
    )
    for cookie in (stale, dozed, "not-a-token"):
        api.http.cookies.clear()
        api.http.cookies.set(COOKIE, cookie)
        response = api.http.get("/joc", follow_redirects=False)
        assert response.status_code == 303, cookie


def test_sign_out_needs_the_csrf_token(api) -> None:
    http = sign_in(api, "commander_a")
    refused = http.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    token = csrf_of(http.get("/joc").text)
    done = http.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"


# ------------------------------------------------------------------------------ the JOC page


def test_the_joc_page_lists_open_alerts_with_an_acknowledge_button(api) -> None:
    alert_id = raise_attack(api)
    http = sign_in(api, "commander_a")
    html = http.get("/joc").text
    assert f'data-alert-id="{alert_id}"' in html
    assert f'action="/joc/alerts/{alert_id}/acknowledge"' in html
    assert "Coverage:" in html and "Time to acknowledge" in html


def test_acknowledging_from_the_joc_page(api) -> None:
    alert_id = raise_attack(api)
    http = sign_in(api, "commander_a")
    token = csrf_of(http.get("/joc").text)
    response = http.post(
        f"/joc/alerts/{alert_id}/acknowledge",
        data={"csrf": token, "note": "QRF from COB"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert alert_state(api, alert_id) == "acknowledged"
    page = http.get(response.headers["location"]).text
    assert f"Alert {alert_id} acknowledged" in page and "QRF from COB" in page
    assert f'action="/joc/alerts/{alert_id}/acknowledge"' not in page


def test_a_forged_acknowledgement_changes_nothing(api) -> None:
    alert_id = raise_attack(api)
    http = sign_in(api, "commander_a")
    response = http.post(
        f"/joc/alerts/{alert_id}/acknowledge", data={"csrf": "forged"}, follow_redirects=False
    )
    assert "notice=expired" in response.headers["location"]
    assert alert_state(api, alert_id) == "open"


def test_another_units_alert_cannot_be_acknowledged_from_the_page(api) -> None:
    theirs = raise_attack(api, POINT_B1)
    http = sign_in(api, "commander_a")
    html = http.get("/joc").text
    assert f'data-alert-id="{theirs}"' not in html
    response = http.post(
        f"/joc/alerts/{theirs}/acknowledge", data={"csrf": csrf_of(html)}, follow_redirects=False
    )
    assert "notice=gone" in response.headers["location"]
    assert "is not for your units" in http.get(response.headers["location"]).text
    assert alert_state(api, theirs) == "open"


def test_field_officers_see_alerts_without_a_button(api) -> None:
    alert_id = raise_attack(api)
    http = sign_in(api, "officer_a")
    html = http.get("/joc").text
    assert f'data-alert-id="{alert_id}"' in html
    assert f'action="/joc/alerts/{alert_id}/acknowledge"' not in html
    response = http.post(
        f"/joc/alerts/{alert_id}/acknowledge",
        data={"csrf": csrf_of(html)},
        follow_redirects=False,
    )
    assert "notice=denied" in response.headers["location"]
    assert alert_state(api, alert_id) == "open"


def test_the_notice_text_cannot_be_chosen_by_a_link(api) -> None:
    http = sign_in(api, "commander_a")
    html = http.get("/joc?notice=<script>alert(1)</script>&alert=1").text
    assert "<script>alert(1)" not in html
    assert http.get("/joc?alert=zero").status_code == 422


# ---------------------------------------------------------------------------- the threat map


def test_the_threat_map_carries_the_open_alerts(api) -> None:
    alert_id = raise_attack(api)
    http = sign_in(api, "commander_a", "/maps/threat")
    html = http.get("/maps/threat").text
    cell = api.as_("admin").get(f"{API}/alerts/{alert_id}").json()["cell"]
    assert "Open alerts" in html and cell in html


@pytest.mark.parametrize(
    "query",
    ["window_hours=0", "window_hours=abc", "hotspot_days=-1", "family=nonsense", "unit=x"],
)
def test_bad_map_parameters_get_a_clear_4xx(api, query) -> None:
    http = sign_in(api, "commander_a", "/maps/threat")
    response = http.get(f"/maps/threat?{query}")
    assert 400 <= response.status_code < 500, (query, response.status_code)
    assert "Traceback" not in response.text


def test_assets_are_served_locally_and_unknown_ones_are_404(api) -> None:
    http = sign_in(api, "commander_a", "/maps/threat")
    html = http.get("/maps/threat").text
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    for src in scripts:
        assert http.get(src).status_code == 200, src
    assert http.get("/static/vendor/leaflet/../../../etc/passwd").status_code == 404
    assert http.get("/static/vigil/nothing.js").status_code == 404
    assert http.get("/maps/tiles/1/0/0").status_code == 404  # no basemap configured
