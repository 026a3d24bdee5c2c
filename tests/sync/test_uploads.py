"""Resumable attachment uploads (tus subset, SYNC.md §4.7, scenarios 26–29): creation
idempotent on the client's id, HEAD for the offset, PATCH with a per-chunk sha256, expiry, and
the whole file checked against the report's manifest."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from server.db.base import utcnow
from server.reports.models import Attachment
from server.sync import uploads
from server.worker import tasks
from tests.api._builders import API
from tests.sync.kit import SYNC, SyncDevice

CHUNK = 64 * 1024


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Upload:
    """One announced attachment of a pushed report, and the requests that fill it in."""

    def __init__(self, device: SyncDevice, data: bytes, *, announce: bool = True) -> None:
        self.device = device
        self.data = data
        self.attachment_id = uuid.uuid4()
        self.sha256 = hashlib.sha256(data).hexdigest()
        manifest = [
            {
                "id": str(self.attachment_id),
                "media_type": "audio/ogg",
                "size_bytes": len(data),
                "sha256": self.sha256,
                "role": "audio",
            }
        ]
        op = device.create(attachments=manifest if announce else [])
        self.report_id = op["report_id"]
        (result,) = device.push(op)
        assert result["status"] == "applied", result
        self.url = f"{SYNC}/uploads/{self.attachment_id}"

    def create(self, *, sha256: str | None = None, length: int | None = None) -> Any:
        metadata = ",".join(
            [
                f"attachment_id {_b64(str(self.attachment_id))}",
                f"report_id {_b64(self.report_id)}",
                f"sha256 {_b64(sha256 or self.sha256)}",
                f"media_type {_b64('audio/ogg')}",
            ]
        )
        return self.device.http.post(
            f"{SYNC}/uploads",
            headers=self.device.headers(
                **{
                    "Upload-Length": str(len(self.data) if length is None else length),
                    "Upload-Metadata": metadata,
                    "Tus-Resumable": "1.0.0",
                }
            ),
        )

    def head(self) -> Any:
        return self.device.http.head(self.url, headers=self.device.headers())

    def patch(
        self,
        offset: int,
        chunk: bytes,
        *,
        checksum_of: bytes | None = None,
        content_type: str = "application/offset+octet-stream",
    ) -> Any:
        digest = hashlib.sha256(chunk if checksum_of is None else checksum_of).digest()
        return self.device.http.patch(
            self.url,
            content=chunk,
            headers=self.device.headers(
                **{
                    "Content-Type": content_type,
                    "Upload-Offset": str(offset),
                    "Upload-Checksum": f"sha256 {base64.b64encode(digest).decode()}",
                    "Tus-Resumable": "1.0.0",
                }
            ),
        )

    def send_all(self, start: int = 0) -> Any:
        response = None
        for offset in range(start, len(self.data), CHUNK):
            response = self.patch(offset, self.data[offset : offset + CHUNK])
            assert response.status_code == 204, response.text
        return response


@pytest.fixture
def device(api: Any) -> SyncDevice:
    return SyncDevice.for_user(api, "officer_a")


def _report(api: Any, report_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.as_("analyst").get(f"{API}/reports/{report_id}").json()
    return body


def test_an_upload_resumes_where_the_server_says_and_completes(
    api: Any, device: SyncDevice, settings: Any
) -> None:
    upload = Upload(device, os.urandom(3 * CHUNK + 1000))
    created = upload.create()
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == upload.url
    assert created.headers["Upload-Offset"] == "0"
    assert created.headers["Upload-Expires"]
    again = upload.create()  # the response was lost: creating again finds the same upload
    assert (again.status_code, again.headers["Location"]) == (200, upload.url)
    assert upload.patch(0, upload.data[:CHUNK]).headers["Upload-Offset"] == str(CHUNK)
    head = upload.head()
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, str(CHUNK))
    assert head.headers["Cache-Control"] == "no-store"
    report = _report(api, upload.report_id)
    assert (report["attachments_expected"], report["attachments_present"]) == (1, 0)
    last = upload.send_all(start=CHUNK)
    assert last.headers["Upload-Offset"] == str(len(upload.data))
    report = _report(api, upload.report_id)
    assert (report["attachments_expected"], report["attachments_present"]) == (1, 1)
    assert report["version"] == 2
    (attachment,) = report["attachments"]
    assert attachment["state"] == "complete"
    stored = settings.attachments_dir / upload.sha256[:2] / upload.sha256
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == upload.sha256


def test_a_corrupted_chunk_gets_460_and_the_offset_stays(device: SyncDevice) -> None:
    """Scenario 26."""
    upload = Upload(device, os.urandom(2 * CHUNK))
    upload.create()
    damaged = bytearray(upload.data[:CHUNK])
    damaged[100] ^= 0xFF
    response = upload.patch(0, bytes(damaged), checksum_of=upload.data[:CHUNK])
    assert response.status_code == 460
    assert response.json()["code"] == "checksum_mismatch"
    assert upload.head().headers["Upload-Offset"] == "0"
    upload.send_all()
    assert upload.head().headers["Upload-Offset"] == str(len(upload.data))


def test_a_chunk_at_the_wrong_offset_gets_409_with_the_right_one(device: SyncDevice) -> None:
    upload = Upload(device, os.urandom(2 * CHUNK))
    upload.create()
    upload.patch(0, upload.data[:CHUNK])
    response = upload.patch(0, upload.data[:CHUNK])  # a resend after a lost response
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == str(CHUNK)
    ahead = upload.patch(2 * CHUNK - 10, upload.data[-10:])
    assert (ahead.status_code, ahead.headers["Upload-Offset"]) == (409, str(CHUNK))


def test_an_expired_upload_restarts_from_zero_under_the_same_id(
    api: Any, device: SyncDevice, session: Session
) -> None:
    """Scenario 27: one attachment in the end, never two."""
    upload = Upload(device, os.urandom(2 * CHUNK))
    upload.create()
    upload.patch(0, upload.data[:CHUNK])
    session.execute(
        update(Attachment)
        .where(Attachment.id == upload.attachment_id)
        .values(upload_expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    response = upload.head()
    assert response.status_code == 410
    assert upload.patch(CHUNK, upload.data[CHUNK:]).status_code == 404  # not started again yet
    assert upload.create().status_code == 201
    upload.send_all()
    (attachment,) = _report(api, upload.report_id)["attachments"]
    assert attachment["state"] == "complete"


def test_housekeeping_discards_expired_uploads(
    device: SyncDevice, session: Session, settings: Any
) -> None:
    upload = Upload(device, os.urandom(2 * CHUNK))
    upload.create()
    upload.patch(0, upload.data[:CHUNK])
    session.execute(
        update(Attachment)
        .where(Attachment.id == upload.attachment_id)
        .values(upload_expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    assert tasks.sync_housekeeping()["uploads_discarded"] == 1
    assert not (settings.attachments_dir / "partial" / upload.attachment_id.hex).exists()
    assert tasks.sync_housekeeping()["uploads_discarded"] == 0
    assert uploads.discard_expired(session, settings) == 0


def test_a_file_that_does_not_match_its_manifest_is_discarded(api: Any, device: SyncDevice) -> None:
    """Every chunk intact, but the file is not the one the manifest announced."""
    upload = Upload(device, os.urandom(CHUNK + 10))
    upload.create()
    upload.data = os.urandom(len(upload.data))
    assert upload.patch(0, upload.data[:CHUNK]).status_code == 204
    response = upload.patch(CHUNK, upload.data[CHUNK:])
    assert response.status_code == 422
    assert response.json()["code"] == "attachment_hash_mismatch"
    report = _report(api, upload.report_id)
    assert report["attachments_present"] == 0
    assert report["attachments"][0]["state"] == "expected"
    assert upload.head().status_code == 404  # start again from 0 (create, then PATCH)


def test_a_complete_attachment_can_never_be_overwritten(api: Any, device: SyncDevice) -> None:
    """Scenario 29 (central#793)."""
    upload = Upload(device, os.urandom(1000))
    upload.create()
    upload.send_all()
    response = upload.patch(0, os.urandom(1000))
    assert response.status_code == 409
    conflicting = upload.create(sha256=hashlib.sha256(b"other").hexdigest())
    assert conflicting.status_code == 409
    assert "new attachment id" in conflicting.json()["message"]
    assert upload.create().status_code == 200
    (attachment,) = _report(api, upload.report_id)["attachments"]
    assert attachment["sha256"] == upload.sha256


def test_a_partly_received_report_shows_what_is_missing(api: Any, device: SyncDevice) -> None:
    """Scenario 28: HQ sees 1/2 while the second file is still on the phone."""
    data = [os.urandom(500), os.urandom(700)]
    manifest = [
        {
            "id": str(uuid.uuid4()),
            "media_type": "image/jpeg",
            "size_bytes": len(d),
            "sha256": hashlib.sha256(d).hexdigest(),
            "role": "photo",
        }
        for d in data
    ]
    op = device.create(attachments=manifest)
    device.push(op)
    upload = Upload.__new__(Upload)
    upload.device, upload.data, upload.report_id = device, data[0], op["report_id"]
    upload.attachment_id = uuid.UUID(manifest[0]["id"])
    upload.sha256 = manifest[0]["sha256"]
    upload.url = f"{SYNC}/uploads/{upload.attachment_id}"
    upload.create()
    upload.send_all()
    report = _report(api, op["report_id"])
    assert (report["attachments_expected"], report["attachments_present"]) == (2, 1)
    listing = api.as_("analyst").get(f"{API}/reports/{op['report_id']}").json()
    assert listing["id"] == op["report_id"]


def test_uploads_refuse_what_was_not_announced_or_is_malformed(
    api: Any, device: SyncDevice, settings: Any
) -> None:
    upload = Upload(device, os.urandom(100), announce=False)
    assert upload.create().status_code == 404  # push the manifest first
    announced = Upload(device, os.urandom(100))
    assert announced.create(length=101).status_code == 409
    too_big = announced.create(length=settings.sync.max_attachment_bytes + 1)
    assert too_big.status_code == 413
    missing = device.http.post(f"{SYNC}/uploads", headers=device.headers(**{"Upload-Length": "1"}))
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "header:Upload-Metadata"
    announced.create()
    assert announced.patch(0, announced.data, content_type="application/json").status_code == 415
    bad_checksum = device.http.patch(
        announced.url,
        content=announced.data,
        headers=device.headers(
            **{
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
                "Upload-Checksum": "md5 xyz",
            }
        ),
    )
    assert bad_checksum.status_code == 400
    past_end = announced.patch(0, announced.data + b"extra")
    assert past_end.status_code == 413
    assert announced.head().headers["Upload-Offset"] == "0"
    stranger = SyncDevice.for_user(api, "officer_b")
    assert stranger.http.head(announced.url, headers=stranger.headers()).status_code == 404


def test_tus_discovery(device: SyncDevice) -> None:
    response = device.http.options(f"{SYNC}/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "checksum",
        "expiration",
        "block-checksum",
    }
    assert response.headers["Tus-Checksum-Algorithm"] == "sha256"
    assert response.headers["Upload-Block-Algorithms"] == "sha256,sha256-128,sha256-64"
    assert int(response.headers["Upload-Block-Max-Count"]) == uploads.MAX_BLOCKS


def test_a_link_cut_mid_chunk_is_not_a_server_error(device: SyncDevice) -> None:
    """On 2G the connection drops while a PATCH body is arriving: the server reads nothing,
    writes nothing and logs it as what it is (499, the nginx convention), not as a 500."""
    import anyio

    upload = Upload(device, os.urandom(2 * CHUNK))
    upload.create()
    app = device.http.app
    headers = device.headers(
        **{
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Upload-Checksum": "sha256 "
            + base64.b64encode(hashlib.sha256(upload.data[:CHUNK]).digest()).decode(),
        }
    )
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": upload.url,
        "raw_path": upload.url.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    messages = [
        {"type": "http.request", "body": upload.data[:1000], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 499
    assert upload.head().headers["Upload-Offset"] == "0"


def test_the_author_uploads_the_photos_of_a_sensitive_report(api: Any) -> None:
    """A field officer sees their own sexual-violence report only redacted, yet its
    attachments must leave the phone; another officer still cannot touch them."""
    device = SyncDevice.for_user(api, "officer_a")
    data = os.urandom(3000)
    upload = Upload.__new__(Upload)
    upload.device, upload.data = device, data
    upload.attachment_id, upload.sha256 = uuid.uuid4(), hashlib.sha256(data).hexdigest()
    op = device.create(
        category="sexual_violence",
        attachments=[
            {
                "id": str(upload.attachment_id),
                "media_type": "image/jpeg",
                "size_bytes": len(data),
                "sha256": upload.sha256,
                "role": "photo",
            }
        ],
    )
    (result,) = device.push(op)
    assert result["status"] == "applied" and not result["quarantined"], result
    upload.report_id, upload.url = op["report_id"], f"{SYNC}/uploads/{upload.attachment_id}"
    assert upload.create().status_code == 201
    upload.send_all()
    stranger = SyncDevice.for_user(api, "commander_a")
    assert stranger.http.head(upload.url, headers=stranger.headers()).status_code == 404
    report = api.as_("protection").get(f"{API}/reports/{op['report_id']}").json()
    assert report["attachments_present"] == 1
