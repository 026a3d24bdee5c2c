"""Resumable attachment uploads: the tus 1.0 subset the server speaks (creation idempotent on
the client's attachment id, HEAD for the offset, PATCH with a per-chunk sha256, expiry).

:class:`ResumableUpload` moves one file. It never trusts its own idea of the offset after a
failure: it asks the server (HEAD, or the idempotent POST) and continues from there, so a lost
response costs at most one chunk. Chunk size adapts to the link:

- it starts small (64 KiB suits 2G) and grows only after an accepted chunk: it doubles, but never
  past what the link carries in ``target_patch_s`` (8 s) at the throughput measured on accepted
  chunks, nor past the server's ``max_chunk_bytes``. On a link that drops every few seconds a
  PATCH that outlives the link is lost whole, so its length is bounded in time, not in bytes;
- it halves after any transport failure (timeout, reset, abort: a cut link is a reset, not a
  timeout), not below 4 KiB.

When the server keeps the verified prefix of a cut PATCH (hello's ``upload_blocks``), each PATCH
also carries a digest per 2 KiB block (``Upload-Block-Size``, ``Upload-Block-Checksums``; rules in
``mobile_sync/client/README.md``). A cut then costs only the bytes in flight, so chunks may last
longer (``TARGET_PATCH_BLOCKS_S``: fewer requests, fewer header bytes), and a failure after which
HEAD shows that the server kept part of the chunk does not shrink it: the link carried it.

Server answers and what they make the upload do:

- ``204`` chunk stored → next chunk (bigger);
- ``460`` the chunk arrived damaged, nothing stored → send the same chunk again;
- ``409`` offset mismatch → continue from the server's ``Upload-Offset`` (or HEAD);
- ``404``/``410`` on HEAD/PATCH (unknown or expired) → create again and send from byte 0, same
  attachment id;
- ``413`` chunk too large for this server → halve the chunk;
- ``429``/``5xx``/timeouts/resets/answers without ``X-Sync-Protocol`` → back off, then HEAD.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import httpx

from mobile_sync.client import crash
from mobile_sync.client.backoff import Backoff, parse_retry_after
from mobile_sync.client.errors import UploadError
from mobile_sync.client.transport import error_code
from mobile_sync.protocol.models import PROTOCOL_HEADER, UploadBlocks

__all__ = [
    "TARGET_PATCH_BLOCKS_S",
    "TARGET_PATCH_S",
    "UPLOADS_PATH",
    "ResumableUpload",
    "UploadStats",
    "file_sha256",
]

UPLOADS_PATH = "/sync/v1/uploads"
_TUS = {"Tus-Resumable": "1.0.0"}

#: How long one PATCH may take at the measured rate: a cut loses the whole chunk in flight.
TARGET_PATCH_S = 8.0
#: The same when the server keeps a cut chunk's verified blocks: a cut then loses only the
#: bytes in flight, and each PATCH costs its headers (~650 B) and an idle round trip.
TARGET_PATCH_BLOCKS_S = 30.0
#: Block size for block checksums: half a block is lost per cut on average, and each block
#: costs its digest in the headers (8 B with ``sha256-64``): 2 KiB balances the two on 2G.
BLOCK_BYTES = 2048
#: Preferred first: the shortest digest the server takes.
_BLOCK_ALGORITHMS = ("sha256-64", "sha256-128", "sha256")
_DIGEST_BYTES = {"sha256": 32, "sha256-128": 16, "sha256-64": 8}

Step = Literal["create", "head", "patch"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class UploadStats:
    #: Chunk body bytes handed to the transport, including chunks whose answer was lost.
    bytes_sent: int = 0
    requests: int = 0
    #: Times the upload started again from byte 0 (404/410, or a whole-file hash mismatch).
    restarts: int = 0
    #: Chunks that did not arrive intact or unanswered (460, timeouts, resets).
    chunk_failures: int = 0
    #: Bytes of cut chunks the server kept (block checksums), as HEAD showed after the cut.
    bytes_kept_from_cuts: int = 0


class _RetryError(Exception):
    def __init__(
        self,
        step: Step,
        reason: str,
        *,
        retry_after_s: float | None = None,
        wait: bool = True,
        transport: bool = False,
    ) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.wait = wait
        #: The request failed on the link (timeout, reset, abort), not with an answer.
        self.transport = transport


class ResumableUpload:
    """Upload one attachment the report's manifest announced. ``headers()`` gives each request
    its auth and clock headers; ``on_offset`` hears every offset the server confirms."""

    def __init__(
        self,
        http: httpx.Client,
        headers: Callable[[], dict[str, str]],
        *,
        attachment_id: uuid.UUID,
        report_id: uuid.UUID,
        path: Path,
        sha256_hex: str,
        media_type: str,
        max_chunk_bytes: int,
        start_chunk_bytes: int = 64 * 1024,
        min_chunk_bytes: int = 4 * 1024,
        target_patch_s: float | None = None,
        blocks: UploadBlocks | None = None,
        block_bytes: int = BLOCK_BYTES,
        on_offset: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_chunk_bytes < 1 or max_chunk_bytes < min_chunk_bytes:
            raise ValueError("need 1 <= min_chunk_bytes <= max_chunk_bytes")
        self.http = http
        self.headers = headers
        self.attachment_id = attachment_id
        self.report_id = report_id
        self.path = Path(path)
        self.sha256_hex = sha256_hex.lower()
        self.media_type = media_type
        self.length = self.path.stat().st_size
        self.max_chunk_bytes = max_chunk_bytes
        self.min_chunk_bytes = min_chunk_bytes
        self.chunk_bytes = max(min_chunk_bytes, min(start_chunk_bytes, max_chunk_bytes))
        #: The server's block checksums (hello's ``upload_blocks``); None: it has none.
        self.block_algorithm = next(
            (a for a in _BLOCK_ALGORITHMS if blocks is not None and a in blocks.algorithms), None
        )
        self.blocks = blocks if self.block_algorithm is not None else None
        self.block_bytes = block_bytes
        if target_patch_s is None:
            target_patch_s = TARGET_PATCH_S if self.blocks is None else TARGET_PATCH_BLOCKS_S
        self.target_patch_s = target_patch_s
        #: Where the chunk that was cut began (block checksums: HEAD tells what was kept).
        self._cut_at: int | None = None
        #: Throughput of accepted chunks (bytes/s, smoothed); None until one is accepted.
        self.rate_bps: float | None = None
        self.on_offset = on_offset
        self.clock = clock
        self.stats = UploadStats()
        self.url = f"{UPLOADS_PATH}/{attachment_id}"
        self._hash_restarts = 0

    # ------------------------------------------------------------------ the loop

    def run(self, *, attempts: int = 1000, sleep: Callable[[float], None] = time.sleep) -> int:
        """Upload until the server holds every byte; returns the final offset (the length).

        ``attempts`` bounds the failed requests tolerated (timeouts, resets, 5xx, 429, damaged
        chunks, restarts); past it, :class:`UploadError` with ``retryable=True``. Answers that
        no retry can fix (the attachment was never announced, was announced with other content,
        the device is not allowed) raise :class:`UploadError` at once."""
        if file_sha256(self.path) != self.sha256_hex:
            raise UploadError(
                f"{self.path} no longer matches the sha256 its report announced; it was changed "
                "on the device after it was attached, so it cannot be sent as that attachment.",
                code="local_file_changed",
                retryable=False,
            )
        backoff = Backoff(base_s=0.5, cap_s=30.0)
        failures = 0
        step: Step = "create"
        offset = 0
        with self.path.open("rb") as handle:
            while True:
                try:
                    if step == "create":
                        offset = self._create()
                        step = "patch"
                    elif step == "head":
                        found = self._head()
                        if found is None:
                            self.stats.restarts += 1
                            step = "create"
                            continue
                        if self._after_cut(found):
                            backoff.reset()  # the link carried data until the cut
                        offset, step = found, "patch"
                    if offset >= self.length:
                        return offset
                    offset = self._patch(handle, offset)
                    backoff.reset()
                except _RetryError as retry:
                    failures += 1
                    if failures >= attempts:
                        raise UploadError(
                            f"Upload of attachment {self.attachment_id} gave up after "
                            f"{failures} failed requests; last: {retry.reason}. It resumes "
                            "from the server's offset at the next sync.",
                            retryable=True,
                        ) from None
                    step = retry.step
                    if retry.wait:
                        sleep(backoff.next_delay(retry.retry_after_s))

    # ------------------------------------------------------------------ chunk size

    def _shrink(self) -> None:
        self.chunk_bytes = max(self.min_chunk_bytes, self.chunk_bytes // 2)

    def _after_cut(self, offset: int) -> bool:
        """HEAD after a chunk with block checksums failed on the link: True if the server kept
        part of it. The link then carried data until the cut, so the chunk keeps its size (and
        the pause before the next request starts short again)."""
        if self._cut_at is None:
            return False
        cut_at, self._cut_at = self._cut_at, None
        if offset > cut_at:
            self.stats.bytes_kept_from_cuts += offset - cut_at
            return True
        self._shrink()
        return False

    def _grow(self, sent: int, elapsed_s: float) -> None:
        """After an accepted chunk of ``sent`` bytes that took ``elapsed_s`` (request to
        answer): update the throughput, then double the chunk within the time bound."""
        if sent >= self.chunk_bytes or self.rate_bps is None:
            # The file's short tail would measure mostly the round trip: not a rate sample.
            sample = sent / max(elapsed_s, 1e-3)
            # Smoothed, so that one lucky or unlucky chunk does not swing the size alone.
            self.rate_bps = sample if self.rate_bps is None else 0.5 * self.rate_bps + 0.5 * sample
        in_time = int(self.rate_bps * self.target_patch_s)
        self.chunk_bytes = max(
            self.min_chunk_bytes, min(self.max_chunk_bytes, self.chunk_bytes * 2, in_time)
        )

    def _confirm(self, offset: int) -> None:
        if self.on_offset is not None:
            self.on_offset(offset)

    # ------------------------------------------------------------------ requests

    def _send(
        self,
        method: str,
        url: str,
        step_after_failure: Step,
        *,
        headers: dict[str, str],
        content: bytes | None = None,
    ) -> httpx.Response:
        try:
            response = self.http.request(method, url, headers=headers, content=content)
        except httpx.TimeoutException as exc:
            raise _RetryError(
                step_after_failure, f"timed out ({type(exc).__name__})", transport=True
            ) from None
        except httpx.TransportError as exc:
            raise _RetryError(
                step_after_failure, f"connection failed ({type(exc).__name__})", transport=True
            ) from None
        if PROTOCOL_HEADER not in response.headers:
            raise _RetryError(
                step_after_failure,
                f"HTTP {response.status_code} without {PROTOCOL_HEADER} (captive portal?)",
            )
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryError(
                step_after_failure,
                f"HTTP {status}",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _block_headers(self, chunk: bytes) -> dict[str, str]:
        """``Upload-Block-Size`` and ``Upload-Block-Checksums`` for ``chunk`` ({} without)."""
        if self.blocks is None or self.block_algorithm is None or not chunk:
            return {}
        # At least the server's minimum, and big enough that the digests fit its count.
        size = max(self.block_bytes, self.blocks.min_block_bytes)
        fitting = -(-len(chunk) // max(1, self.blocks.max_blocks))
        size = max(size, -(-fitting // 1024) * 1024)
        digest_bytes = _DIGEST_BYTES[self.block_algorithm]
        digests = b"".join(
            hashlib.sha256(chunk[i : i + size]).digest()[:digest_bytes]
            for i in range(0, len(chunk), size)
        )
        encoded = base64.b64encode(digests).decode()
        return {
            "Upload-Block-Size": str(size),
            "Upload-Block-Checksums": f"{self.block_algorithm} {encoded}",
        }

    def _fatal(self, response: httpx.Response, what: str, *, retryable: bool) -> UploadError:
        code = error_code(response)
        return UploadError(
            f"{what} of attachment {self.attachment_id}: HTTP {response.status_code}"
            + (f" ({code})" if code else ""),
            status=response.status_code,
            code=code,
            retryable=retryable,
        )

    def _create(self) -> int:
        metadata = ",".join(
            f"{key} {_b64(value)}"
            for key, value in (
                ("attachment_id", str(self.attachment_id)),
                ("report_id", str(self.report_id)),
                ("sha256", self.sha256_hex),
                ("media_type", self.media_type),
            )
        )
        response = self._send(
            "POST",
            UPLOADS_PATH,
            "create",
            headers={
                **self.headers(),
                **_TUS,
                "Upload-Length": str(self.length),
                "Upload-Metadata": metadata,
            },
        )
        self.stats.requests += 1
        if response.status_code in (200, 201):
            self.url = response.headers.get("Location", self.url)
            offset = int(response.headers.get("Upload-Offset", "0"))
            self._confirm(offset)
            return offset
        # 404: the report's manifest has not reached the server (push first); 409: announced
        # with other content; 401/403/413: not for this device or too large. None heals by
        # retrying now.
        raise self._fatal(
            response, "Starting the upload", retryable=response.status_code in (404, 401)
        )

    def _head(self) -> int | None:
        response = self._send("HEAD", self.url, "head", headers={**self.headers(), **_TUS})
        self.stats.requests += 1
        if response.status_code == 200:
            offset = int(response.headers.get("Upload-Offset", "0"))
            self._confirm(offset)
            return offset
        if response.status_code in (404, 410):
            self._cut_at = None
            return None
        raise self._fatal(response, "Asking for the offset", retryable=True)

    def _patch(self, handle: BinaryIO, offset: int) -> int:
        handle.seek(offset)
        chunk = handle.read(min(self.chunk_bytes, self.length - offset))
        checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        self.stats.bytes_sent += len(chunk)
        self.stats.requests += 1
        started = self.clock()
        try:
            response = self._send(
                "PATCH",
                self.url,
                "head",
                content=chunk,
                headers={
                    **self.headers(),
                    **_TUS,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                    "Upload-Checksum": f"sha256 {checksum}",
                    **self._block_headers(chunk),
                },
            )
        except _RetryError as retry:
            self.stats.chunk_failures += 1
            if retry.transport and self.blocks is not None:
                self._cut_at = offset  # shrink or not once HEAD tells what was kept
            elif retry.transport:
                self._shrink()
            raise
        status = response.status_code
        if status == 204:
            confirmed = int(response.headers.get("Upload-Offset", str(offset + len(chunk))))
            crash.point("mid_upload")
            self._confirm(confirmed)
            self._grow(len(chunk), self.clock() - started)
            return confirmed
        if status == 460:
            self.stats.chunk_failures += 1
            raise _RetryError("patch", "chunk arrived damaged (460)", wait=False)
        if status == 409:
            # Another attempt got further (or the file is complete): continue from the server.
            server_offset = response.headers.get("Upload-Offset")
            if server_offset is None:
                raise _RetryError("head", "offset mismatch (409)", wait=False)
            self._confirm(int(server_offset))
            return int(server_offset)
        if status in (404, 410):
            self.stats.restarts += 1
            raise _RetryError("create", f"upload unknown or expired ({status})", wait=False)
        if status == 413 and len(chunk) > self.min_chunk_bytes:
            self.max_chunk_bytes = max(self.min_chunk_bytes, len(chunk) // 2)
            self.chunk_bytes = self.max_chunk_bytes
            raise _RetryError("patch", "chunk larger than the server accepts (413)", wait=False)
        if status == 422 and error_code(response) == "attachment_hash_mismatch":
            # The server discarded the bytes. The file matched its hash when we started, so the
            # damage happened on the way: once more from zero, then give up.
            self._hash_restarts += 1
            if self._hash_restarts <= 1:
                self.stats.restarts += 1
                raise _RetryError("create", "whole-file hash mismatch (422)", wait=False)
        raise self._fatal(response, "Sending a chunk", retryable=status in (401,))
