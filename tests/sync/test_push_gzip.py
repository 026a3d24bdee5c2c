"""Compression on the sync wire (server.sync.encoding): gzip push bodies decoded under the batch
limit, the batch fingerprint over the decoded bytes, gzip answers on request, and the reference
client compressing its pushes once hello says the server reads gzip."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobile_sync.client import SyncOutcome
from mobile_sync.protocol.models import Hello
from server.reports.models import Report
from server.sync.models import SyncBatch, SyncOp
from tests.api._builders import API
from tests.sync.kit import SYNC, SyncDevice
from tests.sync.test_client_kit import (
    answer,
    report_fields,
    rewrite_json,
    server_ops,
    server_reports,
    signed_in,
)

PUSH = f"{SYNC}/push"


@pytest.fixture
def device(api: Any) -> SyncDevice:
    return SyncDevice.for_user(api, "officer_a")


def _stored(session: Session) -> tuple[int, int, int]:
    """Ledger rows, remembered batches, reports: what a failed push must leave unchanged."""
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (SyncOp, SyncBatch, Report)
    )


def _raw(batch: dict[str, Any]) -> bytes:
    return json.dumps(batch, separators=(",", ":")).encode()


def _post(device: SyncDevice, batch_id: str, content: bytes, **headers: str) -> Any:
    return device.http.post(
        PUSH,
        content=content,
        headers=device.headers(
            **{"Idempotency-Key": batch_id, "Content-Type": "application/json", **headers}
        ),
    )


def _report(api: Any, report_id: str) -> dict[str, Any]:
    response = api.as_("analyst").get(f"{API}/reports/{report_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --------------------------------------------------------------------------- requests


def test_hello_says_the_server_reads_gzip_and_an_old_hello_still_parses(
    device: SyncDevice,
) -> None:
    response = device.http.get(f"{SYNC}/hello", headers=device.headers())
    assert response.status_code == 200, response.text
    assert response.json()["request_encodings"] == ["gzip"]
    old = {k: v for k, v in response.json().items() if k != "request_encodings"}
    assert Hello.model_validate(old).request_encodings == []  # a server before this: plain


def test_a_gzip_push_is_applied_exactly_as_the_same_push_plain(
    api: Any, device: SyncDevice
) -> None:
    fields = {"narrative": "Shots near the water point \u2014 three wounded.", "hours_ago": 5.0}
    plain_op = device.create(**fields)
    gzip_op = device.op("create", uuid.uuid4(), plain_op["payload"])  # the same payload
    plain = device.batch([plain_op])
    zipped = device.batch([gzip_op])

    first = _post(device, plain["batch_id"], _raw(plain))
    second = _post(
        device, zipped["batch_id"], gzip.compress(_raw(zipped)), **{"Content-Encoding": "gzip"}
    )

    assert first.status_code == 200 and second.status_code == 200, second.text
    assert [r["status"] for r in first.json()["results"] + second.json()["results"]] == [
        "applied",
        "applied",
    ]
    a, b = _report(api, plain_op["report_id"]), _report(api, gzip_op["report_id"])
    for key in plain_op["payload"]:
        assert a[key] == b[key], key
    assert a["narrative"] == fields["narrative"]


@pytest.mark.parametrize("first_coding", ["identity", "gzip"])
def test_a_batch_resent_in_the_other_coding_is_the_same_batch(
    api: Any, device: SyncDevice, session: Session, first_coding: str
) -> None:
    """A retry compressed of a plain batch (or the reverse) is answered from the ledger: the
    Idempotency-Key fingerprint is over the decoded bytes, not the wire bytes."""
    op = device.create()
    batch = device.batch([op])
    raw = _raw(batch)
    sends = {"identity": (raw, {}), "gzip": (gzip.compress(raw), {"Content-Encoding": "gzip"})}
    order = [first_coding, "gzip" if first_coding == "identity" else "identity"]

    answers = [_post(device, batch["batch_id"], sends[c][0], **sends[c][1]) for c in order]

    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    (applied,), (again,) = (a.json()["results"] for a in answers)
    assert (applied["status"], again["status"]) == ("applied", "duplicate")
    assert again["version"] == applied["version"] and again["seq"] == applied["seq"]
    assert server_reports(session, op["report_id"]) == 1
    assert server_ops(session, op["op_id"]) == 1
    remembered = select(func.count()).select_from(SyncBatch)
    assert session.scalar(remembered.where(SyncBatch.batch_id == uuid.UUID(batch["batch_id"])))


def test_the_same_key_with_another_decoded_body_is_still_422(
    device: SyncDevice, session: Session
) -> None:
    batch = device.batch([device.create()])
    assert _post(device, batch["batch_id"], _raw(batch)).status_code == 200
    altered = _raw({**batch, "device_time_ms": batch["device_time_ms"] + 1})
    reused = _post(
        device, batch["batch_id"], gzip.compress(altered), **{"Content-Encoding": "gzip"}
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


def test_a_decompression_bomb_is_413_like_any_oversized_batch_and_stores_nothing(
    device: SyncDevice, session: Session, settings: Any
) -> None:
    before = _stored(session)
    bomb = gzip.compress(bytes(50 * 1024 * 1024), 9)  # 50 MB of zeros in ~50 KB
    assert len(bomb) < settings.mission.max_body_bytes  # through the plain body limit
    batch = device.batch([device.create()])
    response = _post(device, batch["batch_id"], bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    oversized = _post(device, batch["batch_id"], b" " * (settings.sync.max_batch_bytes + 1))
    assert oversized.status_code == 413
    assert set(response.json()) == set(oversized.json())
    assert response.json()["code"] == oversized.json()["code"] == "payload_too_large"
    assert str(settings.sync.max_batch_bytes) in response.json()["message"]
    # A valid batch whose decoded size is just over the limit: the same.
    padded = device.batch([device.create(narrative="x" * settings.sync.max_batch_bytes)])
    response = _post(
        device, padded["batch_id"], gzip.compress(_raw(padded)), **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert _stored(session) == before


def _corrupt(raw: bytes) -> bytes:
    damaged = bytearray(gzip.compress(raw))
    damaged[len(damaged) // 2] ^= 0x55
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt,
        lambda raw: gzip.compress(raw)[:-12],  # cut short on the way
        lambda raw: raw,  # labelled gzip, sent plain
        lambda raw: b"",
        lambda raw: gzip.compress(raw) + b"trailing junk",
    ],
    ids=["flipped-byte", "truncated", "not-gzip", "empty", "trailing-junk"],
)
def test_a_damaged_gzip_body_is_400_with_a_sentence_and_stores_nothing(
    device: SyncDevice, session: Session, damage: Any
) -> None:
    before = _stored(session)
    batch = device.batch([device.create()])
    response = _post(device, batch["batch_id"], damage(_raw(batch)), **{"Content-Encoding": "gzip"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "malformed_request"
    assert body["errors"][0]["field"] == "header:Content-Encoding"
    assert "Nothing was stored" in body["message"]
    assert _stored(session) == before
    # The batch was not remembered: sent intact, under the same key, it applies.
    fine = _post(
        device, batch["batch_id"], gzip.compress(_raw(batch)), **{"Content-Encoding": "gzip"}
    )
    assert [r["status"] for r in fine.json()["results"]] == ["applied"]


@pytest.mark.parametrize("coding", ["br", "deflate", "zstd", "gzip, gzip", "compress"])
def test_a_coding_the_server_does_not_read_is_415_naming_gzip(
    device: SyncDevice, session: Session, coding: str
) -> None:
    before = _stored(session)
    batch = device.batch([device.create()])
    response = _post(device, batch["batch_id"], _raw(batch), **{"Content-Encoding": coding})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_content_encoding"
    assert response.headers["Accept-Encoding"] == "gzip"
    assert response.headers["X-Sync-Protocol"] == "1"
    assert _stored(session) == before


def test_identity_is_the_same_as_no_coding(device: SyncDevice) -> None:
    batch = device.batch([device.create()])
    response = _post(device, batch["batch_id"], _raw(batch), **{"Content-Encoding": "identity"})
    assert [r["status"] for r in response.json()["results"]] == ["applied"]


def test_an_upload_chunk_takes_no_content_coding(device: SyncDevice) -> None:
    headers = device.headers(
        **{
            "Content-Type": "application/offset+octet-stream",
            "Content-Encoding": "gzip",
            "Upload-Offset": "0",
            "Upload-Checksum": "sha256 AAAA",
        }
    )
    response = device.http.patch(
        f"{SYNC}/uploads/{uuid.uuid4()}", content=gzip.compress(b"abc"), headers=headers
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_content_encoding"


def test_nothing_is_decoded_before_the_credential_is_checked(device: SyncDevice) -> None:
    batch = device.batch([device.create()])
    headers = {**device.headers(), "Authorization": "Bearer vgd.not-a-real-token"}
    for body, coding in ((b"not gzip", "gzip"), (_raw(batch), "br")):
        response = device.http.post(
            PUSH,
            content=body,
            headers={**headers, "Idempotency-Key": batch["batch_id"], "Content-Encoding": coding},
        )
        assert response.status_code == 401, (coding, response.text)


# --------------------------------------------------------------------------- answers


def test_answers_are_gzipped_when_asked_and_big_enough(device: SyncDevice) -> None:
    hello = device.http.get(f"{SYNC}/hello", headers=device.headers(**{"Accept-Encoding": "gzip"}))
    assert hello.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in hello.headers["Vary"]
    assert hello.num_bytes_downloaded < len(hello.content)  # fewer bytes crossed than it holds
    assert hello.headers["X-Sync-Protocol"] == "1" and "X-Server-Time-Ms" in hello.headers
    assert hello.json()["request_encodings"] == ["gzip"]

    batch = device.batch([device.create()])
    push = _post(device, batch["batch_id"], _raw(batch), **{"Accept-Encoding": "gzip"})
    assert push.headers["Content-Encoding"] == "gzip"
    assert push.json()["results"][0]["status"] == "applied"

    page = device.http.get(
        f"{SYNC}/pull", params={"limit": 50}, headers=device.headers(**{"Accept-Encoding": "gzip"})
    )
    assert page.status_code == 200
    if len(page.content) >= 256:
        assert page.headers["Content-Encoding"] == "gzip"

    plain = device.http.get(
        f"{SYNC}/hello", headers=device.headers(**{"Accept-Encoding": "identity"})
    )
    assert "Content-Encoding" not in plain.headers
    assert plain.num_bytes_downloaded == len(plain.content)


def test_a_small_answer_and_the_tus_routes_go_uncompressed(device: SyncDevice) -> None:
    asked = {"Accept-Encoding": "gzip"}
    options = device.http.options(f"{SYNC}/uploads", headers=device.headers(**asked))
    assert options.status_code == 204 and "Content-Encoding" not in options.headers
    head = device.http.head(f"{SYNC}/uploads/{uuid.uuid4()}", headers=device.headers(**asked))
    assert "Content-Encoding" not in head.headers
    error = device.http.get(f"{SYNC}/hello", headers={**asked, "Authorization": "Bearer x"})
    assert error.status_code == 401
    assert len(error.content) < 256 and "Content-Encoding" not in error.headers


# --------------------------------------------------------------------------- the client


def test_the_client_gzips_its_push_after_hello_and_asks_for_gzip(api, session, tmp_path) -> None:
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    [entry] = device.client.outbox()
    device.faults.sent.clear()

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 1}
    [push] = device.faults.requests("POST", PUSH)
    assert push.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(push.wire) == push.content  # the kit decodes what it logs
    assert entry.body in push.content  # the stored op bytes, verbatim inside
    assert len(push.wire) < 0.75 * len(push.content)
    sync_requests = [s for s in device.faults.sent if s.path.startswith(f"{SYNC}/")]
    assert {s.headers["Accept-Encoding"] for s in sync_requests} == {"gzip"}
    assert server_reports(session, report_id) == 1


def test_a_server_that_does_not_say_gzip_gets_plain_pushes(api, session, tmp_path) -> None:
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    old_hello = rewrite_json(lambda b: {k: v for k, v in b.items() if k != "request_encodings"})
    device.faults.arm("GET", f"{SYNC}/hello", old_hello)

    result = device.client.sync()

    assert result.pushed == {"applied": 1}, result.errors
    [push] = device.faults.requests("POST", PUSH)
    assert "Content-Encoding" not in push.headers and push.wire == push.content
    assert server_reports(session, report_id) == 1


def test_a_415_to_a_gzip_push_sends_the_same_batch_plain(api, session, tmp_path) -> None:
    """A server rolled back to one that cannot read gzip: nothing was stored, so the same
    batch (same Idempotency-Key, same decoded bytes) goes again uncompressed, once."""
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.faults.arm("POST", PUSH, answer(415, code="unsupported_content_encoding"))

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 1}
    first, second = device.faults.requests("POST", PUSH)
    assert first.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in second.headers
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.content == second.content
    assert server_reports(session, report_id) == 1


def _damaged_gzip_answer(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    """The server commits; the gzip answer arrives mangled (a proxy, a flaky link)."""
    inner.handle_request(request).read()
    return httpx.Response(
        200,
        headers={"X-Sync-Protocol": "1", "Content-Encoding": "gzip"},
        content=b"\x1f\x8b\x08\x00garbled",
        request=request,
    )


def test_an_answer_that_does_not_gunzip_is_indeterminate_and_resent(api, session, tmp_path) -> None:
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    [entry] = device.client.outbox()
    device.faults.arm("POST", PUSH, _damaged_gzip_answer)

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"duplicate": 1}  # the first copy was applied, its answer lost
    first, second = device.faults.requests("POST", PUSH)
    assert first.wire == second.wire  # resent byte for byte, compressed the same way
    [after] = device.client.outbox()
    assert after.state == "done"
    assert server_ops(session, entry.op_id) == 1
    assert server_reports(session, report_id) == 1
