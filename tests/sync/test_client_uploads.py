"""``ResumableUpload`` against the real upload endpoints: adaptive chunks, and every recovery the
tus subset defines — damaged chunk (460), offset mismatch (409), lost answer (HEAD), expiry
(410 → from 0 with the same id), overload (Retry-After) (SYNC.md §4.7, scenarios 25–27, I8)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mobile_sync.client import ResumableUpload, UploadError
from mobile_sync.protocol.models import UploadBlocks
from server.db.base import utcnow
from server.reports.enums import AttachmentState
from server.reports.models import Attachment
from tests.sync.kit import SyncDevice
from tests.sync.test_client_kit import (
    BASE,
    FaultyTransport,
    answer,
    before,
    corrupt_body,
    drop_request,
    lose_response,
)
from tests.sync.test_upload_blocks import deliver_cut

pytestmark = pytest.mark.integration

UPLOADS = "/sync/v1/uploads"
SIZE = 300_000


@dataclass
class Announced:
    """A report whose manifest reached the server; its attachment's bytes are still on the
    device."""

    device: SyncDevice
    faults: FaultyTransport
    http: httpx.Client
    path: Path
    data: bytes
    attachment_id: uuid.UUID
    report_id: uuid.UUID

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def upload(self, **kwargs: Any) -> ResumableUpload:
        kwargs.setdefault("max_chunk_bytes", 1024 * 1024)
        return ResumableUpload(
            self.http,
            self.device.headers,
            attachment_id=self.attachment_id,
            report_id=self.report_id,
            path=self.path,
            sha256_hex=self.sha256,
            media_type="audio/ogg",
            **kwargs,
        )

    def chunks(self) -> list[tuple[int, int]]:
        """(Upload-Offset, length) of every PATCH sent."""
        return [
            (int(s.headers["Upload-Offset"]), len(s.content))
            for s in self.faults.requests("PATCH", UPLOADS)
        ]


def announce(api: Any, tmp_path: Path, size: int = SIZE, *, push: bool = True) -> Announced:
    device = SyncDevice.for_user(api, "officer_a")
    data = hashlib.sha256(b"seed").digest() * (size // 32) + b"x" * (size % 32)
    path = tmp_path / "statement.ogg"
    path.write_bytes(data)
    attachment_id = uuid.uuid4()
    manifest = {
        "id": str(attachment_id),
        "media_type": "audio/ogg",
        "size_bytes": size,
        "sha256": hashlib.sha256(data).hexdigest(),
        "role": "audio",
    }
    op = device.create(attachments=[manifest])
    if push:
        assert device.push(op)[0]["status"] == "applied"
    faults = FaultyTransport(api.http._transport)
    http = httpx.Client(transport=faults, base_url=BASE)
    return Announced(device, faults, http, path, data, attachment_id, uuid.UUID(op["report_id"]))


def server_attachment(session: Any, attachment_id: uuid.UUID) -> Attachment:
    attachment = session.scalars(select(Attachment).where(Attachment.id == attachment_id)).one()
    session.refresh(attachment)
    return attachment


def test_chunks_start_small_and_double_up_to_the_limit(api, session, tmp_path):
    job = announce(api, tmp_path)
    offsets: list[int] = []
    upload = job.upload(max_chunk_bytes=100_000, on_offset=offsets.append)

    assert upload.run(sleep=pytest.fail) == SIZE

    assert [n for _, n in job.chunks()] == [65_536, 100_000, 100_000, 34_464]
    assert offsets == [0, 65_536, 165_536, 265_536, 300_000]
    assert (upload.stats.bytes_sent, upload.stats.requests) == (SIZE, 5)
    assert (upload.stats.restarts, upload.stats.chunk_failures) == (0, 0)
    stored = server_attachment(session, job.attachment_id)
    assert stored.state is AttachmentState.COMPLETE
    assert stored.received_bytes == SIZE


def test_a_damaged_chunk_is_refused_with_460_and_sent_again(api, session, tmp_path):
    job = announce(api, tmp_path)
    job.faults.arm("PATCH", UPLOADS, corrupt_body, skip=1)  # the 2nd chunk arrives damaged
    upload = job.upload()

    assert upload.run(sleep=pytest.fail) == SIZE  # a resend needs no pause

    chunks = job.chunks()
    assert chunks[1] == chunks[2] == (65_536, 131_072)  # same offset, same chunk, again
    assert upload.stats.chunk_failures == 1
    assert upload.stats.bytes_sent == SIZE + 131_072
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


def test_an_expired_upload_restarts_from_zero_under_the_same_id(api, session, tmp_path):
    job = announce(api, tmp_path)

    def expire() -> None:
        session.execute(
            update(Attachment)
            .where(Attachment.id == job.attachment_id)
            .values(upload_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()

    job.faults.arm("PATCH", UPLOADS, before(expire), skip=1)
    upload = job.upload()

    assert upload.run(sleep=pytest.fail) == SIZE

    assert [offset for offset, _ in job.chunks()][:3] == [0, 65_536, 0]
    assert upload.stats.restarts == 1
    assert {s.path for s in job.faults.requests("PATCH", UPLOADS)} == {
        f"{UPLOADS}/{job.attachment_id}"
    }
    assert len(job.faults.requests("POST", UPLOADS)) == 2
    rows = session.scalars(select(Attachment).where(Attachment.report_id == job.report_id)).all()
    assert len(rows) == 1
    session.refresh(rows[0])
    assert rows[0].state is AttachmentState.COMPLETE


def test_a_lost_answer_to_a_chunk_is_resolved_by_asking_the_offset(api, session, tmp_path):
    job = announce(api, tmp_path)
    job.faults.arm("PATCH", UPLOADS, lose_response, skip=1)
    sleeps: list[float] = []
    upload = job.upload()

    assert upload.run(sleep=sleeps.append) == SIZE

    assert len(job.faults.requests("HEAD", UPLOADS)) == 1
    assert upload.stats.bytes_sent == SIZE  # the chunk had arrived: not sent twice
    assert upload.stats.chunk_failures == 1
    assert len(sleeps) == 1
    # The timeout halved the chunk: 64 KiB, 128 KiB (lost, then halved), 64 KiB, ...
    assert [n for _, n in job.chunks()][:3] == [65_536, 131_072, 65_536]
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


def _misplaced(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    headers = dict(request.headers)
    headers["Upload-Offset"] = "0"
    forged = httpx.Request(request.method, request.url, headers=headers, content=request.content)
    return inner.handle_request(forged)


def test_an_offset_mismatch_continues_from_the_servers_offset(api, session, tmp_path):
    job = announce(api, tmp_path)
    job.faults.arm("PATCH", UPLOADS, _misplaced, skip=1)  # the 2nd chunk claims offset 0: 409
    upload = job.upload()

    assert upload.run(sleep=pytest.fail) == SIZE

    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE
    assert upload.stats.restarts == 0


def test_overload_waits_as_told_then_resumes(api, session, tmp_path):
    job = announce(api, tmp_path)
    job.faults.arm("PATCH", UPLOADS, answer(503, headers={"Retry-After": "4"}), skip=1)
    sleeps: list[float] = []
    upload = job.upload()

    assert upload.run(sleep=sleeps.append) == SIZE

    assert sleeps[0] >= 4.0
    assert len(job.faults.requests("HEAD", UPLOADS)) == 1
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


def test_an_upload_gives_up_after_its_attempts_and_can_resume_later(api, session, tmp_path):
    job = announce(api, tmp_path)
    job.faults.arm("PATCH", UPLOADS, drop_request, times=3, skip=1)
    job.faults.arm("HEAD", UPLOADS, drop_request, times=3)
    sleeps: list[float] = []

    with pytest.raises(UploadError, match="gave up after 3") as failure:
        job.upload().run(attempts=3, sleep=sleeps.append)
    assert failure.value.retryable
    assert len(sleeps) == 2

    job.faults.disarm()
    later = job.upload()
    assert later.run(sleep=pytest.fail) == SIZE
    assert later.stats.bytes_sent == SIZE - 65_536  # resumed after the chunk that got through


def test_an_attachment_the_server_never_heard_of_is_not_uploaded(api, tmp_path):
    job = announce(api, tmp_path, push=False)

    with pytest.raises(UploadError) as failure:
        job.upload().run(sleep=pytest.fail)

    assert failure.value.status == 404
    assert failure.value.retryable  # once the report is pushed it will work
    assert job.faults.requests("PATCH", UPLOADS) == []


def test_a_completed_attachment_is_never_sent_again(api, tmp_path):
    job = announce(api, tmp_path)
    job.upload().run(sleep=pytest.fail)
    job.faults.sent.clear()

    again = job.upload()
    assert again.run(sleep=pytest.fail) == SIZE
    assert again.stats.bytes_sent == 0
    assert job.faults.requests("PATCH", UPLOADS) == []


def test_a_file_changed_after_it_was_attached_is_refused_before_sending(api, tmp_path):
    job = announce(api, tmp_path)
    job.path.write_bytes(b"tampered" + job.data[8:])

    with pytest.raises(UploadError, match="no longer matches") as failure:
        job.upload().run(sleep=pytest.fail)
    assert not failure.value.retryable
    assert job.faults.sent == []


# ---------------------------------------------------------------------------- a slow, cut link


class SlowLink:
    """A link of ``rate`` bytes/s and ``rtt_s`` on a clock the uploader reads (the clock moves
    only by what crosses the link and by the uploader's pauses). With ``cut_every_s``, the link
    drops at every multiple of it: the request on it then fails with a reset, and the server
    never sees it (that comes in the prefix tests)."""

    def __init__(
        self, rate: float, rtt_s: float, cut_every_s: float | None = None, *, app: Any = None
    ) -> None:
        #: With the app, a cut PATCH delivers what crossed before the cut, then disconnects.
        self.app = app
        self.rate = rate
        self.rtt_s = rtt_s
        self.cut_every_s = cut_every_s
        self.next_cut = cut_every_s
        self.now = 0.0
        self.cuts = 0
        #: (Upload-Offset, body length, seconds on the link) of every PATCH that got through.
        self.patches: list[tuple[int, int, float]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def _cut_due(self, duration: float) -> bool:
        if self.next_cut is None or self.cut_every_s is None:
            return False
        while self.next_cut <= self.now:
            self.next_cut += self.cut_every_s
        if self.now + duration <= self.next_cut:
            return False
        self.now = self.next_cut
        self.cuts += 1
        return True

    def __call__(self, request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        duration = self.rtt_s + len(request.content) / self.rate
        started = self.now
        if self._cut_due(duration):
            crossed = int((self.now - started - self.rtt_s / 2) * self.rate)
            if self.app is not None and request.method == "PATCH" and crossed > 0:
                body = request.content[:crossed]
                deliver_cut(self.app, "PATCH", request.url.path, dict(request.headers), body)
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        self.now += duration
        if request.method == "PATCH":
            self.patches.append(
                (int(request.headers["Upload-Offset"]), len(request.content), duration)
            )
        return inner.handle_request(request)

    def attach(self, faults: FaultyTransport) -> None:
        for method in ("POST", "HEAD", "PATCH"):
            faults.arm(method, UPLOADS, self, times=10**6)


def test_a_reset_halves_the_chunk_like_a_timeout(api, session, tmp_path):
    """A cut link surfaces as a reset (ReadError), not a timeout: it must shrink the chunk too,
    or chunks keep doubling past what the link can carry between two cuts."""
    job = announce(api, tmp_path)

    def reset(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)

    job.faults.arm("PATCH", UPLOADS, reset, skip=1)
    upload = job.upload()

    assert upload.run(sleep=lambda _s: None) == SIZE

    assert [n for _, n in job.chunks()][:3] == [65_536, 131_072, 65_536]
    assert upload.stats.chunk_failures == 1
    assert len(job.faults.requests("HEAD", UPLOADS)) == 1
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


def test_chunks_are_sized_from_the_measured_throughput(api, session, tmp_path):
    """At 2G speed (6,250 B/s, 600 ms RTT) a chunk grows only to what the link carries in
    about 8 s, although the server would take 1 MiB."""
    job = announce(api, tmp_path)
    link = SlowLink(rate=6_250, rtt_s=0.6)
    link.attach(job.faults)
    upload = job.upload(clock=link.clock)

    assert upload.run(sleep=link.sleep) == SIZE

    sizes = [n for _, n, _ in link.patches]
    assert sizes[0] == 65_536  # before any measurement: the configured start
    assert max(sizes[1:]) <= 8 * 6_250  # then bounded by the time
    # ~8 s: the rate is measured request to answer, so a round trip may come on top.
    assert all(seconds <= 8.0 + 0.6 for _, _, seconds in link.patches[1:])
    assert min(sizes[1:-1]) >= 0.75 * 8 * 6_250  # and not needlessly small
    assert upload.rate_bps is not None and 5_000 < upload.rate_bps < 6_250
    assert (upload.stats.chunk_failures, upload.stats.bytes_sent) == (0, SIZE)
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


def test_a_link_cut_every_20_s_still_completes(api, session, tmp_path):
    """The 2G benchmark's failure in small: with chunks that only doubled, a chunk soon took
    longer than the link stays up and no PATCH could ever complete again."""
    job = announce(api, tmp_path, size=600_000)
    link = SlowLink(rate=6_250, rtt_s=0.6, cut_every_s=20.0)
    link.attach(job.faults)
    upload = job.upload(clock=link.clock)

    assert upload.run(attempts=60, sleep=link.sleep) == 600_000

    assert link.cuts >= 3
    assert upload.stats.chunk_failures >= 3
    assert max(n for _, n, _ in link.patches[1:]) <= 8 * 6_250
    assert server_attachment(session, job.attachment_id).state is AttachmentState.COMPLETE


BLOCKS = UploadBlocks(algorithms=["sha256", "sha256-64"], min_block_bytes=1024, max_blocks=256)


def test_with_block_checksums_a_cut_costs_only_the_bytes_in_flight(api, session, tmp_path):
    """The same cut link, a server that keeps a cut chunk's verified blocks: the uploader sends
    little more than the file, and chunks no longer shrink at each cut (the link carried them)."""
    size = 600_000
    job = announce(api, tmp_path, size=size)
    link = SlowLink(rate=6_250, rtt_s=0.6, cut_every_s=20.0, app=api.http.app)
    link.attach(job.faults)
    upload = job.upload(clock=link.clock, blocks=BLOCKS)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        link.sleep(seconds)

    assert upload.run(attempts=60, sleep=pause) == size

    assert upload.block_algorithm == "sha256-64"
    assert link.cuts >= 3
    assert upload.stats.bytes_kept_from_cuts > 0.5 * link.cuts * 6_250 * 10
    # Each cut wastes under a block plus what was in flight; not whole chunks.
    wasted = upload.stats.bytes_sent - size
    assert wasted < link.cuts * (2048 + 6_250 * 20)  # (bytes_sent counts the unsent tail too)
    patches = job.faults.requests("PATCH", UPLOADS)
    assert all("Upload-Block-Checksums" in p.headers for p in patches)
    assert patches[0].headers["Upload-Block-Size"] == "2048"
    # HEAD after every cut; the chunk grows past the 8 s bound (30 s with block checksums).
    assert len(job.faults.requests("HEAD", UPLOADS)) == link.cuts
    assert max(n for _, n, _ in link.patches) > 8 * 6_250
    # A cut that kept bytes is no reason to wait longer and longer: the backoff starts over.
    assert len(pauses) == link.cuts and max(pauses) <= 0.5
    stored = server_attachment(session, job.attachment_id)
    assert stored.state is AttachmentState.COMPLETE


def test_block_checksums_only_when_the_server_offers_a_known_algorithm(api, tmp_path):
    job = announce(api, tmp_path)
    unknown = UploadBlocks(algorithms=["blake3"], min_block_bytes=1024, max_blocks=256)
    upload = job.upload(blocks=unknown)

    assert upload.run(sleep=pytest.fail) == SIZE

    assert upload.blocks is None
    assert all(
        "Upload-Block-Checksums" not in p.headers for p in job.faults.requests("PATCH", UPLOADS)
    )


def test_big_chunks_use_bigger_blocks_within_the_servers_count(api, tmp_path):
    job = announce(api, tmp_path, size=600_000)
    few = UploadBlocks(algorithms=["sha256"], min_block_bytes=1024, max_blocks=16)
    upload = job.upload(blocks=few, start_chunk_bytes=200_000)

    assert upload.run(sleep=pytest.fail) == 600_000

    first = job.faults.requests("PATCH", UPLOADS)[0]
    block = int(first.headers["Upload-Block-Size"])
    assert block % 1024 == 0 and block * 16 >= 200_000
    algorithm, encoded = first.headers["Upload-Block-Checksums"].split(" ")
    assert algorithm == "sha256"
    assert len(base64.b64decode(encoded)) == 32 * -(-200_000 // block)
