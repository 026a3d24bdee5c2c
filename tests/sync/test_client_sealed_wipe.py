"""Sealed ops' ciphertext leaves the device once the server has it (SYNC.md §4.4 "Sealed ops are
wiped after `applied`", §4.9 "a seized phone should reveal as little as possible"): after
``applied`` (or a ``duplicate`` / ``conflict_flagged``, which are applied too) no byte of it is
left in the store's files; before the final answer, and after a refusal, the op is kept (and
resent) byte for byte (I1)."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobile_sync.client import SyncOutcome, crash
from mobile_sync.client.outbox import OutboxEntry
from mobile_sync.client.store import Store
from server.sync import service as sync_service
from server.sync.models import SealedBlob
from tests.sync.test_client_cli import Field
from tests.sync.test_client_crash import SimulatedCrashError, crash_at
from tests.sync.test_client_kit import (
    Device,
    lose_response,
    open_device_at,
    report_fields,
    server_ops,
    signed_in,
)

pytestmark = pytest.mark.integration

PUSH = "/sync/v1/push"
MANIFEST = {"alg": "hpke-x25519-aes256gcm", "key_ids": ["gbv-2026-1"], "field_group": "core"}


def _canary(size: int) -> bytes:
    """Ciphertext stand-in whose base64 form is easy to find in a file (48-byte period, so its
    base64 repeats every 64 characters)."""
    period = b"SEALED-CANARY-sealwipe-0123456789-abcdefghijklm!"
    assert len(period) == 48
    return (period * (size // 48 + 1))[:size]


def _traces(blob: bytes) -> list[bytes]:
    """What of ``blob`` could sit in the store: its base64 (as the op carries it) and its raw
    bytes (a decoded copy)."""
    encoded = base64.b64encode(blob)
    return [encoded[:64], blob[:48]]


def _store_bytes(path: Path) -> bytes:
    """The database file and everything SQLite keeps beside it (WAL, shared memory, journal)."""
    return b"".join(
        candidate.read_bytes()
        for candidate in (
            path,
            *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")),
        )
        if candidate.exists()
    )


def _left_in_store(device: Device, blob: bytes) -> bool:
    content = _store_bytes(device.client.store.path)
    return any(trace in content for trace in _traces(blob))


def _entry(device: Device, op_id: str) -> OutboxEntry:
    (entry,) = [e for e in device.client.outbox() if e.op_id == op_id]
    return entry


def _synced_report(device: Device) -> uuid.UUID:
    report_id = device.client.create_report(report_fields())
    assert device.client.sync().pushed == {"applied": 1}
    return report_id


def _server_blobs(session: Session, report_id: uuid.UUID) -> list[bytes]:
    session.expire_all()
    return [
        bytes(blob.ciphertext)
        for blob in session.scalars(
            select(SealedBlob)
            .where(SealedBlob.report_id == report_id)
            .order_by(SealedBlob.payload_version)
        )
    ]


def _assert_wiped(before: OutboxEntry, after: OutboxEntry) -> None:
    """Wiped, and only the ciphertext: the op keeps its id, seq, header and fingerprint."""
    old, new = json.loads(before.body), json.loads(after.body)
    assert "ciphertext_b64" not in new["payload"]
    assert new["payload"]["ciphertext_wiped"] is True
    old["payload"].pop("ciphertext_b64")
    new["payload"].pop("ciphertext_wiped")
    assert new == old  # op_id, device_seq, payload_sha256, manifest, versions: all kept


# --------------------------------------------------------------------------- applied ⇒ wiped


@pytest.mark.parametrize("size", [200, 40_000], ids=["in-page", "overflow-pages"])
def test_after_applied_no_byte_of_the_ciphertext_is_left_in_the_store(api, session, tmp_path, size):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    blob = _canary(size)
    op_id = device.client.seal_update(report_id, blob, MANIFEST)
    queued = _entry(device, op_id)
    assert _left_in_store(device, blob)  # the search finds it while it is needed

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 1}
    assert _server_blobs(session, report_id) == [blob]
    after = _entry(device, op_id)
    assert (after.state, after.device_seq) == ("done", queued.device_seq)
    _assert_wiped(queued, after)
    assert not _left_in_store(device, blob)
    device.client.close()
    assert not any(t in _store_bytes(tmp_path / "s.sqlite3") for t in _traces(blob))


def test_a_duplicate_answer_wipes_too_and_the_resend_before_it_was_unchanged(
    api, session, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    blob = _canary(5_000)
    op_id = device.client.seal_update(report_id, blob, MANIFEST)
    queued = _entry(device, op_id)
    device.faults.sent.clear()
    device.faults.arm("POST", PUSH, lose_response)  # committed, answer lost: not wiped yet

    result = device.client.sync()

    pushes = device.faults.requests("POST", PUSH)
    assert len(pushes) == 2 and all(queued.body in push.content for push in pushes)
    assert result.pushed == {"duplicate": 1}
    assert server_ops(session, op_id) == 1
    _assert_wiped(queued, _entry(device, op_id))
    assert _entry(device, op_id).state == "done"
    assert not _left_in_store(device, blob)


def test_a_forked_seal_update_answered_conflict_flagged_is_wiped(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    device.client.seal_update(report_id, b"\x01first", MANIFEST)
    assert device.client.sync().pushed == {"applied": 1}
    blob = _canary(3_000)
    op_id = device.client.seal_update(report_id, blob, MANIFEST, parent_version=1)
    queued = _entry(device, op_id)
    other = _canary(2_000)[::-1]
    # A second child of version 1: a fork the server keeps and flags for HQ.
    fork = device.client.seal_update(
        report_id, other, MANIFEST, payload_version=3, parent_version=1
    )

    result = device.client.sync()

    assert result.pushed == {"applied": 1, "conflict_flagged": 1}
    assert _entry(device, op_id).state == "done" and _entry(device, fork).state == "conflict"
    _assert_wiped(queued, _entry(device, op_id))
    assert not _left_in_store(device, blob) and not _left_in_store(device, other)
    assert device.client.status().sealed_wiped == 3


# --------------------------------------------------------------------------- crash safety


@pytest.mark.parametrize("point", ["after_send_before_ack", "mid_ack"])
def test_a_crash_before_the_answer_is_recorded_resends_the_op_unchanged(
    api, session, tmp_path, monkeypatch, point
):
    """``mid_ack``: the wipe is done but the transaction recording the answer is not committed;
    the crash rolls both back together."""
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    blob = _canary(20_000)
    op_id = device.client.seal_update(report_id, blob, MANIFEST)
    queued = _entry(device, op_id)
    monkeypatch.setattr(crash, "hook", crash_at(point))

    with pytest.raises(SimulatedCrashError):
        device.client.sync()

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    kept = _entry(restarted, op_id)
    assert (kept.state, kept.body) == ("pending", queued.body)
    assert _left_in_store(restarted, blob)
    restarted.faults.sent.clear()

    result = restarted.client.sync()

    assert result.pushed == {"duplicate": 1}
    (push,) = restarted.faults.requests("POST", PUSH)
    assert queued.body in push.content  # the very bytes of the first send
    assert server_ops(session, op_id) == 1
    assert _server_blobs(session, report_id) == [blob]
    _assert_wiped(queued, _entry(restarted, op_id))
    assert not _left_in_store(restarted, blob)


# --------------------------------------------------------------------------- not applied ⇒ kept


def test_a_rejected_sealed_op_keeps_its_ciphertext(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    device.client.seal_update(report_id, b"\x01first", MANIFEST)
    assert device.client.sync().pushed == {"applied": 1}
    blob = _canary(3_000)
    # Version 1 again with other bytes: the server refuses it (sealed versions are immutable).
    op_id = device.client.seal_update(report_id, blob, MANIFEST, payload_version=1)
    queued = _entry(device, op_id)

    result = device.client.sync()

    assert result.pushed == {"rejected": 1}
    kept = _entry(device, op_id)
    assert (kept.state, kept.body) == ("rejected", queued.body)
    assert _left_in_store(device, blob)
    assert [item.id for item in device.client.status().needs_attention] == [op_id]
    assert device.client.status().sealed_wiped == 1  # only the applied first version


def _without_first_op(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    """A relay that loses the first op of the batch: the next ones arrive early (deferred)."""
    coded = request.headers.get("Content-Encoding", "").lower() == "gzip"
    body = json.loads(gzip.decompress(request.content) if coded else request.content)
    body["ops"] = body["ops"][1:]
    dropped = ("content-length", "content-encoding")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
    forged = httpx.Request(request.method, request.url, headers=headers, json=body)
    return inner.handle_request(forged)


def test_a_deferred_sealed_op_keeps_its_ciphertext_until_it_is_applied(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    device.client.add_note(report_id, "Seen from the road.")
    blob = _canary(8_000)
    op_id = device.client.seal_update(report_id, blob, MANIFEST)
    queued = _entry(device, op_id)
    device.faults.arm("POST", PUSH, _without_first_op, times=3)

    held = device.client.sync()

    assert held.pushed.get("deferred") == 3, held.pushed
    kept = _entry(device, op_id)
    assert (kept.state, kept.body) == ("pending", queued.body)
    assert _left_in_store(device, blob)

    sent = device.client.sync()

    assert sent.pushed == {"applied": 2}
    _assert_wiped(queued, _entry(device, op_id))
    assert not _left_in_store(device, blob)


# --------------------------------------------------------------------------- status


def test_status_shows_a_wiped_sealed_op_as_applied(api, session, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    device = open_device_at(field.store, field.faults, [])
    report_id = device.client.create_report(report_fields())
    blob = _canary(4_000)
    device.client.seal_update(report_id, blob, MANIFEST)
    device.client.close()

    synced = field("sync")
    assert synced.exit_code == 0, synced.output
    assert "pushed: applied 2" in synced.output

    shown = field("status")
    assert shown.exit_code == 0, shown.output
    assert "ops: 0 unsent, 2 done" in shown.output
    assert "sealed payloads: 1 wiped from this device after the server applied them" in (
        shown.output
    )
    status = json.loads(field("status", "--json").output)
    assert (status["ops"]["done"], status["sealed_wiped"]) == (2, 1)
    assert not any(t in _store_bytes(field.store) for t in _traces(blob))


# --------------------------------------------------------------------------- a restored server


def test_a_wiped_op_a_restored_server_lost_is_shown_and_blocks_no_later_op(
    api, connection, session, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    restore_point = connection.begin_nested()  # the server's backup is taken here
    blob = _canary(3_000)
    sealed = device.client.seal_update(report_id, blob, MANIFEST)
    assert device.client.sync().pushed == {"applied": 1}  # wiped: the device has no copy left
    restore_point.rollback()
    sync_service.new_epoch(session)
    session.commit()
    later = device.client.add_note(report_id, "Written after the server's backup.")

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"deferred": 1, "rejected": 1, "applied": 1}
    (push,) = [p for p in device.faults.requests("POST", PUSH) if sealed.encode() in p.content][-1:]
    assert not any(trace in push.content for trace in _traces(blob))  # nothing came back
    assert [(e.op_id, e.state) for e in device.client.outbox()[1:]] == [
        (sealed, "rejected"),
        (later, "done"),  # not held behind the lost one
    ]
    (item,) = device.client.status().needs_attention
    assert (item.id, item.code) == (sealed, "sealed_payload_lost")
    assert "wiped its copy" in item.reason and "payload_hash_mismatch" in item.reason
    assert not _left_in_store(device, blob)


def test_a_crash_after_the_wipe_committed_leaves_no_copy_once_the_store_is_reopened(
    api, tmp_path, monkeypatch
):
    """Killed between the commit and the WAL truncation: the WAL still holds the page images
    from before the wipe until the next open truncates it."""
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    blob = _canary(20_000)
    op_id = device.client.seal_update(report_id, blob, MANIFEST)
    monkeypatch.setattr(Store, "truncate_wal", lambda self: False)  # the process died first

    assert device.client.sync().pushed == {"applied": 1}

    assert _left_in_store(device, blob)  # the old pages, in the WAL
    monkeypatch.undo()
    restarted = device.reopen()
    assert not _left_in_store(restarted, blob)
    assert _entry(restarted, op_id).state == "done"
    # The wiped op still says which sealed version it was: the next one follows it.
    follow_up = restarted.client.seal_update(report_id, b"\x02next", MANIFEST)
    assert json.loads(_entry(restarted, follow_up).body)["payload"]["parent_version"] == 1
