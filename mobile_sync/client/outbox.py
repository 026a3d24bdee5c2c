"""The transactional outbox: ops are written here, offline, and leave only by push.

An op is serialised **once**, when it is created, and those bytes are what every push sends for
it, forever (same op_id, same bytes): the server's de-duplication fingerprint and any
``Idempotency-Key`` check can then never see two versions of one op. The op row, the local view
change and ``next_device_seq + 1`` are written in one SQLite transaction, so an op never exists
without its seq, and a seq is never used twice or skipped.

States: ``pending`` (not acknowledged; includes ops in flight), ``done`` (applied or duplicate),
``conflict`` (applied, flagged for HQ review), ``rejected`` and ``gone`` (terminal: kept, shown
as needing attention, never silently dropped).

Sealed ops (a ``seal_update``, a ``create`` with a ``sealed`` part) lose their ciphertext once
the server has applied them (SYNC.md §4.4): a seized phone then holds no copy the server already
keeps. The wipe is part of the transaction that records the answer, so until that commits the
op is resent with its original bytes; what stays is the op's header, fingerprint and result.
Any other answer (``rejected``, ``gone``, ``deferred``, none) keeps the op whole.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from mobile_sync.client import crash, replica
from mobile_sync.client.errors import OpTooLargeError
from mobile_sync.client.ids import new_op_id
from mobile_sync.client.store import get_meta, set_meta
from mobile_sync.protocol.models import OpKind, OpResult, OpStatus, payload_sha256

__all__ = [
    "ACKED_STATES",
    "MAX_OP_BYTES",
    "OP_SCHEMA_VERSION",
    "TERMINAL_STATES",
    "AttentionItem",
    "OutboxEntry",
    "PushTally",
    "append_op",
    "apply_results",
    "needs_attention",
    "note_attempt",
    "pending_ops",
    "requeue_from",
    "serialise_op",
    "state_counts",
    "wiped_count",
    "without_ciphertext",
]

#: The payload schema this client writes (the ReportCreate of protocol v1).
OP_SCHEMA_VERSION = 1
#: Larger ops are refused at creation: they might fit no server's batch limit and, having a
#: device_seq, would then block every later op (attachments travel separately).
MAX_OP_BYTES = 256 * 1024

ACKED_STATES = ("done", "conflict")
TERMINAL_STATES = ("rejected", "gone")

_STATE_FOR = {
    OpStatus.APPLIED: "done",
    OpStatus.DUPLICATE: "done",
    OpStatus.CONFLICT_FLAGGED: "conflict",
    OpStatus.REJECTED: "rejected",
    OpStatus.GONE: "gone",
}


def serialise_op(op: dict[str, Any]) -> bytes:
    return json.dumps(op, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


#: Marks an op whose sealed ciphertext was wiped (SQL: ``json_extract(body, …) = 1``).
WIPED_MARK = "ciphertext_wiped"
#: Where each kind carries a sealed payload version, as a JSON path into the op.
SEALED_PATHS = {"seal_update": ("payload",), "create": ("payload", "sealed")}


#: SQL: the outbox row's op had its ciphertext wiped.
_IS_WIPED = (
    "("
    + " OR ".join(
        f"coalesce(json_extract(body, '$.{'.'.join(path)}.{WIPED_MARK}'), 0) = 1"
        for path in SEALED_PATHS.values()
    )
    + ")"
)
#: Shown for a wiped op a server refuses later: a server restored from a backup taken before it
#: applied the op no longer has the payload, and its resend (without the ciphertext) cannot
#: match its fingerprint. Terminal, so no later op waits behind it (I1), and visible.
WIPED_LOST = "sealed_payload_lost"


def without_ciphertext(body: bytes) -> bytes | None:
    """The op with its sealed ciphertext removed and marked wiped, or None if it carries none.
    Everything else (op_id, device_seq, payload_sha256, versions, manifest) is kept: the ledger
    of what was sent, and the fingerprint a probe of a restored server is answered by."""
    op = json.loads(body)
    holder: Any = op
    for key in SEALED_PATHS.get(op.get("kind"), ()):
        holder = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or "ciphertext_b64" not in holder:
        return None
    del holder["ciphertext_b64"]
    holder[WIPED_MARK] = True
    return serialise_op(op)


@dataclass(frozen=True)
class OutboxEntry:
    op_id: str
    device_id: str
    device_seq: int
    report_id: str
    kind: str
    body: bytes
    state: str
    attempts: int
    last_error: str | None


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    op_id, device_id, seq, report_id, kind, body, state, attempts, last_error = row
    return OutboxEntry(
        op_id, device_id, int(seq), report_id, kind, bytes(body), state, int(attempts), last_error
    )


def append_op(
    connection: sqlite3.Connection,
    *,
    device_id: str,
    report_id: uuid.UUID,
    kind: OpKind,
    payload: dict[str, Any],
    base_version: int,
    device_time_ms: int,
    device_uptime_ms: int,
    boot_id: uuid.UUID,
) -> OutboxEntry:
    """Write one op (inside the caller's transaction): outbox row, next_device_seq + 1 and the
    report's pending fields, all or nothing."""
    seq = int(get_meta(connection, "next_device_seq") or "1")
    op_id = new_op_id()
    op = {
        "op_id": str(op_id),
        "device_id": device_id,
        "device_seq": seq,
        "report_id": str(report_id),
        "kind": kind.value,
        "base_version": base_version,
        "schema_version": OP_SCHEMA_VERSION,
        "device_time_ms": device_time_ms,
        "device_uptime_ms": device_uptime_ms,
        "boot_id": str(boot_id),
        "payload": payload,
        "payload_sha256": payload_sha256(payload),
    }
    body = serialise_op(op)
    if len(body) > MAX_OP_BYTES:
        raise OpTooLargeError(
            f"This change is {len(body)} bytes; at most {MAX_OP_BYTES} fit in one operation. "
            "Shorten the narrative or send large content as an attachment."
        )
    connection.execute(
        "INSERT INTO outbox (op_id, device_id, device_seq, report_id, kind, body, state, "
        "created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (
            str(op_id),
            device_id,
            seq,
            str(report_id),
            kind.value,
            body,
            device_time_ms,
            device_time_ms,
        ),
    )
    crash.point("mid_local_write")
    set_meta(connection, "next_device_seq", seq + 1)
    replica.refresh_local_fields(connection, str(report_id), device_time_ms)
    return OutboxEntry(
        str(op_id), device_id, seq, str(report_id), kind.value, body, "pending", 0, None
    )


def pending_ops(
    connection: sqlite3.Connection, device_id: str, *, limit: int | None = None
) -> list[OutboxEntry]:
    """Unacknowledged ops in device_seq order (the only order the server accepts)."""
    sql = (
        "SELECT op_id, device_id, device_seq, report_id, kind, body, state, attempts, last_error "
        "FROM outbox WHERE device_id = ? AND state = 'pending' ORDER BY device_seq"
    )
    params: tuple[Any, ...] = (device_id,)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    return [_entry(row) for row in connection.execute(sql, params)]


def latest_settled_op(connection: sqlite3.Connection, device_id: str) -> OutboxEntry | None:
    """The newest op the server has answered for: a probe of what a restored server still has."""
    row = connection.execute(
        "SELECT op_id, device_id, device_seq, report_id, kind, body, state, attempts, last_error "
        "FROM outbox WHERE device_id = ? AND state != 'pending' ORDER BY device_seq DESC LIMIT 1",
        (device_id,),
    ).fetchone()
    return None if row is None else _entry(row)


def note_attempt(
    connection: sqlite3.Connection, op_ids: list[str], now_ms: int, error: str | None = None
) -> None:
    for op_id in op_ids:
        if error is None:
            connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, updated_at_ms = ? WHERE op_id = ?",
                (now_ms, op_id),
            )
        else:
            connection.execute(
                "UPDATE outbox SET last_error = ?, updated_at_ms = ? WHERE op_id = ? "
                "AND state = 'pending'",
                (error[:500], now_ms, op_id),
            )


@dataclass
class PushTally:
    """What one push round's results did."""

    by_status: dict[str, int]
    expected_device_seq: int | None = None
    settled: int = 0
    #: Sealed ops whose ciphertext this round wiped.
    wiped: int = 0

    def add(self, status: str) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1


def apply_results(
    connection: sqlite3.Connection,
    sent: list[OutboxEntry],
    results: list[OpResult],
    now_ms: int,
) -> PushTally:
    """Store the server's per-op results (inside the caller's transaction). A result for an op
    that was not in the batch is ignored; an op without a result stays pending. A sealed op the
    server applied loses its ciphertext here, in the same transaction as its new state."""
    by_id = {entry.op_id: entry for entry in sent}
    tally = PushTally(by_status={})
    touched: set[str] = set()
    for result in results:
        entry = by_id.get(str(result.op_id))
        if entry is None or entry.device_seq != result.device_seq:
            continue
        tally.add(result.status.value)
        if result.status is OpStatus.DEFERRED:
            expected = result.expected_device_seq
            if expected is not None and (
                tally.expected_device_seq is None or expected < tally.expected_device_seq
            ):
                tally.expected_device_seq = expected
            continue
        state = _STATE_FOR[result.status]
        if result.status is OpStatus.DUPLICATE and (
            entry.state == "conflict" or result.original_status is OpStatus.CONFLICT_FLAGGED
        ):
            state = "conflict"  # a resend's duplicate does not unflag what HQ must review
        error = result.error.code + ": " + result.error.detail if result.error else None
        connection.execute(
            "UPDATE outbox SET state = ?, result = ?, last_error = ?, updated_at_ms = ? "
            "WHERE op_id = ?",
            (state, result.model_dump_json(), error, now_ms, entry.op_id),
        )
        tally.settled += 1
        if state in ACKED_STATES:
            # Applied, duplicate (applied before) or conflict_flagged (applied, for HQ to
            # review): the server holds the blob. Never for rejected/gone: nothing was stored.
            wiped = without_ciphertext(entry.body)
            if wiped is not None:
                connection.execute(
                    "UPDATE outbox SET body = ? WHERE op_id = ?", (wiped, entry.op_id)
                )
                tally.wiped += 1
            if result.version is not None:
                connection.execute(
                    "UPDATE reports SET acked_version = max(acked_version, ?) WHERE report_id = ?",
                    (result.version, entry.report_id),
                )
        touched.add(entry.report_id)
    crash.point("mid_ack")
    for report_id in touched:
        replica.refresh_local_fields(connection, report_id, now_ms)
    return tally


def requeue_from(connection: sqlite3.Connection, device_id: str, seq: int, now_ms: int) -> int:
    """The server expects ``seq`` next: it lost what we thought it had (restored from a backup).
    Every op from there on goes back to pending and is resent byte for byte."""
    requeued = connection.execute(
        "UPDATE outbox SET state = 'pending', updated_at_ms = ? "
        "WHERE device_id = ? AND device_seq >= ? AND state != 'pending'",
        (now_ms, device_id, seq),
    ).rowcount
    for (report_id,) in connection.execute(
        "SELECT DISTINCT report_id FROM outbox WHERE device_id = ? AND device_seq >= ?",
        (device_id, seq),
    ).fetchall():
        replica.refresh_local_fields(connection, report_id, now_ms)
    return int(requeued)


def wiped_count(connection: sqlite3.Connection, device_id: str) -> int:
    """Sealed ops whose ciphertext is gone from this device (the server applied them)."""
    row = connection.execute(
        f"SELECT count(*) FROM outbox WHERE device_id = ? AND {_IS_WIPED}",  # noqa: S608 - constant
        (device_id,),
    ).fetchone()
    return int(row[0])


def state_counts(connection: sqlite3.Connection, device_id: str) -> dict[str, int]:
    counts = {state: 0 for state in ("pending", "done", "conflict", "rejected", "gone")}
    for state, count in connection.execute(
        "SELECT state, count(*) FROM outbox WHERE device_id = ? GROUP BY state", (device_id,)
    ):
        counts[state] = int(count)
    return counts


@dataclass(frozen=True)
class AttentionItem:
    """Something the officer must see: an op the server refused (``rejected``, ``gone``) or
    holds for HQ to fix (``quarantined``), with the server's reason; or an attachment that
    cannot be sent (``item="attachment"``)."""

    item: str
    id: str
    report_id: str
    kind: str
    state: str
    code: str | None
    reason: str
    device_seq: int | None = None


def needs_attention(connection: sqlite3.Connection, device_id: str) -> list[AttentionItem]:
    items = []
    # Quarantined ops were applied, but held for HQ to fix: the officer should know the report
    # is not on the map yet, and why.
    for op_id, seq, report_id, kind, state, result, last_error, wiped in connection.execute(
        "SELECT op_id, device_seq, report_id, kind, state, result, last_error, "  # noqa: S608
        f"{_IS_WIPED} FROM outbox "  # constant SQL: _IS_WIPED is built from constants
        "WHERE device_id = ? AND (state IN ('rejected', 'gone') OR "
        "(state = 'done' AND json_extract(result, '$.quarantined') = 1)) ORDER BY device_seq",
        (device_id,),
    ):
        code = None
        reason = last_error or state
        if result:
            parsed = OpResult.model_validate_json(result)
            if parsed.quarantined:
                state = "quarantined"
            if parsed.error is not None:
                code, reason = parsed.error.code, parsed.error.detail
        if wiped and state in TERMINAL_STATES:
            reason = (
                "the server no longer has this sealed payload (restored from an older backup?) "
                "and this device wiped its copy once the server had first applied it, so it "
                f"cannot be sent again; HQ must recover it from the server's backup ({code}: "
                f"{reason})"
            )
            code = WIPED_LOST
        items.append(AttentionItem("op", op_id, report_id, kind, state, code, reason, int(seq)))
    for attachment_id, report_id, media_type, last_error in connection.execute(
        "SELECT attachment_id, report_id, media_type, last_error FROM attachments "
        "WHERE device_id = ? AND state = 'failed' ORDER BY created_at_ms",
        (device_id,),
    ):
        items.append(
            AttentionItem(
                "attachment",
                attachment_id,
                report_id,
                media_type,
                "failed",
                None,
                last_error or "cannot be sent",
            )
        )
    return items
