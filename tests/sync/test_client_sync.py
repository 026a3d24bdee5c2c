"""The reference field client against the real app (SYNC.md §4.4, §6): ack handling, resends,
indeterminate answers, backoff, batching, replacement sync, 426, revocation, a change of user,
the clock probe and single-flight."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mobile_sync.client import (
    AccountSwitchRefusedError,
    DeviceRevokedError,
    FieldClient,
    SyncOutcome,
    crash,
)
from server.db.base import utcnow
from server.devices.models import Device as DeviceRow
from server.reports.models import Report
from server.sync import service as sync_service
from server.sync.models import ClockSample, SyncState
from tests.seed import PASSWORD
from tests.sync.test_client_kit import (
    BASE,
    FakeClock,
    answer,
    captive_portal,
    drop_request,
    lose_response,
    report_fields,
    rewrite_json,
    server_ops,
    server_reports,
    signed_in,
    time_out_unsent,
    username,
)

pytestmark = pytest.mark.integration

PUSH = "/sync/v1/push"
REPO = Path(__file__).resolve().parents[2]


def test_a_report_written_offline_is_pushed_pulled_and_its_photo_uploaded(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.faults.sent.clear()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + bytes(range(256)) * 800)

    report_id = device.client.create_report(report_fields(), [photo])
    assert device.faults.sent == []  # writing a report never touches the network

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 1}
    assert [(u.complete, u.offset) for u in result.uploads] == [(True, photo.stat().st_size)]
    view = device.client.report(report_id)
    assert view is not None
    assert view["server_version"] >= 1
    assert view["has_unsent_changes"] is False
    assert view["created_by_device_id"] == str(device.client.account().device_id)
    assert server_reports(session, report_id) == 1
    stored = session.scalars(select(Report).where(Report.id == report_id)).one()
    session.refresh(stored)
    assert [a.state.value for a in stored.attachments] == ["complete"]
    assert list(device.client.store.files_dir.glob("*")) == []  # uploaded copy purged (D3)
    status = device.client.status()
    assert status.ops["done"] == 1
    assert status.uploads == {"pending": 0, "complete": 1, "failed": 0}
    assert status.last_sync_outcome == "completed"


def test_every_sync_request_says_who_it_is_and_what_its_clock_reads(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.client.create_report(report_fields())
    device.faults.sent.clear()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    device.client.sync()

    sync_requests = [s for s in device.faults.sent if s.path.startswith("/sync/v1/")]
    assert {s.path for s in sync_requests} >= {"/sync/v1/hello", PUSH, "/sync/v1/pull"}
    boot_ids = {s.headers["X-Boot-Id"] for s in sync_requests}
    assert len(boot_ids) == 1
    for sent in sync_requests:
        assert sent.headers["Authorization"].startswith("Bearer vgd.")
        assert abs(int(sent.headers["X-Device-Time-Ms"]) - now_ms) < 60_000
        assert int(sent.headers["X-Device-Uptime-Ms"]) > 0
        assert sent.headers["X-Client-Version"]
    [push] = device.faults.requests("POST", PUSH)
    assert push.headers["Idempotency-Key"] == json.loads(push.content)["batch_id"]


def test_the_previous_exchange_reaches_the_server_as_a_clock_probe(api, session, tmp_path):
    skew_ms = 7 * 24 * 3600 * 1000  # the device clock is a week behind
    device = signed_in(api, tmp_path / "s.sqlite3", clock=FakeClock(skew_ms=-skew_ms))
    server_now = int(datetime.now(UTC).timestamp() * 1000)
    device.client.create_report(report_fields())

    device.client.sync()

    [push] = device.faults.requests("POST", PUSH)
    probe = json.loads(push.content)["previous_exchange"]
    assert abs(probe["t0_ms"] - (server_now - skew_ms)) < 60_000  # by the device clock
    assert 0 <= probe["t3_ms"] - probe["t0_ms"] < 60_000
    assert 0 <= probe["t2_ms"] - probe["t1_ms"] <= probe["t3_ms"] - probe["t0_ms"]
    assert abs(probe["t1_ms"] - server_now) < 60_000  # the server's stamps of the hello
    device_id = device.client.account().device_id
    sample = session.scalars(select(ClockSample).where(ClockSample.device_id == device_id)).one()
    assert abs(sample.offset_ms - skew_ms) < 60_000
    status = device.client.status()
    assert status.clock_offset_ms is not None
    assert abs(status.clock_offset_ms - skew_ms) < 60_000


# ---------------------------------------------------------------------------- resends


def test_a_lost_response_is_resent_byte_for_byte_and_answered_duplicate(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    [entry] = device.client.outbox()
    device.faults.arm("POST", PUSH, lose_response)

    result = device.client.sync()

    pushes = device.faults.requests("POST", PUSH)
    assert len(pushes) == 2
    assert all(entry.body in push.content for push in pushes)  # the op's stored bytes, verbatim
    assert pushes[0].content == pushes[1].content  # the same batch, same Idempotency-Key
    assert result.pushed == {"duplicate": 1}
    [after] = device.client.outbox()
    assert (after.state, after.body) == ("done", entry.body)
    assert server_reports(session, report_id) == 1
    assert server_ops(session, entry.op_id) == 1


def _wrong_batch(body: Any) -> Any:
    return {**body, "batch_id": str(uuid.uuid4())}


def _not_json(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    inner.handle_request(request).read()
    return httpx.Response(200, headers={"X-Sync-Protocol": "1"}, content=b"<<garbled>>")


@pytest.mark.parametrize(
    ("fault", "second_answer"),
    [
        (captive_portal, "applied"),
        (drop_request, "applied"),
        (time_out_unsent, "applied"),
        (lose_response, "duplicate"),
        (rewrite_json(_wrong_batch), "duplicate"),
        (_not_json, "duplicate"),
    ],
    ids=["captive-portal-html", "connection-refused", "timeout", "response-lost",
         "answer-for-another-batch", "not-json"],
)  # fmt: skip
def test_an_unusable_answer_is_indeterminate_and_the_same_bytes_go_again(
    api, session, tmp_path, fault, second_answer
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    [entry] = device.client.outbox()
    device.faults.arm("POST", PUSH, fault)

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    pushes = device.faults.requests("POST", PUSH)
    assert [entry.body in p.content for p in pushes] == [True, True]
    assert result.pushed == {second_answer: 1}
    assert len(device.sleeps) == 1  # one backoff pause between the two tries
    assert server_reports(session, report_id) == 1
    assert server_ops(session, entry.op_id) == 1


def test_a_portal_that_never_lets_go_leaves_the_ops_pending_for_next_time(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.faults.arm("GET", "/sync/v1/hello", captive_portal, times=100)

    offline = device.client.sync()

    assert offline.outcome is SyncOutcome.OFFLINE
    assert "X-Sync-Protocol" in offline.errors[0]
    assert len(device.sleeps) == device.client.max_attempts - 1
    assert device.faults.requests("POST", PUSH) == []
    assert [e.state for e in device.client.outbox()] == ["pending"]
    assert server_reports(session, report_id) == 0

    device.faults.disarm()
    back = device.client.sync()
    assert back.pushed == {"applied": 1}
    assert server_reports(session, report_id) == 1


def test_responses_lost_in_every_attempt_are_answered_duplicate_in_the_next_sync(
    api, session, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    [entry] = device.client.outbox()
    device.faults.arm("POST", PUSH, lose_response, times=device.client.max_attempts)

    first = device.client.sync()
    assert first.outcome is SyncOutcome.OFFLINE
    assert first.pushed == {"unanswered": 1}
    [pending] = device.client.outbox()
    assert pending.state == "pending"
    assert pending.attempts == 1
    assert "timed out" in (pending.last_error or "")

    second = device.client.sync()
    assert second.pushed == {"duplicate": 1}
    assert [e.body for e in device.client.outbox()] == [entry.body]
    assert server_reports(session, report_id) == 1
    assert server_ops(session, entry.op_id) == 1


# ---------------------------------------------------------------------------- backoff


def test_overload_and_server_errors_are_retried_honouring_retry_after(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")  # random() = 0.5 for the jitter
    device.client.create_report(report_fields())
    in_30_s = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    device.faults.arm("POST", PUSH, answer(503, headers={"Retry-After": "7"}))
    device.faults.arm("POST", PUSH, answer(429, headers={"Retry-After": in_30_s}))
    device.faults.arm("POST", PUSH, answer(500))
    device.faults.arm("POST", PUSH, answer(502), times=1)

    result = device.client.sync()

    assert result.pushed == {"applied": 1}
    assert len(device.faults.requests("POST", PUSH)) == 5
    assert device.sleeps[0] == 7.0
    assert 28.0 <= device.sleeps[1] <= 30.0
    # Then full jitter over a doubling ceiling: 0.5 × 4 s, 0.5 × 8 s.
    assert device.sleeps[2:] == [2.0, 4.0]


def test_a_retry_after_beyond_patience_ends_the_sync_offline(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.client.create_report(report_fields())
    device.faults.arm("POST", PUSH, answer(503, headers={"Retry-After": "3600"}))

    result = device.client.sync()

    assert result.outcome is SyncOutcome.OFFLINE
    assert "3600" in result.errors[0]
    assert device.sleeps == []
    assert [e.state for e in device.client.outbox()] == ["pending"]


# ---------------------------------------------------------------------------- batching


def test_ops_go_in_device_seq_order_in_batches_of_hellos_size(api, settings, tmp_path, monkeypatch):
    monkeypatch.setattr(settings.sync, "max_batch_ops", 3)
    device = signed_in(api, tmp_path / "s.sqlite3")
    for _ in range(7):
        device.client.create_report(report_fields())

    result = device.client.sync()

    batches = [json.loads(p.content)["ops"] for p in device.faults.requests("POST", PUSH)]
    assert [[op["device_seq"] for op in ops] for ops in batches] == [[1, 2, 3], [4, 5, 6], [7]]
    assert result.pushed == {"applied": 7}


def test_a_413_splits_the_batch_until_it_fits(api, settings, tmp_path, monkeypatch):
    # The server takes 2 ops per batch but a proxy's hello rewrite claims 100: 413, then split.
    monkeypatch.setattr(settings.sync, "max_batch_ops", 2)
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.faults.arm("GET", "/sync/v1/hello", rewrite_json(lambda b: {**b, "max_batch_ops": 100}))
    for _ in range(5):
        device.client.create_report(report_fields())

    result = device.client.sync()

    sizes = [len(json.loads(p.content)["ops"]) for p in device.faults.requests("POST", PUSH)]
    assert sizes[0] == 5
    assert all(size <= 2 for size in sizes[1:])
    assert result.pushed == {"applied": 5}
    assert result.outcome is SyncOutcome.COMPLETED


# ---------------------------------------------------------------------------- terminal results


def remove_at_hq(api: Any, report_id: uuid.UUID) -> None:
    removal = api.as_("analyst").post(
        f"/api/v1/reports/{report_id}/removal", json={"reason": "duplicate of another report"}
    )
    assert removal.status_code == 200, removal.text


def test_rejected_and_gone_ops_are_kept_and_listed_as_needing_attention(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    removed = device.client.create_report(report_fields())
    device.client.sync()
    remove_at_hq(api, removed)
    nowhere = uuid.uuid4()
    device.client.set_fields(nowhere, {"narrative": "Edit of a report that never existed."})
    device.client.add_note(removed, "Seen again.")
    kept = device.client.create_report(report_fields())

    result = device.client.sync()

    assert result.pushed == {"rejected": 1, "gone": 1, "applied": 1}
    attention = {(i.report_id, i.state, i.code) for i in result.needs_attention}
    assert attention == {(str(nowhere), "rejected", "not_found"), (str(removed), "gone", "gone")}
    assert all(i.reason for i in result.needs_attention)
    assert device.client.status().ops == {
        "pending": 0, "done": 2, "conflict": 0, "rejected": 1, "gone": 1
    }  # fmt: skip
    assert [e.state for e in device.client.outbox()] == ["done", "rejected", "gone", "done"]
    assert server_reports(session, kept) == 1
    assert device.client.report(removed) is None  # the tombstone took the local copy away

    pushes = len(device.faults.requests("POST", PUSH))
    again = device.client.sync()
    assert len(device.faults.requests("POST", PUSH)) == pushes  # terminal ops are not resent
    assert len(again.needs_attention) == 2  # and do not disappear


def test_an_edit_concurrent_with_hq_is_applied_and_kept_flagged_for_review(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.client.sync()
    analyst = api.as_("analyst")
    current = analyst.get(f"/api/v1/reports/{report_id}").json()
    edited = analyst.patch(
        f"/api/v1/reports/{report_id}", json={"version": current["version"], "admin2": "Kouango"}
    )
    assert edited.status_code == 200, edited.text
    device.client.set_fields(report_id, {"admin2": "Bambari"})  # offline, on version 1
    [_, edit] = device.client.outbox()
    assert json.loads(edit.body)["base_version"] == 1

    result = device.client.sync()

    assert result.pushed == {"conflict_flagged": 1}
    assert [e.state for e in device.client.outbox()] == ["done", "conflict"]
    assert device.client.status().ops["conflict"] == 1
    view = device.client.report(report_id)
    assert view is not None and view["conflict_state"] == "conflict"


def test_a_deferred_answer_resends_from_the_seq_the_server_expects(
    api, connection, session, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    restore_point = connection.begin_nested()
    first = device.client.create_report(report_fields())
    second = device.client.create_report(report_fields())
    assert device.client.sync().pushed == {"applied": 2}
    restore_point.rollback()  # the server loses both ops (restored without a new epoch)
    assert server_reports(session, first) == 0
    third = device.client.create_report(report_fields())

    result = device.client.sync()

    assert result.pushed == {"deferred": 1, "applied": 3}
    seqs = [[op["device_seq"] for op in json.loads(p.content)["ops"]]
            for p in device.faults.requests("POST", PUSH)]  # fmt: skip
    assert seqs[-2:] == [[3], [1, 2, 3]]
    for report_id in (first, second, third):
        assert server_reports(session, report_id) == 1
    assert {e.state for e in device.client.outbox()} == {"done"}


# ---------------------------------------------------------------------------- replacement sync


def _restore_from_backup(connection: Any, session: Any, restore_point: Any) -> None:
    restore_point.rollback()
    sync_service.new_epoch(session)
    session.commit()


@pytest.mark.parametrize("noticed_by", ["hello", "pull"])
def test_a_server_restore_triggers_a_replacement_sync_that_repushes_what_it_lost(
    api, connection, session, tmp_path, noticed_by
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    kept = device.client.create_report(report_fields())
    device.client.sync()
    restore_point = connection.begin_nested()  # the backup is taken here
    lost = [device.client.create_report(report_fields()) for _ in range(2)]
    device.client.sync()
    old_epoch = device.client.store.meta("epoch")
    _restore_from_backup(connection, session, restore_point)
    assert [server_reports(session, r) for r in lost] == [0, 0]
    if noticed_by == "pull":  # hello's epoch hidden: the pull's 410 must do it alone
        device.faults.arm(
            "GET", "/sync/v1/hello", rewrite_json(lambda b: {**b, "epoch": old_epoch})
        )

    result = device.client.sync()

    assert result.replacement is True
    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    # The probe (newest answered op) is deferred to seq 2; seqs 2 and 3 go again.
    assert result.pushed == {"deferred": 1, "applied": 2}
    for report_id in [kept, *lost]:
        assert server_reports(session, report_id) == 1
        view = device.client.report(report_id)
        assert view is not None and view["server_version"] >= 1
    assert {e.state for e in device.client.outbox()} == {"done"}
    assert device.client.store.meta("replacing") is None
    if noticed_by == "hello":
        assert device.client.store.meta("epoch") != old_epoch


def test_an_expired_cursor_replacement_resends_nothing_the_server_has(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.client.sync()
    session.execute(update(SyncState).where(SyncState.id == 1).values(pruned_through_seq=10**9))
    session.commit()

    result = device.client.sync()

    assert result.replacement is True
    assert result.pushed == {"duplicate": 1}  # the probe only
    assert server_reports(session, report_id) == 1


# ---------------------------------------------------------------------------- 426


def test_a_client_too_old_keeps_pushing_and_reports_that_it_must_update(
    api, session, settings, tmp_path, monkeypatch
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    monkeypatch.setattr(settings.sync, "min_client_version", "99.0")
    report_id = device.client.create_report(report_fields())

    result = device.client.sync()

    assert result.update_required is not None and "99.0" in result.update_required
    assert result.pushed == {"applied": 1}
    assert server_reports(session, report_id) == 1
    assert result.pull_pages == 0
    assert result.outcome is SyncOutcome.PARTIAL
    assert device.client.status().update_required == result.update_required


# ---------------------------------------------------------------------------- revocation


def test_a_revoked_device_wipes_everything_but_its_unsent_reports(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    sent = device.client.create_report(report_fields())
    device.client.sync()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"q" * 3000)
    unsent = device.client.create_report(report_fields(), [photo])
    device_id = device.client.account().device_id
    revoked = api.as_("officer_a").post(
        f"/api/v1/devices/{device_id}/revoke", json={"reason": "phone lost near Ippy"}
    )
    assert revoked.status_code == 200, revoked.text

    result = device.client.sync()

    assert result.outcome is SyncOutcome.REVOKED
    status = device.client.status()
    assert status.revoked is not None
    assert status.account is not None and status.account.signed_in is False  # credential gone
    assert device.client.report(sent) is None  # the server's records are gone
    assert [(u.report_id, u.kind) for u in status.unsent] == [(str(unsent), "create")]
    assert [e.report_id for e in device.client.outbox()] == [str(unsent)]
    assert len(list(device.client.store.files_dir.glob("*"))) == 1  # its photo is kept
    with pytest.raises(DeviceRevokedError):
        device.client.create_report(report_fields())
    requests = len(device.faults.sent)
    assert device.client.sync().outcome is SyncOutcome.REVOKED
    assert len(device.faults.sent) == requests  # a revoked store does not call the server

    assert device.client.wipe() == 1
    assert not Path(status.store_path).exists()


# ---------------------------------------------------------------------------- accounts


def test_a_change_of_user_waits_until_the_previous_users_reports_are_sent(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3", who="officer_a")
    a_device = device.client.account().device_id
    theirs = device.client.create_report(report_fields())

    with pytest.raises(AccountSwitchRefusedError, match="1 unsent"):
        device.client.sign_in(BASE, username(api, "officer_b"), PASSWORD)
    assert device.client.account().username == username(api, "officer_a")

    device.client.sync()
    account = device.client.sign_in(BASE, username(api, "officer_b"), PASSWORD)

    assert account.device_id != a_device  # the server binds a device id to one user
    assert device.client.reports() == []  # A's view is not B's to see
    assert device.client.status().ops["done"] == 0  # B starts afresh...
    with device.client.store.snapshot() as connection:  # ...while A's history stays
        kept = connection.execute("SELECT device_id, state FROM outbox").fetchall()
    assert kept == [(str(a_device), "done")]
    mine = device.client.create_report(report_fields(point=(20.75, 5.75)))
    assert [e.device_seq for e in device.client.outbox()] == [1]
    assert device.client.sync().pushed == {"applied": 1}
    created = session.get(Report, mine)
    assert created is not None and created.created_by_device_id == account.device_id
    assert server_reports(session, theirs) == 1


def test_signing_in_again_as_the_same_user_keeps_the_device_and_its_outbox(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    before_id = device.client.account().device_id
    device.client.create_report(report_fields())
    device.client.sign_in(BASE, username(api, "officer_a"), PASSWORD)

    assert device.client.account().device_id == before_id
    assert [e.state for e in device.client.outbox()] == ["pending"]
    assert device.client.sync().pushed == {"applied": 1}


# ---------------------------------------------------------------------------- single flight


def test_a_second_sync_in_another_thread_is_told_one_is_running(api, tmp_path, monkeypatch):
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.client.create_report(report_fields())
    inside, release = threading.Event(), threading.Event()

    def hold(point: str) -> None:
        if point == "before_send":
            inside.set()
            release.wait(10)

    monkeypatch.setattr(crash, "hook", hold)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(device.client.sync()))
    first.start()
    try:
        assert inside.wait(10)
        same_object = device.client.sync()
        with FieldClient(device.client.store.path, http=device.client.http()) as other_object:
            other = other_object.sync()
    finally:
        release.set()
        first.join(10)

    assert same_object.outcome is SyncOutcome.ALREADY_RUNNING
    assert other.outcome is SyncOutcome.ALREADY_RUNNING
    assert "already running" in other.errors[0]
    assert results[0].pushed == {"applied": 1}
    assert len(device.faults.requests("POST", PUSH)) == 1


HOLD_LOCK = (
    "import sys\n"
    "from pathlib import Path\n"
    "from mobile_sync.client.lock import SyncLock\n"
    "with SyncLock(Path(sys.argv[1])).held() as ok:\n"
    "    print('held' if ok else 'busy', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def test_a_sync_while_another_process_syncs_the_store_is_refused(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    command = [sys.executable, "-c", HOLD_LOCK, str(device.client.store.path)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
    ) as other:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "held"
        refused = device.client.sync()
        other.communicate("\n", timeout=10)

    assert refused.outcome is SyncOutcome.ALREADY_RUNNING
    assert server_reports(session, report_id) == 0
    assert device.client.sync().pushed == {"applied": 1}


def test_the_server_sees_the_device_clock_offset_it_measured(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    device.client.create_report(report_fields())
    device.client.sync()
    row = session.get(DeviceRow, device.client.account().device_id)
    assert row is not None
    session.refresh(row)
    assert row.clock_offset_ms is not None
    assert row.clock_boot_id is not None


def test_after_tombstones_are_pruned_one_replacement_sync_is_enough(
    api, session, settings, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.client.sync()
    remove_at_hq(api, report_id)
    horizon = timedelta(days=settings.sync.tombstone_horizon_days + 1)
    assert sync_service.prune_tombstones(session, settings.sync, now=utcnow() + horizon) == 1
    session.commit()

    first = device.client.sync()
    assert first.replacement is True  # right: the device may have missed the removal

    second = device.client.sync()
    assert second.replacement is False  # nothing changed since: the cursor should hold


def test_a_removal_whose_pull_answer_was_lost_still_reaches_the_device(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    device.client.sync()
    assert device.client.report(report_id) is not None
    remove_at_hq(api, report_id)
    device.faults.arm("GET", "/sync/v1/pull", lose_response)  # the tombstone's page is lost

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED
    assert len(device.faults.requests("GET", "/sync/v1/pull")) >= 2  # it was pulled again
    assert device.client.report(report_id) is None  # the removed report left the device
