"""The local view of reports: the server's copy as last pulled, with the fields of this
device's unsent ops laid on top (a rebase, WatermelonDB style: the server decides on push).

Pull is at-least-once, so applying a change is idempotent by version: a record whose version is
not newer than the one held is skipped, and versions never go backwards (I7).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from mobile_sync.protocol.models import Change, ChangeKind

__all__ = [
    "apply_change",
    "finish_replacement",
    "local_view",
    "pending_fields",
    "refresh_local_fields",
]

_NOT_FIELDS = ("attachments", "sealed")


def pending_fields(ops: list[dict[str, Any]]) -> dict[str, Any]:
    """What unsent ops (oldest first) change, as report fields."""
    fields: dict[str, Any] = {}
    notes: list[dict[str, Any]] = []
    attached: list[dict[str, Any]] = []
    sealed: list[Any] = []
    for op in ops:
        kind, payload = op.get("kind"), op.get("payload") or {}
        if kind == "create":
            fields.update({k: v for k, v in payload.items() if k not in _NOT_FIELDS})
        elif kind == "set_fields":
            fields.update(payload.get("fields") or {})
        elif kind == "transition_status":
            fields["verification_state"] = payload.get("to_state")
        elif kind == "withdraw":
            fields["verification_state"] = "withdrawn"
        elif kind in ("add_note", "add_verification"):
            notes.append({"id": payload.get("note_id"), "kind": kind, "body": payload.get("text")})
        elif kind == "attach":
            attached.extend(payload.get("attachments") or [])
        elif kind == "seal_update":
            sealed.append(payload.get("payload_version"))
    if notes:
        fields["pending_notes"] = notes
    if attached:
        fields["pending_attachments"] = attached
    if sealed:
        fields["pending_sealed_versions"] = sealed
    return fields


def refresh_local_fields(connection: sqlite3.Connection, report_id: str, now_ms: int) -> None:
    """Recompute a report's pending fields from its pending ops (same transaction as the op
    change that made them stale). A patrol's track ops carry the patrol id as their report id;
    they are not a report and leave the local view alone."""
    ops = [
        json.loads(body)
        for (body,) in connection.execute(
            "SELECT body FROM outbox WHERE report_id = ? AND state = 'pending' "
            "AND kind != 'track_append' ORDER BY device_seq",
            (report_id,),
        )
    ]
    if not ops and (
        connection.execute("SELECT 1 FROM reports WHERE report_id = ?", (report_id,)).fetchone()
        is None
    ):
        return
    fields = json.dumps(pending_fields(ops), sort_keys=True)
    connection.execute(
        "INSERT INTO reports (report_id, local_fields, updated_at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (report_id) DO UPDATE SET local_fields = excluded.local_fields, "
        "updated_at_ms = excluded.updated_at_ms",
        (report_id, fields, now_ms),
    )


def _has_pending(connection: sqlite3.Connection, report_id: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM outbox WHERE report_id = ? AND state = 'pending' LIMIT 1", (report_id,)
    ).fetchone()
    return row is not None


def apply_change(
    connection: sqlite3.Connection, change: Change, now_ms: int, *, replacing: bool
) -> bool:
    """Apply one pulled change; True if it changed the local view."""
    report_id = str(change.report_id)
    if replacing:
        connection.execute(
            "INSERT INTO replacement_seen (report_id) VALUES (?) ON CONFLICT DO NOTHING",
            (report_id,),
        )
    row = connection.execute(
        "SELECT server_version FROM reports WHERE report_id = ?", (report_id,)
    ).fetchone()
    held = int(row[0]) if row is not None else 0
    if change.kind is ChangeKind.UPSERT:
        if row is not None and change.version <= held:
            return False
        record = change.record or {}
        connection.execute(
            "INSERT INTO reports (report_id, server_version, detail, record, deleted, "
            "updated_at_ms) VALUES (?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (report_id) DO UPDATE SET server_version = excluded.server_version, "
            "detail = excluded.detail, record = excluded.record, deleted = 0, "
            "updated_at_ms = excluded.updated_at_ms",
            (report_id, change.version, record.get("detail"), json.dumps(record), now_ms),
        )
        return True
    if change.kind is ChangeKind.REVOKE and change.record is not None:
        # Sensitivity was raised: drop the full copy, keep only the redacted form. Applied
        # whatever the versions say: losing detail is always allowed.
        record = change.record
        connection.execute(
            "INSERT INTO reports (report_id, server_version, detail, record, updated_at_ms) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_id) DO UPDATE SET "
            "server_version = max(reports.server_version, excluded.server_version), "
            "detail = excluded.detail, record = excluded.record, "
            "updated_at_ms = excluded.updated_at_ms",
            (report_id, change.version, record.get("detail"), json.dumps(record), now_ms),
        )
        return True
    # A tombstone, or a revoke without a record (the report left this user's view): the server
    # copy goes. Unsent ops on it stay (the server will answer them gone/rejected, visibly).
    if row is None:
        return False
    if _has_pending(connection, report_id):
        connection.execute(
            "UPDATE reports SET record = NULL, detail = NULL, deleted = ?, "
            "server_version = max(server_version, ?), updated_at_ms = ? WHERE report_id = ?",
            (1 if change.kind is ChangeKind.TOMBSTONE else 0, change.version, now_ms, report_id),
        )
    else:
        connection.execute("DELETE FROM reports WHERE report_id = ?", (report_id,))
    return True


def finish_replacement(connection: sqlite3.Connection) -> int:
    """After a replacement sync re-delivered the full visible set: drop server copies it did
    not include (they are no longer visible), except reports with unsent ops. Returns how many
    were dropped."""
    dropped = connection.execute(
        "DELETE FROM reports WHERE record IS NOT NULL "
        "AND report_id NOT IN (SELECT report_id FROM replacement_seen) "
        "AND report_id NOT IN (SELECT report_id FROM outbox WHERE state = 'pending')"
    ).rowcount
    connection.execute("DELETE FROM replacement_seen")
    return int(dropped)


def local_view(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    """``(report_id, server_version, acked_version, detail, record, local_fields, deleted)`` →
    the report as the device shows it."""
    report_id, server_version, acked_version, detail, record, local_fields, deleted = row
    view: dict[str, Any] = json.loads(record) if record else {}
    local = json.loads(local_fields or "{}")
    view.update(local)
    view["id"] = report_id
    view["server_version"] = int(server_version)
    view["acked_version"] = int(acked_version)
    view["detail"] = detail or view.get("detail") or "local"
    view["has_unsent_changes"] = bool(local)
    view["deleted"] = bool(deleted)
    return view
