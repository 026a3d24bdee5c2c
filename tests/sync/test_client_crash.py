"""The client killed at each named crash point, then a fresh client on the same store file: no
op lost, none applied twice (I1, I2; SYNC.md §6 scenarios 7, 8, 22)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from mobile_sync.client import SyncOutcome, crash
from server.reports.enums import AttachmentState
from server.reports.models import Attachment
from tests.sync.test_client_kit import (
    report_fields,
    server_ops,
    server_reports,
    signed_in,
)

pytestmark = pytest.mark.integration


class SimulatedCrashError(Exception):
    """Raised by a crash hook: everything after it in the client does not run."""


def crash_at(point: str, *, after: int = 0) -> Any:
    """A hook that crashes the ``after + 1``-th time the client reaches ``point``."""
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name != point:
            return
        seen["count"] += 1
        if seen["count"] > after:
            raise SimulatedCrashError(point)

    return hook


@pytest.mark.parametrize(
    ("point", "answer_after_restart"),
    [
        ("after_local_write", "applied"),
        ("before_send", "applied"),
        ("after_send_before_ack", "duplicate"),
    ],
)
def test_a_crash_around_the_push_loses_and_duplicates_nothing(
    api, session, tmp_path, monkeypatch, point, answer_after_restart
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    monkeypatch.setattr(crash, "hook", crash_at(point))

    def write_then_sync() -> None:
        device.client.create_report(report_fields())
        device.client.sync()

    with pytest.raises(SimulatedCrashError):
        write_then_sync()

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    [entry] = restarted.client.outbox()
    assert entry.state == "pending"  # whatever happened, no ack was stored
    result = restarted.client.sync()

    assert result.pushed == {answer_after_restart: 1}
    [after] = restarted.client.outbox()
    assert (after.state, after.body) == ("done", entry.body)
    assert server_reports(session, entry.report_id) == 1
    assert server_ops(session, entry.op_id) == 1


def test_a_crash_inside_the_local_write_leaves_nothing_to_send(api, session, tmp_path, monkeypatch):
    device = signed_in(api, tmp_path / "s.sqlite3")
    monkeypatch.setattr(crash, "hook", crash_at("mid_local_write"))
    with pytest.raises(SimulatedCrashError):
        device.client.create_report(report_fields())

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    assert restarted.client.outbox() == []
    report_id = restarted.client.create_report(report_fields())
    assert [e.device_seq for e in restarted.client.outbox()] == [1]  # no hole in the seqs
    assert restarted.client.sync().pushed == {"applied": 1}  # a hole would be deferred forever
    assert server_reports(session, report_id) == 1


def test_a_crash_mid_pull_page_repulls_the_page_and_converges(api, tmp_path, monkeypatch):
    writer = signed_in(api, tmp_path / "writer.sqlite3")
    written = {str(writer.client.create_report(report_fields())) for _ in range(3)}
    writer.client.sync()
    reader = signed_in(api, tmp_path / "reader.sqlite3", pull_limit=2)  # same user, 2nd phone
    monkeypatch.setattr(crash, "hook", crash_at("mid_pull_page", after=1))  # in the 2nd page

    with pytest.raises(SimulatedCrashError):
        reader.client.sync()

    monkeypatch.setattr(crash, "hook", None)
    restarted = reader.reopen(pull_limit=2)
    first_page = {r["id"] for r in restarted.client.reports()}
    assert len(first_page) == 2  # page 1 and its cursor committed; page 2 rolled back whole
    assert first_page < written
    result = restarted.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED
    replica = {r["id"]: r for r in restarted.client.reports()}
    assert set(replica) == written
    assert {r["server_version"] for r in replica.values()} == {1}
    assert restarted.client.sync().pulled == 0  # nothing new: repeats are skipped by version


def test_a_crash_mid_upload_resumes_from_the_servers_offset(api, session, tmp_path, monkeypatch):
    device = signed_in(api, tmp_path / "s.sqlite3")
    data = bytes(range(256)) * 1200  # 307,200 bytes: chunks of 64 KiB, 128 KiB, then the rest
    audio = tmp_path / "statement.ogg"
    audio.write_bytes(data)
    device.client.create_report(report_fields(), [audio])
    monkeypatch.setattr(crash, "hook", crash_at("mid_upload", after=1))

    with pytest.raises(SimulatedCrashError):
        device.client.sync()  # killed after the server took the 2nd chunk, before we noted it

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    stored_offset = restarted.client.status().upload_bytes_pending
    assert stored_offset == len(data) - 64 * 1024  # the device only knew of the 1st chunk
    result = restarted.client.sync()

    [upload] = result.uploads
    assert upload.complete
    assert upload.stats.bytes_sent == len(data) - (64 + 128) * 1024  # no byte sent twice
    assert upload.stats.restarts == 0
    sha = hashlib.sha256(data).hexdigest()
    attachment = session.scalars(select(Attachment).where(Attachment.sha256 == sha)).one()
    session.refresh(attachment)
    assert attachment.state is AttachmentState.COMPLETE
    assert attachment.received_bytes == len(data)
