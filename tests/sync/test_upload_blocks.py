"""Block checksums (Vigil's tus extension, mobile_sync/client/README.md): a PATCH cut mid-body
keeps its complete blocks that match their digests, and nothing else; a whole PATCH is checked
against Upload-Checksum as before; an old client's cut PATCH stores nothing, as before."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import anyio
import pytest

from server.sync import uploads
from tests.sync.kit import SyncDevice
from tests.sync.test_uploads import Upload

BLOCK = 2048


@pytest.fixture
def device(api: Any) -> SyncDevice:
    return SyncDevice.for_user(api, "officer_a")


def block_headers(
    chunk: bytes, *, block: int = BLOCK, algorithm: str = "sha256-64", digests_of: bytes = b""
) -> dict[str, str]:
    source = digests_of or chunk
    size = uploads.BLOCK_ALGORITHMS[algorithm]
    digests = b"".join(
        hashlib.sha256(source[i : i + block]).digest()[:size] for i in range(0, len(source), block)
    )
    return {
        "Upload-Block-Size": str(block),
        "Upload-Block-Checksums": f"{algorithm} {base64.b64encode(digests).decode()}",
    }


def deliver_cut(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    """Run one request straight through the ASGI app whose body is ``body`` and then stops:
    the link dropped (``http.disconnect``). Returns the status the app answered to nobody."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    # The body comes in uneven pieces, as from a socket, then the link is gone.
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[i : i + 1500], "more_body": True}
        for i in range(0, len(body), 1500)
    ]
    messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    return int(start["status"])


def cut_patch(
    upload: Upload,
    offset: int,
    chunk: bytes,
    *,
    arrives: int,
    extra: dict[str, str] | None = None,
    received: bytes | None = None,
) -> int:
    """A PATCH of ``chunk`` (with block checksums unless ``extra`` says otherwise) of which
    only the first ``arrives`` bytes (of ``received``, if the link damaged them) arrive."""
    headers = upload.device.headers(
        **{
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(chunk)),
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 "
            + base64.b64encode(hashlib.sha256(chunk).digest()).decode(),
            "Tus-Resumable": "1.0.0",
            **(extra if extra is not None else block_headers(chunk)),
        }
    )
    body = (chunk if received is None else received)[:arrives]
    return deliver_cut(upload.device.http.app, "PATCH", upload.url, headers, body)


def offset_of(upload: Upload) -> int:
    head = upload.head()
    assert head.status_code == 200, head.text
    return int(head.headers["Upload-Offset"])


def test_a_cut_patch_keeps_exactly_its_complete_matching_blocks(device: SyncDevice) -> None:
    upload = Upload(device, os.urandom(20 * BLOCK + 100))
    upload.create()
    chunk = upload.data[: 10 * BLOCK]

    assert cut_patch(upload, 0, chunk, arrives=3 * BLOCK + 700) == 499

    assert offset_of(upload) == 3 * BLOCK  # the 4th block was incomplete: dropped
    # The next PATCH goes on from there, and the file completes and hashes right.
    rest = upload.data[3 * BLOCK :]
    assert upload.patch(3 * BLOCK, rest).status_code == 204
    assert offset_of(upload) == len(upload.data)


def test_a_damaged_block_and_everything_after_it_are_dropped(device: SyncDevice) -> None:
    upload = Upload(device, os.urandom(12 * BLOCK))
    upload.create()
    chunk = upload.data[: 8 * BLOCK]
    damaged = bytearray(chunk)
    damaged[2 * BLOCK + 5] ^= 0xFF  # in the 3rd block

    cut_patch(upload, 0, chunk, arrives=6 * BLOCK, received=bytes(damaged))

    assert offset_of(upload) == 2 * BLOCK  # blocks 4-6 were intact, but come after the damage
    assert upload.patch(2 * BLOCK, upload.data[2 * BLOCK :]).status_code == 204
    assert offset_of(upload) == len(upload.data)  # the manifest's sha256 matched


def test_a_cut_before_the_first_block_completes_keeps_nothing(device: SyncDevice) -> None:
    upload = Upload(device, os.urandom(4 * BLOCK))
    upload.create()
    chunk = upload.data[: 4 * BLOCK]

    assert cut_patch(upload, 0, chunk, arrives=BLOCK - 1) == 499
    assert offset_of(upload) == 0
    assert cut_patch(upload, 0, chunk, arrives=0) == 499
    assert offset_of(upload) == 0


def test_offsets_after_a_cut_are_the_ones_head_gives(device: SyncDevice) -> None:
    """The device learns what was kept only by HEAD: a resend from its old offset gets 409 with
    the server's offset, and blocks kept by a cut at that offset are never written twice."""
    upload = Upload(device, os.urandom(16 * BLOCK))
    upload.create()
    first = upload.data[: 8 * BLOCK]
    cut_patch(upload, 0, first, arrives=5 * BLOCK + 10)
    stale = upload.patch(0, first)
    assert (stale.status_code, stale.headers["Upload-Offset"]) == (409, str(5 * BLOCK))
    assert offset_of(upload) == 5 * BLOCK

    # A second cut, from where HEAD said, adds its own complete blocks after those.
    second = upload.data[5 * BLOCK : 12 * BLOCK]
    cut_patch(upload, 5 * BLOCK, second, arrives=4 * BLOCK)
    assert offset_of(upload) == 9 * BLOCK
    assert upload.patch(9 * BLOCK, upload.data[9 * BLOCK :]).status_code == 204
    assert offset_of(upload) == len(upload.data)


def test_a_cut_patch_at_a_stale_offset_stores_nothing(device: SyncDevice, settings: Any) -> None:
    """Two PATCHes of the same upload in flight (an old connection the server has not yet seen
    die, and its resend): whichever comes second is refused, as without block checksums, and a
    cut one leaves no trace."""
    upload = Upload(device, os.urandom(8 * BLOCK))
    upload.create()
    assert upload.patch(0, upload.data[: 4 * BLOCK]).status_code == 204
    other = os.urandom(4 * BLOCK)  # what a confused second writer would put there

    cut_patch(upload, 0, other, arrives=3 * BLOCK)

    assert offset_of(upload) == 4 * BLOCK
    partial = settings.attachments_dir / "partial" / upload.attachment_id.hex
    assert partial.read_bytes() == upload.data[: 4 * BLOCK]
    assert upload.patch(4 * BLOCK, upload.data[4 * BLOCK :]).status_code == 204
    assert offset_of(upload) == len(upload.data)


def test_nothing_is_kept_past_the_announced_length(device: SyncDevice) -> None:
    """A cut PATCH is held to what the whole one declared: a chunk that would run past the
    upload's length keeps nothing, even the blocks that did fit."""
    upload = Upload(device, os.urandom(6 * BLOCK))
    upload.create()
    too_long = upload.data + os.urandom(2 * BLOCK)

    cut_patch(upload, 0, too_long, arrives=4 * BLOCK)

    assert offset_of(upload) == 0
    whole = upload.patch(0, too_long)
    assert whole.status_code == 413
    assert offset_of(upload) == 0


def test_an_old_clients_cut_patch_stores_nothing(device: SyncDevice) -> None:
    upload = Upload(device, os.urandom(8 * BLOCK))
    upload.create()

    assert cut_patch(upload, 0, upload.data, arrives=6 * BLOCK, extra={}) == 499

    assert offset_of(upload) == 0


def _patch_with(upload: Upload, chunk: bytes, headers: dict[str, str]) -> Any:
    digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    return upload.device.http.patch(
        upload.url,
        content=chunk,
        headers=upload.device.headers(
            **{
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
                "Upload-Checksum": f"sha256 {digest}",
                **headers,
            }
        ),
    )


def test_a_whole_patch_with_block_checksums_is_checked_as_before(device: SyncDevice) -> None:
    """When the whole body arrives, Upload-Checksum decides: a damaged chunk is 460 and nothing
    is stored, whatever its blocks say."""
    upload = Upload(device, os.urandom(6 * BLOCK))
    upload.create()
    chunk = upload.data[: 4 * BLOCK]
    damaged = bytearray(chunk)
    damaged[3 * BLOCK] ^= 0xFF
    digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    refused = upload.device.http.patch(
        upload.url,
        content=bytes(damaged),
        headers=upload.device.headers(
            **{
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
                "Upload-Checksum": f"sha256 {digest}",
                **block_headers(chunk),
            }
        ),
    )
    assert refused.status_code == 460
    assert offset_of(upload) == 0
    for algorithm in uploads.BLOCK_ALGORITHMS:
        fresh = Upload(device, os.urandom(4 * BLOCK))
        fresh.create()
        whole = _patch_with(fresh, fresh.data, block_headers(fresh.data, algorithm=algorithm))
        assert whole.status_code == 204, whole.text
        assert offset_of(fresh) == len(fresh.data)


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Upload-Block-Size": "2048"}, "header:Upload-Block-Checksums"),
        ({"Upload-Block-Checksums": "sha256-64 AAAAAAAAAAA="}, "header:Upload-Block-Size"),
        ({"Upload-Block-Size": "100", "Upload-Block-Checksums": "x"}, "header:Upload-Block-Size"),
        (
            {"Upload-Block-Size": "2048", "Upload-Block-Checksums": "md5 AAAAAAAAAAA="},
            "header:Upload-Block-Checksums",
        ),
        (
            {"Upload-Block-Size": "2048", "Upload-Block-Checksums": "sha256-64 not base64!"},
            "header:Upload-Block-Checksums",
        ),
    ],
    ids=["no-digests", "no-size", "tiny-blocks", "unknown-algorithm", "not-base64"],
)
def test_malformed_block_checksums_are_400(
    device: SyncDevice, headers: dict[str, str], field: str
) -> None:
    upload = Upload(device, os.urandom(4 * BLOCK))
    upload.create()
    response = _patch_with(upload, upload.data, headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert offset_of(upload) == 0


def test_digests_for_another_body_make_it_a_plain_patch(device: SyncDevice) -> None:
    """A body whose length needs another number of digests than it carries is not the body they
    were made for (a middlebox re-framed a cut one): no prefix is trusted, Upload-Checksum
    decides. The whole right chunk is stored; a re-framed short body is 460, nothing stored."""
    upload = Upload(device, os.urandom(4 * BLOCK))
    upload.create()
    three_digests = {"Upload-Block-Size": "2048", "Upload-Block-Checksums": "sha256-64 " + "A" * 32}
    digest = base64.b64encode(hashlib.sha256(upload.data).digest()).decode()
    short = upload.device.http.patch(
        upload.url,
        content=upload.data[: 3 * BLOCK + 100],
        headers=upload.device.headers(
            **{
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
                "Upload-Checksum": f"sha256 {digest}",
                **block_headers(upload.data),
            }
        ),
    )
    assert short.status_code == 460
    assert offset_of(upload) == 0
    whole = _patch_with(upload, upload.data, three_digests)
    assert whole.status_code == 204, whole.text
    assert offset_of(upload) == len(upload.data)


def test_hello_offers_block_checksums_and_old_hellos_still_parse(device: SyncDevice) -> None:
    from mobile_sync.protocol.models import Hello

    body = device.http.get("/sync/v1/hello", headers=device.headers()).json()
    hello = Hello.model_validate(body)
    assert hello.upload_blocks is not None
    assert "sha256-64" in hello.upload_blocks.algorithms
    assert hello.upload_blocks.max_blocks == uploads.MAX_BLOCKS
    del body["upload_blocks"]  # a server from before block checksums
    assert Hello.model_validate(body).upload_blocks is None
