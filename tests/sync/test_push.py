"""POST /sync/v1/push: one result per op, idempotent, in per-device order (SYNC.md §4.2–4.3,
scenarios 1, 3–6, 13, 14), and every bad input answered precisely with nothing stored damaged."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.reports.models import Report
from server.sync.models import QuarantinedOp, SyncOp
from tests.api._builders import API, iso
from tests.sync.kit import SYNC, SyncDevice


@pytest.fixture
def device(api: Any) -> SyncDevice:
    return SyncDevice.for_user(api, "officer_a")


def _stored_ops(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(SyncOp)) or 0


def _report(api: Any, report_id: str, username: str = "analyst") -> dict[str, Any]:
    response = api.as_(username).get(f"{API}/reports/{report_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --------------------------------------------------------------------------- hello


def test_hello_gives_limits_epoch_and_a_clock_probe(device: SyncDevice) -> None:
    response = device.http.get(f"{SYNC}/hello", headers=device.headers())
    assert response.status_code == 200, response.text
    hello = response.json()
    assert hello["protocol_versions"] == [1]
    assert hello["max_batch_bytes"] > 0 and hello["max_chunk_bytes"] > 0
    assert hello["upload_expiry_s"] >= 30 * 86_400, "uploads must outlive the offline window"
    assert hello["tombstone_horizon_s"] >= 180 * 86_400
    assert uuid.UUID(hello["epoch"])
    assert response.headers["X-Sync-Protocol"] == "1"
    assert response.headers["Cache-Control"] == "no-store"
    received = int(response.headers["X-Server-Received-Ms"])
    sent = int(response.headers["X-Server-Time-Ms"])
    assert received <= sent
    assert abs(hello["server_time_ms"] - sent) < 60_000


def test_every_sync_request_must_say_what_the_device_clock_reads(device: SyncDevice) -> None:
    headers = device.headers()
    del headers["X-Boot-Id"]
    response = device.http.get(f"{SYNC}/hello", headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "header:X-Boot-Id"
    headers = {**device.headers(), "X-Device-Time-Ms": "yesterday"}
    response = device.http.get(f"{SYNC}/hello", headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "header:X-Device-Time-Ms"


def test_sync_needs_the_device_credential_not_a_user_token(api: Any, device: SyncDevice) -> None:
    headers = {**device.headers(), **api.headers("officer_a")}
    response = device.http.get(f"{SYNC}/hello", headers=headers)
    assert response.status_code == 401
    headers = {**device.headers(), "Authorization": "Bearer vgd.not-a-real-token"}
    assert device.http.get(f"{SYNC}/hello", headers=headers).status_code == 401


def test_a_revoked_device_is_told_to_wipe(api: Any, device: SyncDevice) -> None:
    revoked = api.as_("admin").post(
        f"{API}/devices/{device.device_id}/revoke", json={"reason": "phone lost at checkpoint"}
    )
    assert revoked.status_code == 200, revoked.text
    for response in (
        device.http.get(f"{SYNC}/hello", headers=device.headers()),
        device.push_body(device.batch([device.create()])),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == "device_revoked"


def test_an_old_client_may_still_push_but_must_update_to_pull(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    device.client_version = "0.9.1"
    hello = device.http.get(f"{SYNC}/hello", headers=device.headers())
    assert hello.status_code == 426
    assert "keeps every report" in hello.json()["message"]
    assert device.http.get(f"{SYNC}/pull", headers=device.headers()).status_code == 426
    (result,) = device.push(device.create())
    assert result["status"] == "applied"


# --------------------------------------------------------------------------- idempotency


def test_a_lost_response_is_answered_from_the_ledger(api: Any, device: SyncDevice) -> None:
    """Scenario 1: the same batch again gets ``duplicate`` with the original version."""
    op = device.create()
    batch = device.batch([op])
    first = device.push_body(batch)
    assert first.status_code == 200, first.text
    (applied,) = first.json()["results"]
    assert applied["status"] == "applied" and applied["version"] == 1
    assert applied["server_received_at"]
    again = device.push_body(batch)
    assert again.status_code == 200
    (duplicate,) = again.json()["results"]
    assert duplicate["status"] == "duplicate"
    assert duplicate["version"] == applied["version"]
    assert duplicate["server_received_at"] == applied["server_received_at"]
    assert _report(api, op["report_id"])["version"] == 1


def test_resending_an_op_in_a_new_batch_changes_nothing(
    api: Any, device: SyncDevice, session: Session
) -> None:
    """Scenario 5: a user tapping send again sends the same op, never a new one."""
    op = device.create()
    device.push(op)
    for _ in range(3):
        (result,) = device.push(op)
        assert result["status"] == "duplicate"
    count = session.scalar(
        select(func.count()).select_from(Report).where(Report.id == uuid.UUID(op["report_id"]))
    )
    assert count == 1
    assert _stored_ops(session) == 1


def test_an_op_id_reused_with_another_payload_is_rejected(api: Any, device: SyncDevice) -> None:
    """Scenario 3: a client bug; the original stays untouched."""
    op = device.create(narrative="The original account.")
    device.push(op)
    tampered = dict(op, payload={**op["payload"], "narrative": "Another account."})
    tampered["payload_sha256"] = device.op("create", op["report_id"], tampered["payload"])[
        "payload_sha256"
    ]
    (result,) = device.push(tampered)
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "idempotency_mismatch"
    assert _report(api, op["report_id"])["narrative"] == "The original account."


def test_a_batch_key_reused_for_another_body_is_422(device: SyncDevice) -> None:
    """Scenario 4 (draft-ietf-httpapi-idempotency-key-header: 422 on payload mismatch)."""
    batch_id = uuid.uuid4()
    first = device.push_body(device.batch([device.create()], batch_id=batch_id))
    assert first.status_code == 200
    second = device.push_body(device.batch([device.create()], batch_id=batch_id))
    assert second.status_code == 422
    assert second.json()["code"] == "idempotency_key_reused"


def test_a_seq_used_by_another_op_is_rejected(device: SyncDevice) -> None:
    device.push(device.create())
    (result,) = device.push(device.create() | {"device_seq": 1})
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "device_seq_reused"


def test_payload_hash_must_match_the_payload(device: SyncDevice) -> None:
    op = device.create()
    op["payload_sha256"] = device.op("create", op["report_id"], {"other": 1})["payload_sha256"]
    (result,) = device.push(op)
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "payload_hash_mismatch"


# --------------------------------------------------------------------------- ordering


def test_later_ops_wait_for_earlier_ones(api: Any, device: SyncDevice) -> None:
    """Scenarios 13 and 14: create + two edits offline, the edits arrive first."""
    create = device.create(place_name="Kidjigra")
    report_id = create["report_id"]
    edit1 = device.op(
        "set_fields", report_id, {"fields": {"place_name": "Kidjigra market"}}, base_version=1
    )
    edit2 = device.op(
        "set_fields", report_id, {"fields": {"place_name": "Kidjigra mosque"}}, base_version=2
    )
    early = device.push(edit1, edit2)
    assert [r["status"] for r in early] == ["deferred", "deferred"]
    assert {r["expected_device_seq"] for r in early} == {1}
    assert api.as_("analyst").get(f"{API}/reports/{report_id}").status_code == 404
    (created,) = device.push(create)
    assert created["status"] == "applied"
    later = device.push(edit2, edit1)  # any order within a batch: applied by device_seq
    assert sorted((r["device_seq"], r["status"]) for r in later) == [
        (2, "applied"),
        (3, "applied"),
    ]
    report = _report(api, report_id)
    assert report["place_name"] == "Kidjigra mosque"
    assert report["version"] == 3
    assert report["conflict_state"] == "none"


# --------------------------------------------------------------------------- bad input


def test_malformed_envelopes_get_400_and_store_nothing(
    device: SyncDevice, session: Session
) -> None:
    good = device.batch([device.create()])
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (b"{not json", {"Idempotency-Key": good["batch_id"]}, "body"),
        (json.dumps(good).encode(), {"Idempotency-Key": ""}, "header:Idempotency-Key"),
        (
            json.dumps(good).encode(),
            {"Idempotency-Key": str(uuid.uuid4())},
            "header:Idempotency-Key",
        ),
        (json.dumps({**good, "ops": []}).encode(), {"Idempotency-Key": good["batch_id"]}, "ops"),
        (
            json.dumps({**good, "device_id": str(uuid.uuid4())}).encode(),
            {"Idempotency-Key": good["batch_id"]},
            "device_id",
        ),
        (
            json.dumps({**good, "ops": [{"kind": "create"}]}).encode(),
            {"Idempotency-Key": good["batch_id"]},
            "ops.0.op_id",
        ),
        (json.dumps([good]).encode(), {"Idempotency-Key": good["batch_id"]}, "body"),
    ]
    for body, headers, field in cases:
        response = device.http.post(
            f"{SYNC}/push",
            content=body,
            headers=device.headers(**{"Content-Type": "application/json", **headers}),
        )
        assert response.status_code == 400, (field, response.text)
        error = response.json()
        assert error["code"] == "malformed_request"
        assert error["errors"][0]["field"] == field, error
        assert error["message"]
    assert _stored_ops(session) == 0
    (result,) = device.push(good["ops"][0])  # nothing of the op was kept: it applies now
    assert result["status"] == "applied"


def test_batches_above_the_limits_get_413(api: Any, device: SyncDevice, settings: Any) -> None:
    padding = "x" * settings.sync.max_batch_bytes
    response = device.push_body(device.batch([device.create(narrative=padding)]))
    assert response.status_code == 413
    assert str(settings.sync.max_batch_bytes) in response.json()["message"]
    many = [device.create() for _ in range(settings.sync.max_batch_ops + 1)]
    response = device.push_body(device.batch(many))
    assert response.status_code == 413
    assert "operations" in response.json()["message"]


def test_an_unknown_op_kind_is_rejected_alone(device: SyncDevice) -> None:
    """An op from a newer app: rejected with the list of kinds, its seq consumed, so the
    device's next op is not blocked behind it."""
    odd = device.op("teleport", uuid.uuid4(), {"to": "Bangui"})
    follow = device.create()
    first, second = device.push(odd, follow)
    assert first["status"] == "rejected"
    assert first["error"]["code"] == "unknown_kind"
    assert "create" in first["error"]["detail"]
    assert second["status"] == "applied"


def test_a_report_years_in_the_future_is_quarantined_not_rejected(
    api: Any, device: SyncDevice, session: Session
) -> None:
    op = device.create(occurred_at=iso(datetime.now(UTC) + timedelta(days=3 * 365)))
    (result,) = device.push(op)
    assert result["status"] == "applied"
    assert result["quarantined"] is True
    assert "future" in result["error"]["detail"]
    held = session.get(QuarantinedOp, uuid.UUID(op["op_id"]))
    assert held is not None and held.payload == op["payload"]
    assert api.as_("analyst").get(f"{API}/reports/{op['report_id']}").status_code == 404
    (again,) = device.push(op)
    assert again["status"] == "duplicate" and again["quarantined"] is True  # stored result


def test_a_report_that_fails_validation_is_quarantined(device: SyncDevice) -> None:
    (unknown_category,) = device.push(device.create(category="alien_landing"))
    assert unknown_category["status"] == "applied" and unknown_category["quarantined"]
    (bad_point,) = device.push(device.create(location={"type": "Point", "coordinates": [200, 5]}))
    assert bad_point["status"] == "applied" and bad_point["quarantined"]
    assert "location" in bad_point["error"]["detail"]


def test_an_op_naming_another_device_is_rejected(api: Any, device: SyncDevice) -> None:
    other = SyncDevice.for_user(api, "officer_a")
    op = other.create()
    (result,) = device.push(op)
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "wrong_device"


def test_a_report_id_already_used_for_another_report_is_rejected(
    api: Any, device: SyncDevice
) -> None:
    op = device.create()
    device.push(op)
    other = SyncDevice.for_user(api, "officer_a")
    clash = other.op("create", op["report_id"], {**op["payload"], "narrative": "Different."})
    (result,) = other.push(clash)
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "report_id_conflict"


# --------------------------------------------------------------------------- the pipeline


def test_a_pushed_report_enters_the_pipeline_exactly_once(api: Any, device: SyncDevice) -> None:
    """The same services as REST: routed to its unit, fused into one incident, audited."""
    op = device.create()
    device.push(op)
    device.push(op)
    report = _report(api, op["report_id"])
    assert report["incident_id"] is not None
    assert report["origin"] == "field"
    assert report["created_by_device_id"] == str(device.device_id)
    incidents = api.as_("analyst").get(f"{API}/incidents", params={"limit": 500}).json()
    holding = [i for i in incidents["items"] if i["id"] == report["incident_id"]]
    assert len(holding) == 1
    audit = (
        api.as_("admin")
        .get(f"{API}/audit", params={"object_id": op["report_id"], "limit": 100})
        .json()
    )
    created = [e for e in audit if e["action"] == "report_created"]
    assert len(created) == 1


def test_a_nul_character_rejects_the_op_not_the_batch(api: Any, device: SyncDevice) -> None:
    """PostgreSQL cannot store NUL; the op is refused on both backends, its neighbours go on."""
    bad = device.create(narrative="before\x00after")
    good = device.create()
    first, second = device.push(bad, good)
    assert (first["status"], first["error"]["code"]) == ("rejected", "invalid_op")
    assert "NUL" in first["error"]["detail"]
    assert second["status"] == "applied"


def test_rest_refuses_nul_characters_with_422(api: Any) -> None:
    from tests.api._builders import report_body

    for body in (report_body(narrative="a\x00b"), report_body(place_name="\x00")):
        response = api.as_("officer_a").post(f"{API}/reports", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "body"
    escaped = report_body(narrative="a backslash and text: \\u0000")
    assert api.as_("officer_a").post(f"{API}/reports", json=escaped).status_code == 201


def test_nan_and_infinity_are_not_json(device: SyncDevice) -> None:
    batch = json.dumps(device.batch([device.create(location_accuracy_m=float("inf"))])).encode()
    assert b"Infinity" in batch
    response = device.http.post(
        f"{SYNC}/push",
        content=batch,
        headers=device.headers(
            **{
                "Idempotency-Key": json.loads(batch.replace(b"Infinity", b"0"))["batch_id"],
                "Content-Type": "application/json",
            }
        ),
    )
    assert response.status_code == 400
    assert "Infinity is not a JSON value" in response.json()["message"]
