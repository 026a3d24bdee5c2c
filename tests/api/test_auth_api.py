"""Signing in: OAuth2 password flow, bearer tokens, soft lockout, no username oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.auth.tokens import TokenService
from tests.api._builders import API
from tests.seed import PASSWORD

TOKEN = f"{API}/auth/token"
ME = f"{API}/auth/me"


def sign_in(api: Any, username: str, password: str) -> Any:
    return api.http.post(TOKEN, data={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def test_password_flow_issues_a_bearer_token_that_identifies_the_user(api, settings):
    response = sign_in(api, "officer-a", PASSWORD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= settings.auth.access_token_minutes * 60
    me = api.http.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "officer-a"
    assert me.json()["role"] == "field_officer"
    assert me.json()["unit_id"] == api.mission.unit_id("bn-a1")


def test_username_is_matched_case_insensitively(api):
    response = sign_in(api, "  Officer-A ", PASSWORD)

    assert response.status_code == 200, response.text


def test_request_without_token_is_401_with_bearer_challenge(api):
    response = api.http.get(ME)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert set(body) == {"code", "message", "errors", "request_id"}
    assert body["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", ""],
    ids=["garbage", "three-dots", "empty"],
)
def test_malformed_token_is_401(api, token):
    response = api.http.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_expired_token_is_401(api):
    user = api.mission.users["officer_a"]
    old = api.tokens.issue(
        user_id=user.id,
        token_version=user.token_version,
        now=datetime.now(UTC) - timedelta(hours=2),
    )

    response = api.http.get(ME, headers=bearer(old.token))

    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_token_signed_with_another_key_is_401(api):
    user = api.mission.users["admin"]
    forged = TokenService("another-secret-key-of-sufficient-length-000", timedelta(minutes=5))
    token = forged.issue(user_id=user.id, token_version=user.token_version)

    response = api.http.get(ME, headers=bearer(token.token))

    assert response.status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(api):
    unknown = sign_in(api, "nobody-here", PASSWORD)
    wrong = sign_in(api, "officer-a", "not the right password")

    assert unknown.status_code == wrong.status_code == 401
    assert without_request_id(unknown.json()) == without_request_id(wrong.json())
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")
    assert unknown.json()["message"] == "Incorrect username or password."


def test_missing_form_fields_are_422_naming_the_field(api):
    response = api.http.post(TOKEN, data={"username": "officer-a"})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["password"]


def test_repeated_failures_lock_the_account_even_for_the_right_password(api, settings):
    attempts = settings.auth.max_failed_logins
    window_s = settings.auth.lockout_window_minutes * 60

    for _ in range(attempts):
        failed = sign_in(api, "officer-b", "wrong password, again")
        assert failed.status_code == 401

    locked = sign_in(api, "officer-b", PASSWORD)

    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "too_many_attempts"
    assert "access_token" not in locked.json()
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= window_s + 1
    # Still locked on the next try; and the lock is per account, not per client.
    assert sign_in(api, "officer-b", PASSWORD).status_code == 429
    assert sign_in(api, "officer-a", PASSWORD).status_code == 200


def test_failures_below_the_threshold_do_not_lock(api, settings):
    for _ in range(settings.auth.max_failed_logins - 1):
        assert sign_in(api, "commander-b", "wrong password, again").status_code == 401

    response = sign_in(api, "commander-b", PASSWORD)

    assert response.status_code == 200, response.text


def test_a_successful_sign_in_resets_the_failure_count(api, settings):
    for _ in range(settings.auth.max_failed_logins - 1):
        assert sign_in(api, "commander-a", "wrong password, again").status_code == 401
    assert sign_in(api, "commander-a", PASSWORD).status_code == 200

    for _ in range(settings.auth.max_failed_logins - 1):
        assert sign_in(api, "commander-a", "wrong password, again").status_code == 401

    assert sign_in(api, "commander-a", PASSWORD).status_code == 200


def test_lockout_does_not_reveal_which_usernames_exist(api, settings):
    """An unknown username locks after the same number of failures, with the same answer, so
    the 429 is no oracle for real accounts (SECURITY.md S3)."""
    attempts = settings.auth.max_failed_logins
    answers = {}
    for username in ("officer-b", "nobody-here"):
        for _ in range(attempts):
            assert sign_in(api, username, "wrong password, again").status_code == 401
        locked = sign_in(api, username, "wrong password, again")
        answers[username] = (locked.status_code, without_request_id(locked.json()))
    assert answers["officer-b"] == answers["nobody-here"]
    assert answers["officer-b"][0] == 429


def test_a_password_reset_lifts_the_lockout(api, settings):
    for _ in range(settings.auth.max_failed_logins):
        sign_in(api, "officer-b", "wrong password, again")
    user_id = api.mission.users["officer_b"].id
    admin = api.as_("admin")
    assert admin.get(f"{API}/users/{user_id}").json()["locked_until"] is not None
    reset = admin.patch(f"{API}/users/{user_id}", json={"password": "a brand new passphrase"})
    assert reset.status_code == 200, reset.text
    assert reset.json()["locked_until"] is None
    assert sign_in(api, "officer-b", "a brand new passphrase").status_code == 200


def test_the_throttle_stores_no_username_in_clear(api, session):
    from sqlalchemy import select

    from server.auth.models import LoginThrottle

    sign_in(api, "my-password-typed-in-the-wrong-box", "x")
    keys = list(session.scalars(select(LoginThrottle.username_key)))
    assert keys
    assert all("password" not in key and len(key) == 64 for key in keys)
