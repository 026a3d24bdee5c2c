"""The pull log: one row per report change, numbered in commit order.

A puller's cursor is the last seq it has seen. If seqs were handed out when a transaction
*started* writing, a later transaction could commit seq N+1 while N was still open; a puller
would then move its cursor past N and never see it (SYNC.md §4.3 step 5, verified on
PostgreSQL 15). So changes are only *noted* during the transaction and numbered at the very
end, in ``before_commit``: on PostgreSQL under an advisory lock held until commit, so numbering
order is commit order; on SQLite the writer already holds the database until commit.

Each report keeps only its newest row (a pull sends current state, not diffs).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, event, text, update
from sqlalchemy.orm import Session

from server.db import bulk
from server.db.base import utcnow
from server.sync.models import Change, SyncState

__all__ = [
    "ORDERING_LOCK",
    "TOMBSTONE",
    "UPSERT",
    "note_change",
    "number_pending_changes",
    "ordering_enabled",
]

UPSERT = "upsert"
TOMBSTONE = "tombstone"
_PENDING = "vigil_pending_changes"
#: Advisory lock key serialising seq allocation with commit (any constant; "VCHG").
ORDERING_LOCK = 0x56434847

#: Tests switch the ordering off to show what it prevents (SYNC.md §6 scenario 21).
_ordering = {"enabled": True}


def ordering_enabled(enabled: bool) -> None:
    _ordering["enabled"] = enabled


def note_change(
    session: Session, *, report_id: uuid.UUID, version: int, kind: str = UPSERT
) -> None:
    """Record that ``report_id`` changed in this transaction (numbered at commit)."""
    pending: dict[uuid.UUID, tuple[int, str]] = session.info.setdefault(_PENDING, {})
    current = pending.get(report_id)
    if current is None or version >= current[0] or kind == TOMBSTONE:
        pending[report_id] = (version, kind)


@event.listens_for(Session, "before_commit")
def number_pending_changes(session: Session) -> None:
    """Give this transaction's noted changes their seqs: the last thing before COMMIT. (Tests
    call it early to hold a numbered transaction open, as a slow commit would.)

    SQLAlchemy also fires ``before_commit`` when a savepoint is released; numbering then would
    take the ordering lock at the first released savepoint and hold it for the rest of the
    transaction, and cost four statements per savepoint. Only the real commit numbers."""
    if session.in_nested_transaction():
        return
    pending: dict[uuid.UUID, tuple[int, str]] = session.info.pop(_PENDING, {})
    if not pending:
        return
    bind: Any = session.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres and _ordering["enabled"]:
        # Taken last, held until COMMIT: no other writer can number a change until we commit.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORDERING_LOCK})
    report_ids = list(pending)
    if postgres:
        seqs = list(
            session.execute(
                text("SELECT nextval('change_seq') FROM generate_series(1, :n)"),
                {"n": len(pending)},
            ).scalars()
        )
    else:
        # A counter, not max(seq): compaction and pruning delete rows, seqs must never recur.
        last = session.execute(
            update(SyncState)
            .where(SyncState.id == 1)
            .values(last_change_seq=SyncState.last_change_seq + len(pending))
            .returning(SyncState.last_change_seq)
        ).scalar_one()
        seqs = list(range(last - len(pending) + 1, last + 1))
    session.execute(delete(Change).where(bulk.one_of(session, Change.report_id, report_ids)))
    now = utcnow()
    rows = []
    for seq, report_id in zip(seqs, report_ids, strict=True):
        version, kind = pending[report_id]
        rows.append(
            {
                "seq": int(seq),
                "report_id": report_id,
                "version": version,
                "kind": kind,
                "committed_at": now,
            }
        )
    bulk.insert_rows(session, Change.__table__, rows)


@event.listens_for(Session, "after_soft_rollback")
def _forget_changes(session: Session, previous_transaction: Any) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)
