"""The field client's attach, track_append and seal_update ops against the real app: applied
after sync (bytes hash-checked, fixes and coverage stored, sealed blob kept), no loss across a
crash at each point, a lost answer resent as ``duplicate`` (I1, I2, I8; SYNC.md §6 7, 8)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobile_sync.client import (
    InvalidTrackError,
    SyncOutcome,
    UnknownReportError,
    crash,
    read_track_file,
    tracks,
)
from mobile_sync.client.outbox import without_ciphertext
from server.coverage.models import PatrolCell
from server.patrols.enums import PatrolType
from server.patrols.models import Patrol, PatrolTrackPoint
from server.reports.enums import AttachmentState
from server.reports.models import Attachment, Report
from server.sync.models import SealedBlob
from tests.seed import POINT_A1_1
from tests.sync.test_client_crash import SimulatedCrashError, crash_at
from tests.sync.test_client_kit import (
    Device,
    lose_response,
    report_fields,
    server_ops,
    signed_in,
)

pytestmark = pytest.mark.integration

PUSH = "/sync/v1/push"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = {"alg": "hpke-x25519-aes256gcm", "key_ids": ["gbv-2026-1"], "field_group": "core"}


def _synced_report(device: Device) -> uuid.UUID:
    report_id = device.client.create_report(report_fields())
    assert device.client.sync().pushed == {"applied": 1}
    return report_id


def _walk(fixes: int, *, start: tuple[float, float] = POINT_A1_1) -> list[tuple[Any, ...]]:
    """(t, lon, lat, accuracy) tuples: a foot patrol a few hours ago, one fix a minute."""
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    return [
        (began + timedelta(minutes=i), start[0] + i * 0.001, start[1] + i * 0.0005, 8.0)
        for i in range(fixes)
    ]


def _fix_count(session: Session, patrol_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(PatrolTrackPoint)
            .where(PatrolTrackPoint.patrol_id == patrol_id)
        )
        or 0
    )


def _sealed(session: Session, report_id: uuid.UUID) -> list[SealedBlob]:
    session.expire_all()
    return list(
        session.scalars(
            select(SealedBlob)
            .where(SealedBlob.report_id == report_id)
            .order_by(SealedBlob.payload_version)
        )
    )


def _attachment(session: Session, attachment_id: str) -> Attachment | None:
    session.expire_all()
    return session.get(Attachment, uuid.UUID(attachment_id))


def _payload(device: Device, op_id: str) -> dict[str, Any]:
    (entry,) = [e for e in device.client.outbox() if e.op_id == op_id]
    payload: dict[str, Any] = json.loads(entry.body)["payload"]
    return payload


# --------------------------------------------------------------------------- attach


def test_a_file_attached_later_is_applied_uploaded_and_hash_checked(
    api, session, settings, tmp_path
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    data = b"\xff\xd8" + bytes(range(256)) * 700
    photo = tmp_path / "later.jpg"
    photo.write_bytes(data)
    device.faults.sent.clear()

    op_id = device.client.attach(report_id, photo)

    assert device.faults.sent == []  # offline
    (item,) = _payload(device, op_id)["attachments"]
    sha = hashlib.sha256(data).hexdigest()
    assert item == {
        "id": item["id"],
        "media_type": "image/jpeg",
        "size_bytes": len(data),
        "sha256": sha,
        "role": "photo",
    }
    status = device.client.status()
    assert [(u.kind, u.report_id) for u in status.unsent] == [("attach", str(report_id))]
    assert (status.uploads["pending"], status.upload_bytes_pending) == (1, len(data))
    view = device.client.report(report_id)
    assert view is not None and view["pending_attachments"] == [item]
    photo.unlink()  # the store holds its own copy

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 1}
    assert [(u.attachment_id, u.complete) for u in result.uploads] == [(item["id"], True)]
    attachment = _attachment(session, item["id"])
    assert attachment is not None and attachment.report_id == report_id
    assert (attachment.state, attachment.sha256, attachment.size_bytes) == (
        AttachmentState.COMPLETE,
        sha,
        len(data),
    )
    stored = settings.attachments_dir / sha[:2] / sha
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    report = session.get(Report, report_id)
    assert report is not None and report.version == 3  # create, attach, upload complete
    assert list(device.client.store.files_dir.glob("*")) == []  # copy purged once uploaded
    assert device.client.status().ops["pending"] == 0


def test_create_and_attach_queued_together_go_in_order_in_one_sync(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    first, second = tmp_path / "a.pdf", tmp_path / "b.ogg"
    first.write_bytes(b"%PDF-1.4 " * 500)
    second.write_bytes(b"OggS" * 900)
    report_id = device.client.create_report(report_fields(), [first])
    device.client.attach(report_id, second, media_type="audio/ogg")

    result = device.client.sync()

    assert result.pushed == {"applied": 2}
    assert sorted(u.complete for u in result.uploads) == [True, True]
    session.expire_all()
    report = session.get(Report, report_id)
    assert report is not None
    assert sorted((a.media_type, a.state.value) for a in report.attachments) == [
        ("application/pdf", "complete"),
        ("audio/ogg", "complete"),
    ]


def test_attaching_to_a_report_the_device_does_not_hold_is_refused(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"x" * 100)

    with pytest.raises(UnknownReportError, match=r"No report .* on this device"):
        device.client.attach(uuid.uuid4(), photo)
    with pytest.raises(UnknownReportError):
        device.client.seal_update(uuid.uuid4(), b"\x01sealed", MANIFEST)

    assert device.client.outbox() == []
    assert device.client.status().uploads["pending"] == 0
    assert list(device.client.store.files_dir.glob("*")) == []  # no orphan copy
    with pytest.raises(ValueError, match="not a non-empty file"):
        device.client.attach(device.client.create_report(report_fields()), tmp_path / "none")
    assert [e.kind for e in device.client.outbox()] == ["create"]


# --------------------------------------------------------------------------- track_append


def test_a_track_is_stored_with_its_fixes_and_its_coverage(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    patrol_id = uuid.uuid4()
    walk = _walk(10)

    (op_id,) = device.client.append_track(patrol_id, walk[:6], patrol="foot")
    (later,) = device.client.append_track(patrol_id, walk[6:])  # the kind it had

    payload = _payload(device, later)
    assert payload["patrol"] == {"kind": "foot"}
    assert payload["points"][0] == {
        "t": walk[6][0].isoformat().replace("+00:00", "Z"),
        "lon": walk[6][1],
        "lat": walk[6][2],
        "accuracy_m": 8.0,
    }
    assert [u.kind for u in device.client.status().unsent] == ["track_append"] * 2
    assert device.client.reports() == []  # a patrol is not a report in the local view

    result = device.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": 2}
    session.expire_all()
    patrol = session.get(Patrol, patrol_id)
    assert patrol is not None
    assert patrol.kind is PatrolType.FOOT
    assert patrol.created_by_device_id == device.client.account().device_id
    assert _fix_count(session, patrol_id) == 10
    assert patrol.coverage_at is not None and patrol.track_km > 0
    assert session.scalar(
        select(func.count()).select_from(PatrolCell).where(PatrolCell.patrol_id == patrol_id)
    )
    assert device.client.reports() == []
    assert server_ops(session, op_id) == 1


def test_a_long_track_is_split_into_ops_queued_together(api, session, tmp_path, monkeypatch):
    monkeypatch.setattr(tracks, "FIXES_PER_OP", 4)
    device = signed_in(api, tmp_path / "s.sqlite3")
    patrol_id = uuid.uuid4()

    op_ids = device.client.append_track(patrol_id, list(reversed(_walk(10))), patrol="mobile")

    assert [len(_payload(device, o)["points"]) for o in op_ids] == [4, 4, 2]
    assert [e.device_seq for e in device.client.outbox()] == [1, 2, 3]
    assert device.client.sync().pushed == {"applied": 3}
    assert _fix_count(session, patrol_id) == 10


@pytest.mark.parametrize(
    ("fixes", "patrol", "error", "message"),
    [
        ([(datetime(2026, 11, 20, 6, 0), 20.1, 5.7)], "foot", InvalidTrackError, "no time zone"),
        ([("2026-11-20T06:00:00Z", 200.0, 5.7)], "foot", InvalidTrackError, "longitude"),
        ([("2026-11-20T06:00:00Z", 20.1, 5.7)] * 2, "foot", InvalidTrackError, "two fixes"),
        ([("yesterday", 20.1, 5.7)], "foot", InvalidTrackError, "not an ISO 8601"),
        ([(datetime.now(UTC), 20.1, float("nan"))], "foot", InvalidTrackError, "latitude"),
        ([], "foot", InvalidTrackError, "no fixes"),
        ([(datetime.now(UTC), 20.1, 5.7)], "bicycle", ValueError, "not a patrol kind"),
        ([(datetime.now(UTC), 20.1, 5.7)], None, ValueError, "new to this device"),
    ],
    ids=["naive-time", "longitude", "same-time", "bad-time", "nan", "empty", "kind", "no-kind"],
)
def test_fixes_the_server_would_refuse_are_refused_on_the_device(
    api, tmp_path, fixes, patrol, error, message
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    with pytest.raises(error, match=message):
        device.client.append_track(uuid.uuid4(), fixes, patrol=patrol)
    assert device.client.outbox() == []


def test_the_client_knows_every_patrol_kind_the_server_does():
    assert set(tracks.PATROL_KINDS) == {kind.value for kind in PatrolType}


# --------------------------------------------------------------------------- track files


def test_a_gpx_file_reads_as_fixes_in_time_order():
    fixes = read_track_file(FIXTURES / "patrol_walk.gpx")
    assert len(fixes) == 6
    assert fixes[0] == (datetime(2026, 11, 20, 6, 0, tzinfo=UTC), 20.12, 5.75, None)
    assert fixes[-1].t == datetime(2026, 11, 20, 6, 5, tzinfo=UTC)  # +01:00 converted
    assert [f.t for f in fixes] == sorted(f.t for f in fixes)


def test_geojson_linestrings_and_points_read_as_fixes(tmp_path):
    line = tmp_path / "line.geojson"
    line.write_text(
        json.dumps(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[20.1, 5.7], [20.2, 5.8]]},
                "properties": {
                    "coordTimes": ["2026-11-20T06:00:00Z", "2026-11-20T06:10:00Z"],
                    "accuracy_m": [5, None],
                },
            }
        )
    )
    points = tmp_path / "points.json"
    points.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [20.3, 5.9]},
                        "properties": {"time": "2026-11-20T06:20:00Z", "accuracy_m": 12},
                    },
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [20.2, 5.8, 540]},
                        "properties": {"time": "2026-11-20T06:15:00Z"},
                    },
                ],
            }
        )
    )
    assert read_track_file(line) == [
        (datetime(2026, 11, 20, 6, 0, tzinfo=UTC), 20.1, 5.7, 5.0),
        (datetime(2026, 11, 20, 6, 10, tzinfo=UTC), 20.2, 5.8, None),
    ]
    assert [(f.t.minute, f.lon, f.accuracy_m) for f in read_track_file(points)] == [
        (15, 20.2, None),
        (20, 20.3, 12.0),
    ]


_GPX = '<gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1"><trk><trkseg>{}</trkseg></trk></gpx>'  # noqa: E501


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cut.gpx", _GPX.format('<trkpt lat="5.7" lon="20.1"><time>')[:-20], "not well-formed"),
        ("other.gpx", "<kml><Placemark/></kml>", "not <gpx>"),
        ("empty.gpx", _GPX.format(""), "no track points"),
        ("untimed.gpx", _GPX.format('<trkpt lat="5.7" lon="20.1"/>'), "point 1 has no <time>"),
        (
            "lat.gpx",
            _GPX.format('<trkpt lat="95" lon="20.1"><time>2026-11-20T06:00:00Z</time></trkpt>'),
            "latitude",
        ),
        (
            "bomb.gpx",
            '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>',
            "DOCTYPE",
        ),
        ("broken.geojson", '{"type": "Feature",', "not valid JSON"),
        ("bare.geojson", '{"type": "LineString", "coordinates": [[20, 5]]}', "no fix times"),
        (
            "short.geojson",
            '{"type": "Feature", "geometry": {"type": "LineString", "coordinates": '
            '[[20, 5], [20.1, 5.1]]}, "properties": {"times": ["2026-11-20T06:00:00Z"]}}',
            "one fix time per position",
        ),
    ],
    ids=["cut", "not-gpx", "no-points", "no-time", "latitude", "doctype", "bad-json", "bare",
         "times-short"],
)  # fmt: skip
def test_a_malformed_track_file_is_refused_saying_what_is_wrong(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidTrackError, match=message) as raised:
        read_track_file(path)
    assert name in str(raised.value)


# --------------------------------------------------------------------------- seal_update


def test_a_sealed_payload_is_stored_as_an_opaque_blob_with_its_manifest(api, session, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = _synced_report(device)
    blob = bytes(range(256)) + b"\x00not-plaintext"

    first = device.client.seal_update(report_id, blob, MANIFEST)
    second = device.client.seal_update(report_id, b"\x02next", MANIFEST)

    payload = _payload(device, first)
    assert (payload["payload_version"], payload["parent_version"]) == (1, None)
    assert payload["manifest"] == MANIFEST
    assert _payload(device, second)["parent_version"] == 1
    assert device.client.report(report_id)["pending_sealed_versions"] == [1, 2]

    result = device.client.sync()

    assert result.pushed == {"applied": 2}
    stored = _sealed(session, report_id)
    assert [(s.payload_version, s.parent_version) for s in stored] == [(1, None), (2, 1)]
    assert stored[0].ciphertext == blob and stored[1].ciphertext == b"\x02next"
    assert stored[0].manifest == MANIFEST
    assert device.client.report(report_id)["has_unsent_changes"] is False


def test_a_sealed_payload_needs_bytes_and_a_manifest_object(api, tmp_path):
    device = signed_in(api, tmp_path / "s.sqlite3")
    report_id = device.client.create_report(report_fields())
    with pytest.raises(ValueError, match="non-empty bytes"):
        device.client.seal_update(report_id, b"", MANIFEST)
    with pytest.raises(ValueError, match="manifest"):
        device.client.seal_update(report_id, b"\x01", ["an", "array"])  # type: ignore[arg-type]
    assert [e.kind for e in device.client.outbox()] == ["create"]


# --------------------------------------------------------------------------- every new kind


@dataclass
class Kind:
    """Queue one op of a kind on a prepared device; count its effect on the server."""

    name: str
    prepare: Callable[[Device, Path], Any]
    write: Callable[[Device, Any, Path], str]
    effect: Callable[[Session, Any], int]


def _attach_write(device: Device, report_id: Any, tmp_path: Path) -> str:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"p" * 5000)
    return device.client.attach(report_id, photo)


def _attachments(session: Session, report_id: Any) -> int:
    session.expire_all()
    return int(
        session.scalar(
            select(func.count())
            .select_from(Attachment)
            .where(Attachment.report_id == report_id, Attachment.state == AttachmentState.COMPLETE)
        )
        or 0
    )


KINDS = [
    Kind("attach", lambda d, _: _synced_report(d), _attach_write, _attachments),
    Kind(
        "track_append",
        lambda d, _: uuid.uuid4(),
        lambda d, patrol_id, _: d.client.append_track(patrol_id, _walk(5), patrol="foot")[0],
        lambda s, patrol_id: _fix_count(s, patrol_id),
    ),
    Kind(
        "seal_update",
        lambda d, _: _synced_report(d),
        lambda d, report_id, _: d.client.seal_update(report_id, b"\x01opaque", MANIFEST),
        lambda s, report_id: len(_sealed(s, report_id)),
    ),
]
#: What one applied op leaves on the server.
ONE = {"attach": 1, "track_append": 5, "seal_update": 1}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize(
    ("point", "answer_after_restart"),
    [
        ("after_local_write", "applied"),
        ("before_send", "applied"),
        ("after_send_before_ack", "duplicate"),
    ],
)
def test_a_crash_between_queueing_and_the_ack_loses_and_duplicates_nothing(
    api, session, tmp_path, monkeypatch, kind, point, answer_after_restart
):
    device = signed_in(api, tmp_path / "s.sqlite3")
    target = kind.prepare(device, tmp_path)
    monkeypatch.setattr(crash, "hook", crash_at(point))

    def write_then_sync() -> None:
        kind.write(device, target, tmp_path)
        device.client.sync()

    with pytest.raises(SimulatedCrashError):
        write_then_sync()

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    entry = restarted.client.outbox()[-1]
    assert (entry.kind, entry.state) == (kind.name, "pending")
    result = restarted.client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {answer_after_restart: 1}
    after = restarted.client.outbox()[-1]
    kept = without_ciphertext(entry.body) or entry.body  # a sealed op is wiped once applied
    assert (after.op_id, after.state, after.body) == (entry.op_id, "done", kept)
    assert server_ops(session, entry.op_id) == 1
    assert kind.effect(session, target) == ONE[kind.name]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_crash_inside_the_local_write_queues_nothing(api, tmp_path, monkeypatch, kind):
    device = signed_in(api, tmp_path / "s.sqlite3")
    target = kind.prepare(device, tmp_path)
    before = device.client.outbox()
    monkeypatch.setattr(crash, "hook", crash_at("mid_local_write"))

    with pytest.raises(SimulatedCrashError):
        kind.write(device, target, tmp_path)

    monkeypatch.setattr(crash, "hook", None)
    restarted = device.reopen()
    assert restarted.client.outbox() == before
    assert restarted.client.status().uploads["pending"] == 0
    assert list(restarted.client.store.files_dir.glob("*")) == []  # the copy went with it
    kind.write(restarted, target, tmp_path)
    assert restarted.client.outbox()[-1].device_seq == len(before) + 1  # no hole in the seqs
    assert restarted.client.sync().pushed == {"applied": 1}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_lost_answer_is_resent_unchanged_and_answered_duplicate(api, session, tmp_path, kind):
    device = signed_in(api, tmp_path / "s.sqlite3")
    target = kind.prepare(device, tmp_path)
    op_id = kind.write(device, target, tmp_path)
    device.faults.sent.clear()
    device.faults.arm("POST", PUSH, lose_response)

    result = device.client.sync()

    pushes = device.faults.requests("POST", PUSH)
    assert len(pushes) == 2 and pushes[0].content == pushes[1].content
    assert result.pushed == {"duplicate": 1}
    assert server_ops(session, op_id) == 1
    assert kind.effect(session, target) == ONE[kind.name]  # not a second copy
