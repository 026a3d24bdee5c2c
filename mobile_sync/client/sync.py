"""One full sync (SYNC.md §4.4): hello → push the outbox → pull until ``has_more`` is false →
uploads. Single-flight per store (see ``lock.py``).

How each server answer is handled:

- push results are stored in one local transaction per batch; an op without a result (lost
  response, captive portal, timeout, a body for another batch) stays pending and is resent
  byte for byte;
- ``deferred`` → every op from ``expected_device_seq`` on is pending again and resent (the
  server restored a backup and lost them);
- ``413`` → the batch is split;
- push bodies go gzipped when hello listed ``gzip`` in ``request_encodings`` (the same bytes,
  compressed the same way, on every resend); a ``415`` to a gzipped push (a server rolled back
  to one that cannot read it) → the same batch again, uncompressed, and no more gzip this sync;
- pull ``410`` (cursor expired, server epoch changed) → replacement sync: the cursor is reset,
  a probe finds what the server lost, the outbox is re-pushed and everything visible is pulled
  again; reports no longer visible are dropped, unsent ops never are (I11);
- ``426`` on hello or pull → "update required" is reported and pulling stops, pushing goes on
  (the server keeps the push path open for old clients);
- ``401 device_revoked`` → the device wipes what the server told it to (see ``client.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from mobile_sync.client import crash, outbox, replica
from mobile_sync.client.errors import UploadError
from mobile_sync.client.lock import SyncLock
from mobile_sync.client.outbox import AttentionItem, OutboxEntry
from mobile_sync.client.store import get_meta, set_meta
from mobile_sync.client.transport import (
    GZIP_MIN_BYTES,
    IndeterminateError,
    Reply,
    ServerUnreachableError,
    error_code,
    gzip_body,
)
from mobile_sync.client.uploads import ResumableUpload, UploadStats
from mobile_sync.protocol.models import Hello, PullResponse, PushResponse, UploadBlocks

if TYPE_CHECKING:
    from mobile_sync.client.client import FieldClient

__all__ = ["DEFAULT_LIMITS", "Limits", "SyncOutcome", "SyncResult", "UploadOutcome", "run_sync"]

SYNC = "/sync/v1"


@dataclass(frozen=True)
class Limits:
    max_batch_bytes: int
    max_batch_ops: int
    max_chunk_bytes: int


#: Used when hello gave none (426): small enough for any server; 413 splits further.
DEFAULT_LIMITS = Limits(max_batch_bytes=64 * 1024, max_batch_ops=50, max_chunk_bytes=256 * 1024)


class SyncOutcome(StrEnum):
    COMPLETED = "completed"  # every phase ran to its end
    PARTIAL = "partial"  # the server answered, but some phase stopped (see errors)
    OFFLINE = "offline"  # no usable answer from the server; try again later
    ALREADY_RUNNING = "already_running"  # another thread or process is syncing this store
    SIGN_IN_REQUIRED = "sign_in_required"  # the credential is no longer valid
    REVOKED = "revoked"  # the device was revoked; local data was wiped as the server said


@dataclass
class UploadOutcome:
    attachment_id: str
    report_id: str
    length: int
    offset: int
    complete: bool
    error: str | None
    stats: UploadStats


@dataclass
class SyncResult:
    outcome: SyncOutcome
    #: Per-op results of this sync by status (applied, duplicate, conflict_flagged, rejected,
    #: gone, deferred), plus ``unanswered`` for ops sent without a usable answer.
    pushed: dict[str, int] = field(default_factory=dict)
    pulled: int = 0
    pull_pages: int = 0
    replacement: bool = False
    update_required: str | None = None
    uploads: list[UploadOutcome] = field(default_factory=list)
    needs_attention: list[AttentionItem] = field(default_factory=list)
    pending: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome is SyncOutcome.COMPLETED


class _StopError(Exception):
    """End this sync now with the given outcome."""

    def __init__(self, outcome: SyncOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.text[:200]


def _parse_push(batch_id: uuid.UUID) -> Callable[[httpx.Response], PushResponse]:
    def parse(response: httpx.Response) -> PushResponse:
        try:
            answer = PushResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise IndeterminateError(f"not a push response ({exc.error_count()} errors)") from None
        if answer.batch_id != batch_id:
            raise IndeterminateError(f"answer for batch {answer.batch_id}, not {batch_id}")
        return answer

    return parse


def _parse_model(model: type[Hello] | type[PullResponse]) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response) -> Any:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise IndeterminateError(
                f"not a {model.__name__} ({exc.error_count()} errors)"
            ) from None

    return parse


class _Sync:
    def __init__(self, client: FieldClient) -> None:
        self.client = client
        self.store = client.store
        account = client.account()
        assert account is not None
        self.device_id = str(account.device_id)
        self.http = client.sync_http()
        self.result = SyncResult(outcome=SyncOutcome.COMPLETED)
        self.limits = DEFAULT_LIMITS
        self.server_epoch: str | None = None
        #: Codings the server said it decodes in a push body (none until hello says so).
        self.request_encodings: frozenset[str] = frozenset()
        #: The server's block checksums for uploads (none until hello says so).
        self.upload_blocks: UploadBlocks | None = None
        self.replaced = False
        self.probed = False

    # ------------------------------------------------------------------ the whole sync

    def run(self) -> SyncResult:
        try:
            if self.store.meta("revoked") is not None:
                raise _StopError(SyncOutcome.REVOKED, "this device was revoked")
            self._hello()
            if self.store.meta("replacing") is not None and not self.probed:
                self._probe()  # a replacement a crash interrupted: finish it
            self._push()
            self._pull()
            self._uploads()
        except _StopError as stop:
            self.result.outcome = stop.outcome
            self.result.errors.append(stop.message)
        except ServerUnreachableError as exc:
            self.result.outcome = SyncOutcome.OFFLINE
            self.result.errors.append(f"server unreachable: {exc}")
        incomplete = self.result.errors or self.result.update_required is not None
        if self.result.outcome is SyncOutcome.COMPLETED and incomplete:
            self.result.outcome = SyncOutcome.PARTIAL
        self._finish()
        return self.result

    def _finish(self) -> None:
        now = self.client.clock.wall_ms()
        with self.store.transaction() as connection:
            set_meta(connection, "last_sync_ms", now)
            set_meta(connection, "last_sync_outcome", self.result.outcome.value)
            set_meta(connection, "update_required", self.result.update_required)
            self.result.needs_attention = outbox.needs_attention(connection, self.device_id)
            self.result.pending = outbox.state_counts(connection, self.device_id)["pending"]

    def _error(self, text: str) -> None:
        self.result.errors.append(text)

    # ------------------------------------------------------------------ answers every phase

    def _common(self, reply: Reply[Any], what: str) -> None:
        """Answers that mean the same whichever request got them."""
        response = reply.response
        if reply.status == 401:
            if error_code(response) == "device_revoked":
                self.client.apply_revocation(_message(response))
                raise _StopError(SyncOutcome.REVOKED, f"{what}: {_message(response)}")
            raise _StopError(
                SyncOutcome.SIGN_IN_REQUIRED,
                f"{what}: the device credential is not accepted; sign in again "
                f"(vigil field init). Unsent reports are kept. ({_message(response)})",
            )

    def _update_required(self, reply: Reply[Any]) -> None:
        self.result.update_required = _message(reply.response)

    # ------------------------------------------------------------------ hello

    def _hello(self) -> None:
        reply = self.http.request("GET", f"{SYNC}/hello", parse=_parse_model(Hello))
        self._common(reply, "hello")
        if reply.status == 426:
            self._update_required(reply)
            return
        hello = reply.value
        if not isinstance(hello, Hello):
            raise _StopError(
                SyncOutcome.PARTIAL,
                f"hello refused: HTTP {reply.status} {_message(reply.response)}",
            )
        if hello.device_status == "revoked":
            self.client.apply_revocation("the server reports this device as revoked")
            raise _StopError(SyncOutcome.REVOKED, "hello: this device was revoked")
        self.limits = Limits(hello.max_batch_bytes, hello.max_batch_ops, hello.max_chunk_bytes)
        self.request_encodings = frozenset(e.lower() for e in hello.request_encodings)
        self.upload_blocks = hello.upload_blocks
        self.server_epoch = hello.epoch
        known = self.store.meta("epoch")
        if known is None:
            with self.store.transaction() as connection:
                set_meta(connection, "epoch", hello.epoch)
        elif known != hello.epoch:
            # The server was restored from a backup: it may have lost ops we think it has.
            self._start_replacement(hello.epoch)

    # ------------------------------------------------------------------ push

    def _batch_body(
        self, rows: list[OutboxEntry], max_bytes: int
    ) -> tuple[uuid.UUID, list[OutboxEntry], bytes]:
        """The longest prefix of ``rows`` that fits ``max_bytes``, as request bytes. The op
        bodies are spliced in verbatim: the bytes stored at creation are the bytes sent."""
        batch_id = uuid.uuid4()
        clock = self.client.clock
        envelope: dict[str, Any] = {
            "batch_id": str(batch_id),
            "device_id": self.device_id,
            "device_time_ms": clock.wall_ms(),
            "device_uptime_ms": clock.uptime_ms(),
            "boot_id": str(self.http.boot_id),
            "client_version": self.http.client_version,
        }
        previous = self.client.previous_exchange()
        if previous is not None and previous.boot_id == self.http.boot_id:
            envelope["previous_exchange"] = previous.probe().model_dump()
        head = json.dumps(envelope, separators=(",", ":"))[:-1].encode() + b',"ops":['
        size = len(head) + 2
        taken: list[OutboxEntry] = []
        for row in rows:
            extra = len(row.body) + (1 if taken else 0)
            if taken and size + extra > max_bytes:
                break
            taken.append(row)
            size += extra
        body = head + b",".join(row.body for row in taken) + b"]}"
        return batch_id, taken, body

    def _push(self) -> None:
        max_ops, max_bytes = self.limits.max_batch_ops, self.limits.max_batch_bytes
        stalled = 0
        while True:
            with self.store.snapshot() as connection:
                rows = outbox.pending_ops(connection, self.device_id, limit=max_ops)
            if not rows:
                return
            batch_id, batch, body = self._batch_body(rows, max_bytes)
            if len(body) > max_bytes:
                self._blocked(
                    batch[0],
                    f"is {len(batch[0].body)} bytes; the server accepts "
                    f"batches of at most {max_bytes}",
                )
                return
            outcome = self._push_batch(batch_id, batch, body)
            if outcome == "too_large":
                if len(batch) == 1:
                    self._blocked(batch[0], "is larger than the server accepts (413)")
                    return
                max_ops = max(1, len(batch) // 2)
                max_bytes = max(1, len(body) - 1)
                continue
            if outcome == "stop":
                return
            stalled = 0 if outcome == "progress" else stalled + 1
            if stalled >= 3:
                self._error(
                    "push made no progress in 3 rounds (the server keeps deferring); the ops "
                    "stay pending for the next sync"
                )
                return

    def _blocked(self, entry: OutboxEntry, why: str) -> None:
        # It holds its device_seq, so every later op waits behind it: say so loudly.
        text = f"op {entry.op_id} (seq {entry.device_seq}) {why}; later ops wait behind it"
        with self.store.transaction() as connection:
            outbox.note_attempt(connection, [entry.op_id], self.client.clock.wall_ms(), text)
        self._error(text)

    def _push_batch(self, batch_id: uuid.UUID, batch: list[OutboxEntry], body: bytes) -> str:
        """Send one batch and store what came back: ``progress``, ``stalled``, ``too_large`` or
        ``stop``."""
        op_ids = [entry.op_id for entry in batch]
        with self.store.transaction() as connection:
            outbox.note_attempt(connection, op_ids, self.client.clock.wall_ms())
        crash.point("before_send")
        headers = {"Idempotency-Key": str(batch_id), "Content-Type": "application/json"}
        # The batch limits count the decoded bytes (as the server does); only the wire shrinks.
        compressed = "gzip" in self.request_encodings and len(body) >= GZIP_MIN_BYTES
        if compressed:
            headers["Content-Encoding"] = "gzip"
        try:
            reply = self.http.request(
                "POST",
                f"{SYNC}/push",
                content=gzip_body(body) if compressed else body,
                headers=headers,
                parse=_parse_push(batch_id),
            )
        except ServerUnreachableError as exc:
            self._count("unanswered", len(batch))
            with self.store.transaction() as connection:
                outbox.note_attempt(connection, op_ids, self.client.clock.wall_ms(), str(exc))
            raise
        crash.point("after_send_before_ack")
        self._common(reply, "push")
        if reply.status == 415 and compressed:
            # Nothing was stored (4xx); the same batch, plain, is the same Idempotency-Key.
            self.request_encodings = frozenset()
            return self._push_batch(batch_id, batch, body)
        if reply.status == 413:
            return "too_large"
        answer = reply.value
        if not isinstance(answer, PushResponse):
            if reply.status == 426:
                self._update_required(reply)
            text = f"push refused: HTTP {reply.status} {_message(reply.response)}"
            with self.store.transaction() as connection:
                outbox.note_attempt(connection, op_ids, self.client.clock.wall_ms(), text)
            self._error(text)
            return "stop"
        now = self.client.clock.wall_ms()
        with self.store.transaction() as connection:
            tally = outbox.apply_results(connection, batch, answer.results, now)
            requeued = 0
            if tally.expected_device_seq is not None:
                requeued = outbox.requeue_from(
                    connection, self.device_id, tally.expected_device_seq, now
                )
        if tally.wiped:
            self.store.truncate_wal()  # the WAL still holds the pages as they were before
        for status, count in tally.by_status.items():
            self._count(status, count)
        answered = sum(tally.by_status.values())
        if answered < len(batch):
            self._count("unanswered", len(batch) - answered)
        return "progress" if tally.settled or requeued else "stalled"

    def _count(self, status: str, count: int) -> None:
        self.result.pushed[status] = self.result.pushed.get(status, 0) + count

    # ------------------------------------------------------------------ replacement sync

    def _start_replacement(self, epoch: str | None) -> None:
        """Forget the pull position (the next pull re-delivers everything visible) and mark the
        replacement, so a crash in the middle resumes it. The outbox is not touched."""
        self.result.replacement = True
        with self.store.transaction() as connection:
            set_meta(connection, "replacing", "1")
            set_meta(connection, "pull_cursor", None)
            if epoch is not None:
                set_meta(connection, "epoch", epoch)
            connection.execute("DELETE FROM replacement_seen")
        self._probe()

    def _probe(self) -> None:
        """Find what a restored server still has: resend the newest op it answered for. Its
        answer is ``duplicate`` (it has everything up to there, ops apply in order) or
        ``deferred`` with the seq it expects, from which everything is resent."""
        self.result.replacement = True
        self.probed = True
        with self.store.snapshot() as connection:
            if outbox.pending_ops(connection, self.device_id, limit=1):
                return  # pushing the pending ops reveals the same
            newest = outbox.latest_settled_op(connection, self.device_id)
        if newest is None:
            return
        batch_id, batch, body = self._batch_body([newest], self.limits.max_batch_bytes)
        self._push_batch(batch_id, batch, body)

    # ------------------------------------------------------------------ pull

    def _pull(self) -> None:
        if self.result.update_required is not None:
            return  # 426: this version may not pull; its pushes were still sent
        while True:
            cursor = self.store.meta("pull_cursor")
            params: dict[str, Any] = {"limit": self.client.pull_limit}
            if cursor:
                params["cursor"] = cursor
            reply = self.http.request(
                "GET", f"{SYNC}/pull", params=params, parse=_parse_model(PullResponse)
            )
            self._common(reply, "pull")
            page = reply.value
            if isinstance(page, PullResponse):
                if not self._apply_page(page):
                    return
                if page.next_cursor == cursor:
                    self._error("pull says more follows but its cursor did not move; stopped")
                    return
                continue
            if reply.status == 426:
                self._update_required(reply)
                return
            if reply.status == 410 or (reply.status == 422 and cursor):
                # Expired cursor, another epoch, or a cursor this server cannot read.
                if self.replaced:
                    self._error(f"pull refused again after a replacement sync: HTTP {reply.status}")
                    return
                self.replaced = True
                self._start_replacement(self.server_epoch)
                self._push()
                continue
            self._error(f"pull refused: HTTP {reply.status} {_message(reply.response)}")
            return

    def _apply_page(self, page: PullResponse) -> bool:
        """Apply one page and its cursor in one transaction; True if more pages follow."""
        now = self.client.clock.wall_ms()
        with self.store.transaction() as connection:
            replacing = get_meta(connection, "replacing") is not None
            applied = 0
            for index, change in enumerate(page.changes):
                applied += replica.apply_change(connection, change, now, replacing=replacing)
                if index == 0:
                    crash.point("mid_pull_page")
            set_meta(connection, "pull_cursor", page.next_cursor)
            if replacing and not page.has_more:
                replica.finish_replacement(connection)
                set_meta(connection, "replacing", None)
        self.result.pulled += applied
        self.result.pull_pages += 1
        return page.has_more

    # ------------------------------------------------------------------ uploads

    def _uploads(self) -> None:
        with self.store.snapshot() as connection:
            rows = connection.execute(
                "SELECT a.attachment_id, a.report_id, a.path, a.sha256, a.length, a.media_type, "
                "o.state, o.last_error FROM attachments AS a "
                "LEFT JOIN outbox AS o ON o.op_id = a.op_id "
                "WHERE a.device_id = ? AND a.state = 'pending' "
                # Small files first: on 2G a photo should not wait behind a video.
                "ORDER BY a.role = 'original', a.length, a.created_at_ms",
                (self.device_id,),
            ).fetchall()
        for attachment_id, report_id, path, sha256, length, media_type, op_state, why in rows:
            if op_state == "pending":
                continue  # the server has not seen its manifest yet
            if op_state in outbox.TERMINAL_STATES:
                self.client.fail_attachment(
                    attachment_id, f"its report was not accepted by the server: {why}"
                )
                continue
            self._upload_one(
                attachment_id,
                report_id,
                self.store.files_dir / path,
                sha256,
                int(length),
                media_type,
            )

    def _upload_one(
        self,
        attachment_id: str,
        report_id: str,
        path: Path,
        sha256: str,
        length: int,
        media_type: str,
    ) -> None:
        def remember(offset: int) -> None:
            self.client.note_upload_offset(attachment_id, offset)
            if self.client.on_upload_progress is not None:
                self.client.on_upload_progress(attachment_id, offset, length)

        if not path.exists():
            self.client.fail_attachment(attachment_id, f"the local copy {path.name} is missing")
            return
        upload = ResumableUpload(
            self.http.http,
            self.http.headers,
            attachment_id=uuid.UUID(attachment_id),
            report_id=uuid.UUID(report_id),
            path=path,
            sha256_hex=sha256,
            media_type=media_type,
            max_chunk_bytes=self.limits.max_chunk_bytes,
            blocks=self.upload_blocks,
            on_offset=remember,
        )
        outcome = UploadOutcome(attachment_id, report_id, length, 0, False, None, upload.stats)
        self.result.uploads.append(outcome)
        try:
            outcome.offset = upload.run(attempts=self.client.upload_attempts, sleep=self.http.sleep)
        except UploadError as exc:
            outcome.error = str(exc)
            if exc.code == "device_revoked":
                self.client.apply_revocation(str(exc))
                raise _StopError(SyncOutcome.REVOKED, f"upload: {exc}") from None
            if exc.status == 401:
                raise _StopError(SyncOutcome.SIGN_IN_REQUIRED, f"upload: {exc}") from None
            if exc.retryable:
                self.client.note_upload_error(attachment_id, str(exc))
            else:
                self.client.fail_attachment(attachment_id, str(exc))
            self._error(str(exc))
            return
        outcome.complete = True
        self.client.complete_attachment(attachment_id)


def run_sync(client: FieldClient) -> SyncResult:
    """One full sync of ``client``'s store; ``already_running`` if another holds it."""
    with SyncLock(client.store.path).held() as acquired:
        if not acquired:
            return SyncResult(
                outcome=SyncOutcome.ALREADY_RUNNING,
                errors=["sync already running for this store (another thread or process)"],
            )
        return _Sync(client).run()
