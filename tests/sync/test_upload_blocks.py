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


def cut_patch(
    upload: Upload,
    offset: int,
    chunk: bytes,
    *,
    arrives: int,
    extra: dict[str, str] | None = None,
    received: bytes | None = None,
) -> int:
    """Send a PATCH of ``chunk`` straight to the app whose body stops after ``arrives`` bytes
    (the link dropped: ``http.disconnect``). Returns the status the app answered to nobody."""
    headers = upload.device.headers(
        **{
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(chunk)),
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode(),
            "Tus-Resumable": "1.0.0",
            **(extra if extra is not None else block_headers(chunk)),
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
    body = (chunk if received is None else received)[:arrives]
    # The body comes in uneven pieces, as from a socket, then the link is gone.
    pieces = [body[i : i + 1500] for i in range(0, len(body), 1500)]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]
    messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(upload.device.http.app, scope, receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    return int(start["status"])


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
