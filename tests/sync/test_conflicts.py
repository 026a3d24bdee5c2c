"""Offline edits that meet other actors' changes: the per-field policy of SYNC.md §4.6
(scenarios 6, 15–19) and HQ's view of it (/sync/v1/reports/{id}/history)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from tests.api._builders import API
from tests.sync.kit import SYNC, SyncDevice


def _created(device: SyncDevice, **overrides: Any) -> str:
    op = device.create(**overrides)
    (result,) = device.push(op)
    assert result["status"] == "applied", result
    return str(op["report_id"])


def _patch(api: Any, username: str, report_id: str, **fields: Any) -> dict[str, Any]:
    current = api.as_(username).get(f"{API}/reports/{report_id}").json()
    response = api.as_(username).patch(
        f"{API}/reports/{report_id}", json={"version": current["version"], **fields}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _history(api: Any, report_id: str) -> dict[str, Any]:
    response = api.as_("analyst").get(f"{SYNC}/reports/{report_id}/history")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_disjoint_offline_edits_are_parallel_same_field_is_conflict(api: Any) -> None:
    """Scenario 17 (ODK semantics): HQ edits at v2 while the device edits on base v1."""
    device = SyncDevice.for_user(api, "officer_a")
    parallel = _created(device, place_name="Kidjigra")
    _patch(api, "analyst", parallel, admin2="Bambari")
    (result,) = device.push(
        device.op(
            "set_fields", parallel, {"fields": {"place_name": "Kidjigra market"}}, base_version=1
        )
    )
    assert result["status"] == "applied"
    report = api.as_("analyst").get(f"{API}/reports/{parallel}").json()
    assert report["conflict_state"] == "parallel"
    assert (report["place_name"], report["admin2"]) == ("Kidjigra market", "Bambari")

    same = _created(device, place_name="Kidjigra")
    _patch(api, "analyst", same, place_name="Kidjigra (verified spelling)")
    (result,) = device.push(
        device.op("set_fields", same, {"fields": {"place_name": "Kidjigra market"}}, base_version=1)
    )
    assert result["status"] == "conflict_flagged"
    report = api.as_("analyst").get(f"{API}/reports/{same}").json()
    assert report["conflict_state"] == "conflict"
    assert report["place_name"] == "Kidjigra market"  # receipt order; HQ reviews the flag
    history = _history(api, same)
    assert history["conflict_state"] == "conflict"
    assert [r["changed_fields"] for r in history["revisions"]] == [["place_name"], ["place_name"]]
    assert [o["status"] for o in history["ops"]] == ["applied", "conflict_flagged"]


def test_an_edit_on_the_current_version_is_no_conflict(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    report_id = _created(device)
    _patch(api, "analyst", report_id, admin2="Bambari")
    (result,) = device.push(
        device.op("set_fields", report_id, {"fields": {"place_name": "Market"}}, base_version=2)
    )
    assert result["status"] == "applied"
    assert api.as_("analyst").get(f"{API}/reports/{report_id}").json()["conflict_state"] == "none"


def test_withdrawal_meets_hq_verification(api: Any) -> None:
    """Scenario 16: the author withdraws on base v1 while HQ moved the status on."""
    device = SyncDevice.for_user(api, "officer_a")
    analyst = api.as_("analyst")

    started = _created(device)
    assert (
        analyst.post(
            f"{API}/reports/{started}/verification", json={"to_state": "under_verification"}
        ).status_code
        == 200
    )
    (result,) = device.push(
        device.op("withdraw", started, {"note": "I was misinformed"}, base_version=1)
    )
    assert result["status"] == "conflict_flagged"  # still valid, but someone moved it since
    report = analyst.get(f"{API}/reports/{started}").json()
    assert report["verification_state"] == "withdrawn"
    steps = [(s["from_state"], s["to_state"]) for s in _history(api, started)["status_steps"]]
    assert steps == [("reported", "under_verification"), ("under_verification", "withdrawn")]

    decided = _created(device)
    for state in ("under_verification", "verified"):
        assert (
            analyst.post(
                f"{API}/reports/{decided}/verification", json={"to_state": state}
            ).status_code
            == 200
        )
    (result,) = device.push(device.op("withdraw", decided, {}, base_version=1))
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "invalid_transition"
    assert analyst.get(f"{API}/reports/{decided}").json()["verification_state"] == "verified"


def test_a_withdrawn_report_leaves_its_incident(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    report_id = _created(device)
    (result,) = device.push(device.op("withdraw", report_id, {}, base_version=1))
    assert result["status"] == "applied"
    report = api.as_("analyst").get(f"{API}/reports/{report_id}").json()
    incident = api.as_("analyst").get(f"{API}/incidents/{report['incident_id']}").json()
    assert incident["verification_state"] == "withdrawn"


def test_status_steps_keep_the_roles(api: Any) -> None:
    """A field officer cannot verify through sync any more than through REST."""
    device = SyncDevice.for_user(api, "officer_a")
    report_id = _created(device)
    (result,) = device.push(
        device.op(
            "transition_status", report_id, {"to_state": "under_verification"}, base_version=1
        )
    )
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "forbidden"
    analyst = SyncDevice.for_user(api, "analyst")
    (result,) = analyst.push(
        analyst.op(
            "transition_status", report_id, {"to_state": "under_verification"}, base_version=1
        )
    )
    assert result["status"] == "applied"
    (result,) = analyst.push(
        analyst.op("transition_status", report_id, {"to_state": "closed_forever"}, base_version=2)
    )
    assert result["status"] == "applied" and result["quarantined"]  # an unknown state


def test_notes_from_three_actors_all_arrive_without_conflict(api: Any) -> None:
    """Scenario 18: a grow-set; each note has its own id; order of arrival does not matter."""
    author = SyncDevice.for_user(api, "officer_a")
    report_id = _created(author)
    devices = [author, SyncDevice.for_user(api, "commander_a"), SyncDevice.for_user(api, "analyst")]
    note_ops = [
        d.op(
            "add_note",
            report_id,
            {"note_id": str(uuid.uuid4()), "text": f"note {i}"},
            base_version=1,
        )
        for i, d in enumerate(devices)
    ]
    for device, op in reversed(list(zip(devices, note_ops, strict=True))):
        (result,) = device.push(op)
        assert result["status"] == "applied"
        (again,) = device.push(op)
        assert again["status"] == "duplicate"
    history = _history(api, report_id)
    assert sorted(n["body"] for n in history["notes"]) == ["note 0", "note 1", "note 2"]
    assert history["conflict_state"] == "none"
    changes, _ = author.pull_all()
    (record,) = [c["record"] for c in changes if c["report_id"] == report_id]
    assert sorted(n["body"] for n in record["notes"]) == ["note 0", "note 1", "note 2"]


def _sealed(version: int, parent: int | None, text: bytes) -> dict[str, Any]:
    return {
        "payload_version": version,
        "parent_version": parent,
        "ciphertext_b64": base64.b64encode(text).decode(),
        "manifest": {"alg": "hpke-x25519-aes256gcm", "key_ids": ["gbv-2026-1"]},
    }


def test_two_seal_updates_of_one_parent_fork_and_both_are_kept(api: Any) -> None:
    """Scenario 19: the server cannot merge ciphertext; it keeps both and flags a conflict."""
    device = SyncDevice.for_user(api, "officer_a")
    report_id = _created(device, sealed=_sealed(1, None, b"\x01opaque-v1"))
    first, second = SyncDevice.for_user(api, "protection"), SyncDevice.for_user(api, "analyst")
    (a,) = first.push(
        first.op("seal_update", report_id, _sealed(2, 1, b"\x02fork-a"), base_version=1)
    )
    (b,) = second.push(
        second.op("seal_update", report_id, _sealed(3, 1, b"\x03fork-b"), base_version=1)
    )
    assert (a["status"], b["status"]) == ("applied", "conflict_flagged")
    history = _history(api, report_id)
    assert history["conflict_state"] == "conflict"
    assert [(s["payload_version"], s["parent_version"]) for s in history["sealed_blobs"]] == [
        (1, None),
        (2, 1),
        (3, 1),
    ]
    assert all("ciphertext" not in s for s in history["sealed_blobs"])


def test_a_removed_report_answers_gone_and_is_never_recreated(api: Any) -> None:
    """Scenario 6 (central#794): HQ's removal is final for the field."""
    device = SyncDevice.for_user(api, "officer_a")
    create = device.create()
    device.push(create)
    report_id = create["report_id"]
    removed = api.as_("analyst").post(
        f"{API}/reports/{report_id}/removal", json={"reason": "duplicate of an earlier report"}
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["deleted_reason"] == "duplicate of an earlier report"
    edit = device.op("set_fields", report_id, {"fields": {"place_name": "x"}}, base_version=1)
    (result,) = device.push(edit)
    assert result["status"] == "gone"
    other = SyncDevice.for_user(api, "officer_a")
    (result,) = other.push(other.op("create", report_id, create["payload"]))
    assert result["status"] == "gone"
    report = api.as_("analyst").get(f"{API}/reports/{report_id}").json()
    assert report["deleted_at"] is not None and report["version"] == 2
    incident = api.as_("analyst").get(f"{API}/incidents/{report['incident_id']}").json()
    assert incident["verification_state"] == "discredited"  # out of every count


def test_only_hq_may_remove_a_report(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    report_id = _created(device)
    for username in ("officer_a", "commander_a"):
        response = api.as_(username).post(
            f"{API}/reports/{report_id}/removal", json={"reason": "I changed my mind"}
        )
        assert response.status_code == 403, (username, response.text)
    assert (
        api.as_("analyst")
        .post(f"{API}/reports/{report_id}/removal", json={"reason": ""})
        .status_code
        == 422
    )
