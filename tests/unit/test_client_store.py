"""The field client's local store without a server: the transactional outbox, op bytes, the
local view of reports, schema migrations and ids."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from mobile_sync.client import FieldClient, MigrationError, StoreTooNewError, crash, migrations
from mobile_sync.client.ids import uuid7
from mobile_sync.client.outbox import apply_results
from mobile_sync.client.replica import apply_change, finish_replacement, local_view
from mobile_sync.client.store import Store, set_meta
from mobile_sync.protocol.models import (
    Change,
    ChangeKind,
    Op,
    OpResult,
    OpStatus,
    payload_sha256,
)
from tests.sync.fixtures.client_stores import SCHEMA, SHIPPED, normalised


class SimulatedCrashError(Exception):
    pass


def crash_at(point: str) -> Any:
    def hook(name: str) -> None:
        if name == point:
            raise SimulatedCrashError(name)

    return hook


class Clock:
    def wall_ms(self) -> int:
        return 1_795_000_000_000

    def uptime_ms(self) -> int:
        return 42_000

    def system_boot_id(self) -> uuid.UUID | None:
        return None


def offline_client(path: Path, device_id: str = "0e0e0e0e-0000-4000-8000-000000000001") -> Any:
    """A client whose store already holds an account (as after `vigil field init`)."""
    client = FieldClient(path, clock=Clock())
    with client.store.transaction() as connection:
        for key, value in {
            "server_url": "http://nowhere.invalid",
            "username": "officer-a",
            "device_id": device_id,
            "token": "vgd.x.y",
            "next_device_seq": 1,
        }.items():
            set_meta(connection, key, value)
    return client


FIELDS = {
    "category": "killing_of_civilians",
    "occurred_at": "2026-11-20T06:30:00Z",
    "location": {"type": "Point", "coordinates": [20.12, 5.75]},
    "narrative": "Two men killed at the market.",
}


def test_a_new_store_is_wal_with_full_sync_at_the_latest_schema(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    with store.snapshot() as connection:
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = connection.execute("PRAGMA synchronous").fetchone()[0]
    assert (journal, synchronous) == ("wal", 2)  # 2 = FULL
    assert store.schema_version == migrations.LATEST_VERSION
    assert not migrations.backup_path(store.path, 0).exists()  # nothing to back up
    store.close()


def test_an_op_its_seq_and_the_local_view_are_written_together(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    report_id = client.create_report(FIELDS)

    [entry] = client.outbox()
    assert (entry.device_seq, entry.state, entry.report_id) == (1, "pending", str(report_id))
    assert client.store.meta("next_device_seq") == "2"
    view = client.report(report_id)
    assert view is not None
    assert view["narrative"] == FIELDS["narrative"]
    assert view["has_unsent_changes"] is True


def test_a_crash_inside_the_op_write_leaves_no_op_no_seq_and_no_file(tmp_path, monkeypatch):
    client = offline_client(tmp_path / "s.sqlite3")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"p" * 5000)
    monkeypatch.setattr(crash, "hook", crash_at("mid_local_write"))

    with pytest.raises(SimulatedCrashError):
        client.create_report(FIELDS, [photo])

    monkeypatch.setattr(crash, "hook", None)
    assert client.outbox() == []
    assert client.store.meta("next_device_seq") == "1"
    assert client.reports() == []
    assert list(client.store.files_dir.glob("*")) == []
    client.create_report(FIELDS)
    assert [e.device_seq for e in client.outbox()] == [1]  # the seq was not burnt


def test_device_seqs_stay_gap_free_across_reopening(tmp_path):
    path = tmp_path / "s.sqlite3"
    client = offline_client(path)
    first = client.create_report(FIELDS)
    client.add_note(first, "Seen again at dusk.")
    client.close()
    again = FieldClient(path, clock=Clock())
    again.set_fields(first, {"narrative": "Three men."})

    assert [e.device_seq for e in again.outbox()] == [1, 2, 3]
    assert [e.kind for e in again.outbox()] == ["create", "add_note", "set_fields"]


def test_an_op_is_serialised_once_as_a_valid_protocol_op(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    client.create_report(FIELDS)
    [entry] = client.outbox()

    op = Op.model_validate_json(entry.body)
    assert op.payload_sha256 == payload_sha256(op.payload)
    assert op.op_id.version == 7
    assert op.device_seq == 1
    assert op.base_version == 0
    assert "id" not in op.payload
    # Canonical bytes: what is stored is exactly what re-serialising the parsed JSON gives.
    canonical = json.dumps(
        json.loads(entry.body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert entry.body == canonical


def test_an_attachment_is_copied_into_the_store_and_announced_in_the_manifest(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"p" * 5000)
    client.create_report(FIELDS, [photo])
    photo.unlink()  # the gallery copy may go; the store keeps its own

    [entry] = client.outbox()
    [item] = json.loads(entry.body)["payload"]["attachments"]
    assert item["size_bytes"] == 5002
    assert item["media_type"] == "image/jpeg"
    assert item["role"] == "photo"
    copy = client.store.files_dir / item["id"]
    assert copy.read_bytes() == b"\xff\xd8" + b"p" * 5000


def test_an_empty_file_is_refused_and_nothing_is_written(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="non-empty"):
        client.create_report(FIELDS, [empty])
    assert client.outbox() == []


def test_uuid7_has_version_variant_and_time_order():
    early, late = uuid7(1_000), uuid7(2_000)
    assert early.version == 7
    assert early.variant == uuid.RFC_4122
    assert early.int >> 80 == 1_000
    assert early < late


# ---------------------------------------------------------------------------- the local view


def _change(kind: ChangeKind, version: int, record: dict[str, Any] | None, rid: str) -> Change:
    return Change(seq=version, kind=kind, report_id=uuid.UUID(rid), version=version, record=record)


def test_pull_skips_records_not_newer_than_held_and_keeps_pending_fields_on_top(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    report_id = client.create_report(FIELDS)
    rid = str(report_id)
    client.set_fields(report_id, {"narrative": "Edited offline."})
    server_v2 = {"detail": "full", "narrative": "Server text v2", "category": "x", "version": 2}
    server_v1 = {"detail": "full", "narrative": "Server text v1", "category": "x", "version": 1}

    with client.store.transaction() as connection:
        assert apply_change(connection, _change(ChangeKind.UPSERT, 2, server_v2, rid), 0,
                            replacing=False)  # fmt: skip
        # A repeat, and an older version delivered late: both skipped (I7).
        assert not apply_change(connection, _change(ChangeKind.UPSERT, 2, server_v2, rid), 0,
                                replacing=False)  # fmt: skip
        assert not apply_change(connection, _change(ChangeKind.UPSERT, 1, server_v1, rid), 0,
                                replacing=False)  # fmt: skip

    view = client.report(report_id)
    assert view is not None
    assert view["server_version"] == 2
    assert view["narrative"] == "Edited offline."  # the unsent edit stays on top
    assert view["category"] == FIELDS["category"]  # so does the unsent create's


def test_a_tombstone_keeps_a_report_with_unsent_ops_and_drops_others(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    mine = str(client.create_report(FIELDS))
    theirs = str(uuid.uuid4())
    record = {"detail": "full", "narrative": "x"}
    with client.store.transaction() as connection:
        apply_change(connection, _change(ChangeKind.UPSERT, 1, record, mine), 0, replacing=False)
        apply_change(connection, _change(ChangeKind.UPSERT, 1, record, theirs), 0, replacing=False)
        apply_change(connection, _change(ChangeKind.TOMBSTONE, 2, None, mine), 0, replacing=False)
        apply_change(connection, _change(ChangeKind.TOMBSTONE, 2, None, theirs), 0, replacing=False)

    assert client.report(theirs) is None
    kept = client.report(mine)
    assert kept is not None
    assert kept["deleted"] is True
    assert kept["has_unsent_changes"] is True


def test_a_revoke_with_a_redacted_record_replaces_the_full_copy(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    rid = str(uuid.uuid4())
    full = {"detail": "full", "narrative": "Names and places."}
    redacted = {"detail": "redacted", "category": "sexual_violence", "day": "2026-11-20"}
    with client.store.transaction() as connection:
        apply_change(connection, _change(ChangeKind.UPSERT, 3, full, rid), 0, replacing=False)
        apply_change(connection, _change(ChangeKind.REVOKE, 3, redacted, rid), 0, replacing=False)
        row = connection.execute(
            "SELECT report_id, server_version, acked_version, detail, record, local_fields, "
            "deleted FROM reports"
        ).fetchone()
    view = local_view(row)
    assert view["detail"] == "redacted"
    assert "narrative" not in view


def test_a_replacement_sync_drops_server_copies_it_did_not_redeliver(tmp_path):
    client = offline_client(tmp_path / "s.sqlite3")
    kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
    mine = str(client.create_report(FIELDS))
    record = {"detail": "full"}
    with client.store.transaction() as connection:
        for rid in (kept, gone, mine):
            apply_change(connection, _change(ChangeKind.UPSERT, 1, record, rid), 0,
                         replacing=False)  # fmt: skip
        apply_change(connection, _change(ChangeKind.UPSERT, 1, record, kept), 0, replacing=True)
        assert finish_replacement(connection) == 1
    assert client.report(kept) is not None
    assert client.report(gone) is None
    assert client.report(mine) is not None  # unsent ops keep their report


# ---------------------------------------------------------------------------- migrations


@pytest.mark.parametrize("version", sorted(migrations.MIGRATIONS))
def test_no_shipped_migration_was_edited(tmp_path, version):
    """The fixtures' frozen schema is what the migrations still build (else a shipped migration
    changed, and the fixtures would no longer stand for the stores on phones)."""
    path = tmp_path / "s.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    migrations.upgrade(connection, path, target=version)
    built = [
        normalised(sql)
        for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        )
    ]
    assert built == [normalised(sql) for sql in SCHEMA[version]]
    assert set(SHIPPED) == set(migrations.MIGRATIONS)


def test_an_upgrade_backs_up_first_and_keeps_every_op_byte_for_byte(tmp_path):
    fixture = SHIPPED[1](tmp_path / "v1.sqlite3")
    store = Store(fixture.path)

    assert store.schema_version == migrations.LATEST_VERSION
    backup = migrations.backup_path(fixture.path, 1)
    with sqlite3.connect(backup) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1
        assert old.execute("SELECT count(*) FROM outbox").fetchone()[0] == len(fixture.ops)
    with store.snapshot() as connection:
        rows = connection.execute(
            "SELECT device_seq, op_id, report_id, body, state, device_id FROM outbox "
            "ORDER BY device_seq"
        ).fetchall()
    assert [(s, o, r, bytes(b)) for s, o, r, b, _, _ in rows] == fixture.ops
    assert {state for *_, state, _ in rows} == {"pending"}
    assert {device for *_, device in rows} == {fixture.device_id}
    store.close()


def test_a_failed_migration_leaves_the_store_as_it_was_and_is_refused(tmp_path, monkeypatch):
    fixture = SHIPPED[1](tmp_path / "v1.sqlite3")
    monkeypatch.setattr(crash, "hook", crash_at("mid_migration"))

    with pytest.raises(MigrationError, match="left at schema 1") as failure:
        Store(fixture.path)
    assert "unsent report" in str(failure.value)

    with sqlite3.connect(fixture.path) as untouched:
        assert untouched.execute("PRAGMA user_version").fetchone()[0] == 1
        bodies = [bytes(b) for (b,) in untouched.execute("SELECT body FROM outbox")]
        tables = {t for (t,) in untouched.execute("SELECT name FROM sqlite_master")}
    assert sorted(bodies) == sorted(body for *_, body in fixture.ops)
    assert "replacement_seen" not in tables  # nothing of v2 half-applied
    assert migrations.backup_path(fixture.path, 1).exists()

    monkeypatch.setattr(crash, "hook", None)  # the next app version, say, works
    assert Store(fixture.path).schema_version == migrations.LATEST_VERSION


def test_a_store_from_a_newer_app_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreTooNewError, match="newer Vigil"):
        Store(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 99


def test_a_duplicate_answer_keeps_a_conflict_flag_it_cannot_repeat(tmp_path):
    """The server answers a resend ``duplicate`` whatever the first answer was; a device that
    saw ``conflict_flagged`` keeps showing the op as flagged for HQ review."""
    client = offline_client(tmp_path / "s.sqlite3")
    client.create_report(FIELDS)
    [entry] = client.outbox()
    op = Op.model_validate_json(entry.body)

    def result(status: OpStatus) -> OpResult:
        return OpResult(
            op_id=op.op_id, device_seq=1, status=status, report_id=op.report_id, version=2
        )

    with client.store.transaction() as connection:
        apply_results(connection, [entry], [result(OpStatus.CONFLICT_FLAGGED)], 0)
    [flagged] = client.outbox()
    with client.store.transaction() as connection:
        apply_results(connection, [flagged], [result(OpStatus.DUPLICATE)], 0)
    assert [e.state for e in client.outbox()] == ["conflict"]
