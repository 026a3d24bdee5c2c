"""No 5xx from anything a device can send to /sync/v1 (the "bad input" rule): random envelopes,
random ops with every field of the wrong type or out of range, random upload headers. Every
answer is a 2xx with per-op results or a 4xx with Vigil's error body, and a 4xx stores nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.sync.models import SyncOp
from tests.sync.kit import SYNC, SyncDevice

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # not JSON (tested on their own)
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

#: What can travel in an HTTP header at all (httpx refuses the rest before sending).
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)

OP_FIELDS = [
    "op_id",
    "device_id",
    "device_seq",
    "report_id",
    "kind",
    "base_version",
    "schema_version",
    "device_time_ms",
    "device_uptime_ms",
    "boot_id",
    "payload",
    "payload_sha256",
]


def _stored(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(SyncOp)) or 0


def _assert_vigil_answer(response: Any) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["X-Sync-Protocol"] == "1"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "errors", "request_id"}, body
        assert body["message"]


@FUZZ
@given(
    field=st.sampled_from(OP_FIELDS),
    value=json_values,
    kind=st.sampled_from(
        [
            "create",
            "set_fields",
            "add_note",
            "attach",
            "seal_update",
            "track_append",
            "transition_status",
            "withdraw",
            "add_verification",
        ]
    ),
)
def test_ops_with_any_field_garbled_get_an_answer_not_a_crash(
    api: Any, session: Session, field: str, value: Any, kind: str
) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    before = _stored(session)
    op = device.op(kind, uuid.uuid4(), {"fields": {"place_name": "x"}, "text": "t"})
    op[field] = value
    response = device.push_body(device.batch([op]))
    _assert_vigil_answer(response)
    if response.status_code == 200:
        (result,) = response.json()["results"]
        assert result["status"] in {
            "applied",
            "rejected",
            "deferred",
            "gone",
            "duplicate",
            "conflict_flagged",
        }
    else:
        assert _stored(session) == before


@FUZZ
@given(
    payload=st.dictionaries(
        st.sampled_from(
            [
                "category",
                "occurred_at",
                "location",
                "victims",
                "attachments",
                "sealed",
                "narrative",
                "fields",
                "note_id",
                "text",
                "to_state",
                "patrol",
                "points",
                "payload_version",
                "parent_version",
                "ciphertext_b64",
            ]
        ),
        json_values,
        max_size=6,
    ),
    kind=st.sampled_from(
        [
            "create",
            "set_fields",
            "add_note",
            "attach",
            "seal_update",
            "track_append",
            "transition_status",
            "withdraw",
        ]
    ),
)
def test_any_payload_is_applied_quarantined_or_rejected(
    api: Any, kind: str, payload: dict[str, Any]
) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    (result,) = device.push(device.op(kind, uuid.uuid4(), payload))
    assert result["status"] in {"applied", "rejected", "gone"}, result
    if result["status"] != "applied" or result["quarantined"]:
        assert result["error"]["code"] and result["error"]["detail"]


@FUZZ
@given(body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)))
def test_any_envelope_gets_a_vigil_answer(api: Any, session: Session, body: bytes) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    before = _stored(session)
    response = device.http.post(
        f"{SYNC}/push",
        content=body,
        headers=device.headers(
            **{"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
        ),
    )
    _assert_vigil_answer(response)
    assert response.status_code == 400
    assert _stored(session) == before


@FUZZ
@given(
    length=st.one_of(header_text, st.integers(-5, 10**12).map(str)),
    metadata=st.one_of(
        header_text,
        st.lists(
            st.tuples(
                st.sampled_from(["attachment_id", "report_id", "sha256", "media_type", "x"]),
                header_text,
            ),
            max_size=5,
        ).map(lambda pairs: ",".join(f"{k} {v}" for k, v in pairs)),
    ),
    offset=st.one_of(header_text, st.integers(-3, 10**9).map(str)),
    checksum=header_text,
)
def test_any_upload_headers_get_a_vigil_answer(
    api: Any, length: str, metadata: str, offset: str, checksum: str
) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    created = device.http.post(
        f"{SYNC}/uploads",
        headers=device.headers(**{"Upload-Length": length, "Upload-Metadata": metadata}),
    )
    _assert_vigil_answer(created)
    patched = device.http.patch(
        f"{SYNC}/uploads/{uuid.uuid4()}",
        content=b"abc",
        headers=device.headers(
            **{
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": offset,
                "Upload-Checksum": checksum,
            }
        ),
    )
    _assert_vigil_answer(patched)
