"""The store's schema, version by version. Forward-only; ``PRAGMA user_version`` says where a
file stands.

Rules (SYNC.md §4.10):

- a migration is never edited once shipped: a change is a new version;
- each runs in one transaction together with its ``user_version`` bump, so a failure leaves the
  file exactly at the previous version;
- before the first migration of an existing file a copy is taken (``<store>.v<N>.bak``);
- a migration never clears data: every pending op survives every upgrade, which CI proves with a
  fixture store of each shipped version (``tests/sync/fixtures/``).

Versions:

1. the first field client (0.1): outbox states ``pending|sent|failed``, one implicit account.
2. per-device outbox (``UNIQUE(device_id, device_seq)``, so a change of user starts a new device
   at seq 1), the server's per-op result, terminal states ``done|conflict|rejected|gone``,
   attachment upload offsets, local pending fields on reports, replacement-sync bookkeeping.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobile_sync.client import crash
from mobile_sync.client.errors import MigrationError, StoreTooNewError

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "backup_path",
    "refuse_newer",
    "schema_version",
    "upgrade",
]

Migration = Callable[[sqlite3.Connection], None]


def _run(connection: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, and a migration must stay one transaction.
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


def _v1_first_store(connection: sqlite3.Connection) -> None:
    _run(
        connection,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE reports (
            report_id TEXT PRIMARY KEY,
            server_version INTEGER NOT NULL DEFAULT 0,
            record TEXT
        );
        CREATE TABLE outbox (
            op_id TEXT PRIMARY KEY,
            device_seq INTEGER NOT NULL UNIQUE,
            report_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            body BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at_ms INTEGER NOT NULL
        );
        CREATE TABLE attachments (
            attachment_id TEXT PRIMARY KEY,
            report_id TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            length INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'waiting'
        )
        """,
    )


def _pending_fields_v2(bodies: list[bytes]) -> dict[str, Any]:
    """The fields unsent ops put on top of the server's copy (frozen with migration 2)."""
    fields: dict[str, Any] = {}
    for body in bodies:
        op = json.loads(body)
        payload = op.get("payload") or {}
        if op.get("kind") == "create":
            fields.update({k: v for k, v in payload.items() if k not in ("attachments", "sealed")})
        elif op.get("kind") == "set_fields":
            fields.update(payload.get("fields") or {})
        elif op.get("kind") == "transition_status":
            fields["verification_state"] = payload.get("to_state")
        elif op.get("kind") == "withdraw":
            fields["verification_state"] = "withdrawn"
    return fields


def _v2_devices_results_offsets(connection: sqlite3.Connection) -> None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
    device_id = row[0] if row else ""
    _run(
        connection,
        """
        CREATE TABLE outbox_v2 (
            op_id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL,
            device_seq INTEGER NOT NULL CHECK (device_seq >= 1),
            report_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            body BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'done', 'conflict', 'rejected', 'gone')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            result TEXT,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            UNIQUE (device_id, device_seq)
        );
        CREATE TABLE attachments_v2 (
            attachment_id TEXT PRIMARY KEY,
            report_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            op_id TEXT,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            length INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'photo',
            uploaded_offset INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'complete', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at_ms INTEGER NOT NULL DEFAULT 0
        )
        """,
    )
    # v1 called an acknowledged op "sent" and a refused one "failed" (its reason in last_error).
    connection.execute(
        """
        INSERT INTO outbox_v2 (op_id, device_id, device_seq, report_id, kind, body, state,
                               attempts, last_error, result, created_at_ms, updated_at_ms)
        SELECT op_id, ?, device_seq, report_id, kind, body,
               CASE state WHEN 'sent' THEN 'done' WHEN 'failed' THEN 'rejected' ELSE 'pending' END,
               attempts, last_error, NULL, created_at_ms, created_at_ms
        FROM outbox
        """,
        (device_id,),
    )
    connection.execute(
        """
        INSERT INTO attachments_v2 (attachment_id, report_id, device_id, op_id, path, sha256,
                                    length, media_type, state)
        SELECT attachment_id, report_id, ?,
               (SELECT o.op_id FROM outbox AS o WHERE o.report_id = attachments.report_id
                AND o.kind = 'create' ORDER BY o.device_seq LIMIT 1),
               path, sha256, length, media_type,
               CASE state WHEN 'sent' THEN 'complete' ELSE 'pending' END
        FROM attachments
        """,
        (device_id,),
    )
    _run(
        connection,
        """
        DROP TABLE outbox;
        ALTER TABLE outbox_v2 RENAME TO outbox;
        CREATE INDEX outbox_by_state ON outbox (device_id, state, device_seq);
        CREATE INDEX outbox_by_report ON outbox (report_id, state);
        DROP TABLE attachments;
        ALTER TABLE attachments_v2 RENAME TO attachments;
        CREATE INDEX attachments_by_state ON attachments (device_id, state);
        ALTER TABLE reports ADD COLUMN acked_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE reports ADD COLUMN detail TEXT;
        ALTER TABLE reports ADD COLUMN local_fields TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE reports ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE reports ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE replacement_seen (report_id TEXT PRIMARY KEY);
        UPDATE meta SET key = 'pull_cursor' WHERE key = 'cursor'
        """,
    )
    for (report_id,) in connection.execute("SELECT DISTINCT report_id FROM outbox").fetchall():
        bodies = [
            bytes(body)
            for (body,) in connection.execute(
                "SELECT body FROM outbox WHERE report_id = ? AND state = 'pending' "
                "ORDER BY device_seq",
                (report_id,),
            )
        ]
        fields = json.dumps(_pending_fields_v2(bodies), sort_keys=True)
        connection.execute(
            "INSERT INTO reports (report_id, local_fields) VALUES (?, ?) "
            "ON CONFLICT (report_id) DO UPDATE SET local_fields = excluded.local_fields",
            (report_id, fields),
        )


MIGRATIONS: dict[int, Migration] = {
    1: _v1_first_store,
    2: _v2_devices_results_offsets,
}
LATEST_VERSION = max(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def backup_path(store_path: Path, version: int) -> Path:
    return store_path.with_name(f"{store_path.name}.v{version}.bak")


def _back_up(connection: sqlite3.Connection, store_path: Path, version: int) -> Path:
    target = backup_path(store_path, version)
    if not target.exists():  # the first copy of that version is the one worth keeping
        partial = target.with_name(target.name + ".partial")
        copy = sqlite3.connect(partial)
        try:
            connection.backup(copy)  # consistent, WAL included, unlike a file copy
        finally:
            copy.close()
        partial.replace(target)
    return target


def refuse_newer(connection: sqlite3.Connection, store_path: Path) -> None:
    current = schema_version(connection)
    if current > LATEST_VERSION:
        raise StoreTooNewError(
            f"The store {store_path} was written by a newer Vigil (schema {current}; this app "
            f"knows up to {LATEST_VERSION}). Update the app; nothing was changed."
        )


def upgrade(connection: sqlite3.Connection, store_path: Path, *, target: int | None = None) -> int:
    """Bring the store to ``target`` (default: the latest version); returns the version reached.

    Raises :class:`StoreTooNewError` for a file from a newer app and :class:`MigrationError`
    when a step fails (the file then stays at the version before that step)."""
    goal = LATEST_VERSION if target is None else target
    refuse_newer(connection, store_path)
    current = schema_version(connection)
    if current >= goal:
        return current
    backup = _back_up(connection, store_path, current) if current > 0 else None
    for version in range(current + 1, goal + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            if schema_version(connection) >= version:
                connection.execute("COMMIT")
                continue
            MIGRATIONS[version](connection)
            crash.point("mid_migration")
            connection.execute(f"PRAGMA user_version = {version:d}")
            connection.execute("COMMIT")
        except BaseException as exc:
            connection.execute("ROLLBACK")
            if not isinstance(exc, Exception):
                raise
            kept = f" A copy from before the upgrade is at {backup}." if backup else ""
            raise MigrationError(
                f"Upgrading the store {store_path} to schema {version} failed ({exc}). It was "
                f"left at schema {version - 1} with every unsent report intact.{kept} This "
                "version of the app will not use it; report the problem."
            ) from exc
    return goal
