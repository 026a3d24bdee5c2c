"""The audit log is append-only in the database and its hash chain detects tampering."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from server.audit import service as audit

pytestmark = pytest.mark.integration


def _append(session, actor, n: int) -> list[audit.Appended]:
    return [
        audit.record(
            session,
            actor=actor,
            action="test_event",
            object_type="report",
            object_id=f"r{i}",
            details={"i": i},
        )
        for i in range(n)
    ]


def test_events_chain_and_verify(session, actor_of) -> None:
    events = _append(session, actor_of("analyst"), 5)
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    for previous, current in itertools.pairwise(events):
        assert current.prev_hash == previous.hash
    assert audit.verify_chain(session) is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'nothing_to_see' WHERE seq = :seq",
        "DELETE FROM audit_events WHERE seq = :seq",
    ],
    ids=["update", "delete"],
)
def test_database_refuses_update_and_delete(session, actor_of, statement) -> None:
    event = _append(session, actor_of("admin"), 1)[0]
    session.commit()
    with pytest.raises(DatabaseError, match="append-only"), session.begin_nested():
        session.execute(text(statement), {"seq": event.seq})


def _disable_guard(session) -> None:
    # Simulates an attacker with DDL rights (or a restored, edited dump): the chain must
    # still reveal the change.
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DROP TRIGGER audit_events_no_update"))
        session.execute(text("DROP TRIGGER audit_events_no_delete"))
    else:
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "truncate_tail"])
def test_chain_detects_tampering(session, actor_of, tamper) -> None:
    events = _append(session, actor_of("admin"), 6)
    assert audit.verify_chain(session) is None
    _disable_guard(session)
    target = events[2].seq
    if tamper == "edit":
        session.execute(
            text("UPDATE audit_events SET actor_username = 'someone-else' WHERE seq = :seq"),
            {"seq": target},
        )
    elif tamper == "delete_middle":
        session.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": target})
    else:
        session.execute(text("DELETE FROM audit_events WHERE seq >= :seq"), {"seq": target})
    session.expire_all()
    broken = audit.verify_chain(session)
    assert broken is not None
    assert broken.seq <= target + 1


def test_details_round_trip_exactly_so_hashes_verify(session, actor_of) -> None:
    audit.record(
        session,
        actor=actor_of("protection"),
        action="report_read_sensitive",
        object_type="report",
        object_id="abc",
        details={"report_ids": ["a", "b"], "nested": {"n": 1.5, "ok": True}},
    )
    session.commit()
    session.expire_all()
    assert audit.verify_chain(session) is None
