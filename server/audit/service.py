"""Appending to and verifying the hash-chained audit log.

Appends happen inside the caller's transaction, so an audit row exists exactly when the change
it records was committed. The chain head row is locked first (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite transactions already hold the write lock), which serialises appends and keeps
``seq`` gap-free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import Actor
from server.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from server.db import bulk
from server.db.base import utcnow

__all__ = [
    "Appended",
    "ChainBreak",
    "Entry",
    "defer_denial",
    "event_hash",
    "keep_denials",
    "list_",
    "record",
    "record_denial",
    "record_many",
    "verify_chain",
]

_HEAD_ID = 1


def event_hash(
    *,
    seq: int,
    occurred_at: datetime,
    actor_user_id: int | None,
    actor_username: str | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    request_id: str | None,
    reason: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 over the canonical JSON of an event's content and the previous hash."""
    canonical = json.dumps(
        {
            "seq": seq,
            "occurred_at": occurred_at.isoformat(timespec="microseconds"),
            "actor_user_id": actor_user_id,
            "actor_username": actor_username,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "request_id": request_id,
            "reason": reason,
            "details": details,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _locked_head(session: Session) -> AuditChainHead:
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.id == _HEAD_ID).with_for_update()
    ).one_or_none()
    if head is None:
        head = AuditChainHead(id=_HEAD_ID, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def _as_stored(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` as the database will return them, so the hash is over what is stored: a
    JSON round trip, unless they are already flat JSON scalars (most events)."""
    if all(
        isinstance(k, str) and (v is None or type(v) in (str, int, bool))
        for k, v in details.items()
    ):
        return details
    stored: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return stored


@dataclass(frozen=True)
class Entry:
    """One event to append (see :func:`record`)."""

    actor: Actor | None
    action: str
    object_type: str | None = None
    object_id: object | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None
    request_id: str | None = None


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    object_type: str | None = None,
    object_id: object | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> Appended:
    """Append one event. ``details`` must hold ids, counts and field names only."""
    entry = Entry(actor, action, object_type, object_id, reason, details, request_id)
    return record_many(session, [entry])[0]


@dataclass(frozen=True)
class Appended:
    """Where an appended event sits in the chain."""

    seq: int
    hash: str
    prev_hash: str


def record_many(session: Session, entries: Sequence[Entry]) -> list[Appended]:
    """Append events in order, with one lock of the chain head, one statement for the events
    and one update of the head (a sync push of a hundred reports appends a hundred events)."""
    if not entries:
        return []
    head = _locked_head(session)
    seq, prev_hash = head.last_seq, head.last_hash
    occurred_at = utcnow()
    events: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        actor = entry.actor
        clean_details = _as_stored(entry.details or {})
        fields: dict[str, Any] = {
            "seq": seq,
            "occurred_at": occurred_at,
            "actor_user_id": actor.user_id if actor else None,
            "actor_username": actor.username if actor else None,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": str(entry.object_id) if entry.object_id is not None else None,
            "request_id": entry.request_id or (actor.request_id if actor else None),
            "reason": entry.reason,
            "details": clean_details,
            "prev_hash": prev_hash,
        }
        prev_hash = event_hash(**fields)
        events.append({**fields, "hash": prev_hash})
    bulk.insert_rows(session, AuditEvent.__table__, events)
    head.last_seq = seq
    head.last_hash = prev_hash
    session.flush()
    return [Appended(e["seq"], e["hash"], e["prev_hash"]) for e in events]


#: ``session.info`` key of the denials a request recorded, to re-append after its rollback.
_DENIALS_KEY = "vigil.audit.denials"


def record_denial(
    session: Session,
    *,
    actor: Actor | None,
    object_type: str,
    object_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an ``authz_denied`` event that outlives the refused request (SECURITY.md Z1).

    The refusal raises, so the request's transaction is rolled back and the event with it; the
    request dependency then calls :func:`keep_denials`, which appends it again and commits.
    """
    kwargs: dict[str, Any] = {
        "actor": actor,
        "action": "authz_denied",
        "object_type": object_type,
        "object_id": object_id,
        "details": details,
    }
    session.info.setdefault(_DENIALS_KEY, []).append(kwargs)
    record(session, **kwargs)


def defer_denial(
    session: Session,
    *,
    actor: Actor | None,
    object_type: str,
    object_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    """Queue an ``authz_denied`` event for :func:`keep_denials` without appending it now
    (for refusals noticed after the request's work was already rolled back)."""
    session.info.setdefault(_DENIALS_KEY, []).append(
        {
            "actor": actor,
            "action": "authz_denied",
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
        }
    )


def keep_denials(session: Session) -> None:
    """After a rollback: append and commit the denials the rolled-back work had recorded."""
    pending: list[dict[str, Any]] = session.info.pop(_DENIALS_KEY, [])
    if not pending:
        return
    for kwargs in pending:
        record(session, **kwargs)
    session.commit()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str


def _events(session: Session, batch: int = 2000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain(session: Session) -> ChainBreak | None:
    """Walk the chain; return the first break, or None if every link holds."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    last_seen = 0
    for event in _events(session):
        if event.seq != expected_seq:
            return ChainBreak(expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != expected_prev:
            return ChainBreak(event.seq, "previous-hash link does not match")
        recomputed = event_hash(
            seq=event.seq,
            occurred_at=event.occurred_at,
            actor_user_id=event.actor_user_id,
            actor_username=event.actor_username,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            request_id=event.request_id,
            reason=event.reason,
            details=event.details,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return ChainBreak(event.seq, "content does not match its hash")
        expected_prev = event.hash
        expected_seq += 1
        last_seen = event.seq
    head = session.get(AuditChainHead, _HEAD_ID)
    if head is not None and (head.last_seq != last_seen or head.last_hash != expected_prev):
        return ChainBreak(last_seen + 1, "chain head does not match the last event (truncated?)")
    return None


def list_(
    session: Session,
    *,
    after_seq: int = 0,
    limit: int = 100,
    action: str | None = None,
    object_id: str | None = None,
) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if action:
        statement = statement.where(AuditEvent.action == action)
    if object_id:
        statement = statement.where(AuditEvent.object_id == object_id)
    return list(session.scalars(statement.order_by(AuditEvent.seq).limit(limit)))
