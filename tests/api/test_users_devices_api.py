"""Users and roles (admin only; token voiding on change) and field devices."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api._builders import API
from tests.seed import PASSWORD

USERS = f"{API}/users"
DEVICES = f"{API}/devices"
ME = f"{API}/auth/me"

NON_ADMINS = ["analyst", "protection", "commander_a", "officer_a"]


def new_user(api: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "username": "new-officer",
        "full_name": "New Officer",
        "role": "field_officer",
        "unit_id": api.mission.unit_id("coy-a1-1"),
        "password": "a long enough passphrase",
        **overrides,
    }


def usernames(api: Any) -> list[str]:
    response = api.as_("admin").get(USERS)
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()]


# --------------------------------------------------------------------------- users


def test_admin_lists_every_user(api):
    assert sorted(usernames(api)) == sorted(u.replace("_", "-") for u in api.mission.users)


def test_admin_creates_a_user_who_can_then_sign_in(api):
    response = api.as_("admin").post(USERS, json=new_user(api))

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["username"] == "new-officer"
    assert created["role"] == "field_officer"
    assert created["is_active"] is True
    assert "password" not in created and "password_hash" not in created
    token = api.http.post(
        f"{API}/auth/token",
        data={"username": "new-officer", "password": "a long enough passphrase"},
    )
    assert token.status_code == 200, token.text
    me = api.http.get(ME, headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert me.json()["id"] == created["id"]


def test_admin_reads_one_user(api):
    user_id = api.mission.users["officer_b"].id

    response = api.as_("admin").get(f"{USERS}/{user_id}")

    assert response.status_code == 200
    assert response.json()["username"] == "officer-b"


def test_unknown_user_is_404(api):
    assert api.as_("admin").get(f"{USERS}/999999").status_code == 404


@pytest.mark.parametrize("role", NON_ADMINS)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "", None),
        ("post", "", "new"),
        ("get", "/{officer_b}", None),
        ("patch", "/{officer_b}", {"role": "analyst"}),
    ],
    ids=["list", "create", "read", "update"],
)
def test_only_admins_manage_users(api, role, method, path, body):
    url = USERS + path.format(officer_b=api.mission.users["officer_b"].id)
    kwargs = {} if body is None else {"json": new_user(api) if body == "new" else body}

    response = getattr(api.as_(role), method)(url, **kwargs)

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"
    assert "new-officer" not in usernames(api)
    target = api.as_("admin").get(f"{USERS}/{api.mission.users['officer_b'].id}").json()
    assert target["role"] == "field_officer"


def test_deactivating_a_user_voids_their_token_at_the_next_request(api):
    officer = api.as_("officer_a")
    assert officer.get(ME).status_code == 200
    user_id = api.mission.users["officer_a"].id

    response = api.as_("admin").patch(f"{USERS}/{user_id}", json={"is_active": False})

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    voided = officer.get(ME)
    assert voided.status_code == 401
    assert voided.json()["code"] == "not_authenticated"
    # Signing in again is refused with the same answer as a wrong password.
    login = api.http.post(f"{API}/auth/token", data={"username": "officer-a", "password": PASSWORD})
    assert login.status_code == 401
    assert login.json()["message"] == "Incorrect username or password."


def test_changing_a_role_voids_the_token_and_a_new_one_carries_the_new_role(api):
    analyst = api.as_("analyst")
    assert analyst.get(ME).status_code == 200
    user_id = api.mission.users["analyst"].id

    response = api.as_("admin").patch(f"{USERS}/{user_id}", json={"role": "commander"})

    assert response.status_code == 200, response.text
    assert analyst.get(ME).status_code == 401
    login = api.http.post(f"{API}/auth/token", data={"username": "analyst", "password": PASSWORD})
    me = api.http.get(ME, headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["role"] == "commander"


def test_changing_only_the_name_keeps_the_token_valid(api):
    officer = api.as_("officer_b")
    user_id = api.mission.users["officer_b"].id

    response = api.as_("admin").patch(f"{USERS}/{user_id}", json={"full_name": "B. Officer"})

    assert response.status_code == 200
    assert officer.get(ME).status_code == 200
    assert officer.get(ME).json()["full_name"] == "B. Officer"


def test_admin_cannot_deactivate_themselves(api):
    user_id = api.mission.users["admin"].id

    response = api.as_("admin").patch(f"{USERS}/{user_id}", json={"is_active": False})

    assert response.status_code == 422
    assert api.as_("admin").get(ME).status_code == 200


def test_duplicate_username_is_422_and_creates_nothing(api):
    before = usernames(api)

    response = api.as_("admin").post(USERS, json=new_user(api, username="officer-a"))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "username"
    assert "already taken" in response.json()["errors"][0]["message"]
    assert usernames(api) == before


# --------------------------------------------------------------------------- devices


def register(client: Any, device_id: uuid.UUID | None = None, name: str = "Patrol phone") -> Any:
    body = {"id": str(device_id or uuid.uuid4()), "name": name, "platform": "android-14"}
    return client.post(DEVICES, json=body)


def test_registering_a_device_is_idempotent_on_its_id(api):
    officer = api.as_("officer_a")
    device_id = uuid.uuid4()

    first = register(officer, device_id)
    again = register(officer, device_id)

    assert first.status_code == 201, first.text
    assert first.json()["user_id"] == api.mission.users["officer_a"].id
    assert first.json()["revoked_at"] is None
    assert again.status_code == 200
    assert again.json() == first.json()
    assert [d["id"] for d in officer.get(DEVICES).json()] == [str(device_id)]


def test_users_list_their_own_devices_and_admins_list_all(api):
    mine = register(api.as_("officer_a")).json()["id"]
    theirs = register(api.as_("officer_b")).json()["id"]

    own = {d["id"] for d in api.as_("officer_a").get(DEVICES).json()}
    other = {d["id"] for d in api.as_("officer_b").get(DEVICES).json()}
    everything = {d["id"] for d in api.as_("admin").get(DEVICES).json()}

    assert own == {mine}
    assert other == {theirs}
    assert everything == {mine, theirs}


def test_another_users_device_is_invisible_and_cannot_be_revoked(api):
    device_id = register(api.as_("officer_a")).json()["id"]
    intruder = api.as_("officer_b")

    assert intruder.get(f"{DEVICES}/{device_id}").status_code == 404
    revoke = intruder.post(f"{DEVICES}/{device_id}/revoke", json={"reason": "not mine"})

    assert revoke.status_code == 404
    assert api.as_("officer_a").get(f"{DEVICES}/{device_id}").json()["revoked_at"] is None


def test_owner_revokes_their_device_and_it_cannot_be_registered_again(api):
    officer = api.as_("officer_a")
    device_id = uuid.UUID(register(officer).json()["id"])

    response = officer.post(f"{DEVICES}/{device_id}/revoke", json={"reason": "Lost near Ippy"})

    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    assert response.json()["revoke_reason"] == "Lost near Ippy"
    assert officer.get(f"{DEVICES}/{device_id}").json()["revoked_at"] is not None
    assert register(officer, device_id).status_code == 409


def test_admin_revokes_anyones_device(api):
    device_id = register(api.as_("officer_b")).json()["id"]

    response = api.as_("admin").post(
        f"{DEVICES}/{device_id}/revoke", json={"reason": "Seized at checkpoint"}
    )

    assert response.status_code == 200, response.text
    assert api.as_("officer_b").get(f"{DEVICES}/{device_id}").json()["revoked_at"] is not None


def test_a_device_id_registered_to_someone_else_is_409(api):
    device_id = uuid.UUID(register(api.as_("officer_a")).json()["id"])

    response = register(api.as_("officer_b"), device_id, name="Same id, other user")

    assert response.status_code == 409
    assert api.as_("officer_b").get(DEVICES).json() == []


def test_devices_need_a_signed_in_user(api):
    assert api.http.get(DEVICES).status_code == 401
