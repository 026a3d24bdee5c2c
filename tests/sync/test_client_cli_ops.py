"""``vigil field attach|track|note|withdraw`` end to end against the in-process app: each prints
what it queued, ``status`` lists it until a sync sends it, and bad input (a malformed track
file, an unknown report) is a clear error with a non-zero exit and nothing queued."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from server.patrols.enums import PatrolType
from server.patrols.models import Patrol, PatrolTrackPoint
from server.reports.enums import AttachmentState, VerificationState
from server.reports.models import Report
from server.sync.models import ReportNote
from tests.sync.test_client_cli import Field

pytestmark = pytest.mark.integration

GPX = Path(__file__).resolve().parents[1] / "fixtures" / "patrol_walk.gpx"
EXIT_USAGE = 2


def _report(field: Field) -> str:
    written = field(
        "report", "--category", "killing_of_civilians", "--lat", "5.75", "--lon", "20.12",
        "--occurred-at", "2026-11-20T06:30:00Z", "--narrative", "Shots near the market.",
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    return str(written.output.split()[1])


def _unsent(field: Field) -> list[dict[str, Any]]:
    shown = field("status", "--json")
    assert shown.exit_code == 0, shown.output
    unsent: list[dict[str, Any]] = json.loads(shown.output)["unsent"]
    return unsent


def test_attach_note_track_and_withdraw_are_queued_shown_and_synced(api, session, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    report_id = _report(field)
    photo = tmp_path / "scene.jpg"
    photo.write_bytes(b"\xff\xd8" + b"q" * 40_000)
    field.faults.sent.clear()

    attached = field("attach", report_id, str(photo))
    assert attached.exit_code == 0, attached.output
    assert f"queued on report {report_id} as op #2 attach" in attached.output
    assert "(scene.jpg, 40002 bytes, image/jpeg)" in attached.output
    noted = field("note", report_id, "Two witnesses, names with the protection officer.")
    assert noted.exit_code == 0, noted.output
    assert f"note queued on report {report_id} as op #3 add_note" in noted.output
    patrol_id = str(uuid.uuid4())
    tracked = field("track", str(GPX), "--patrol-id", patrol_id, "--kind", "mobile")
    assert tracked.exit_code == 0, tracked.output
    assert "track of 6 fix(es) (2026-11-20T06:00:00+00:00 to 2026-11-20T06:05:00+00:00)" in (
        tracked.output
    )
    assert f"queued for patrol {patrol_id} in 1 op(s) (op #4 track_append" in tracked.output
    assert field.faults.sent == []  # none of them touches the network

    assert [(u["device_seq"], u["kind"], u["report_id"]) for u in _unsent(field)] == [
        (1, "create", report_id),
        (2, "attach", report_id),
        (3, "add_note", report_id),
        (4, "track_append", patrol_id),
    ]
    readable = field("status")
    assert "ops: 4 unsent, 0 done" in readable.output
    assert f"unsent #4 track_append patrol {patrol_id}" in readable.output
    assert "attachments: 1 to upload (40002 bytes)" in readable.output

    synced = field("sync")
    assert synced.exit_code == 0, synced.output
    assert "pushed: applied 4" in synced.output
    assert "40002/40002 bytes, complete" in synced.output
    assert _unsent(field) == []

    withdrawn = field("withdraw", report_id, "--note", "Reported twice.")
    assert withdrawn.exit_code == 0, withdrawn.output
    assert f"withdrawal queued for report {report_id} as op #5 withdraw" in withdrawn.output
    assert [u["kind"] for u in _unsent(field)] == ["withdraw"]
    assert field("sync").exit_code == 0
    assert _unsent(field) == []

    session.expire_all()
    report = session.get(Report, uuid.UUID(report_id))
    assert report is not None
    assert report.verification_state is VerificationState.WITHDRAWN
    assert [a.state for a in report.attachments] == [AttachmentState.COMPLETE]
    notes = session.scalars(select(ReportNote.body).where(ReportNote.report_id == report.id))
    assert list(notes) == ["Two witnesses, names with the protection officer."]
    patrol = session.get(Patrol, uuid.UUID(patrol_id))
    assert patrol is not None and patrol.kind is PatrolType.MOBILE
    assert patrol.coverage_at is not None
    assert (
        session.scalar(
            select(func.count())
            .select_from(PatrolTrackPoint)
            .where(PatrolTrackPoint.patrol_id == patrol.id)
        )
        == 6
    )


def test_a_new_track_is_a_foot_patrol_and_a_known_one_keeps_its_kind(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    first = field("track", str(GPX))
    assert first.exit_code == 0, first.output
    patrol_id = first.output.split("queued for patrol ")[1].split()[0]
    again = field("track", str(GPX), "--patrol-id", patrol_id)
    assert again.exit_code == 0, again.output
    patrols = field("status", "--json")
    bodies = [u for u in json.loads(patrols.output)["unsent"] if u["report_id"] == patrol_id]
    assert len(bodies) == 2
    field.faults.sent.clear()
    assert "pushed: applied 2" in field("sync").output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cut.gpx", GPX.read_text()[:400], "not well-formed GPX/XML"),
        ("untimed.gpx", GPX.read_text().replace("<time>", "<desc>").replace("</time>", "</desc>"),
         "point 1 has no <time>"),
        ("track.geojson", '{"type": "LineString", "coordinates": [[20.1, 5.7]]}', "no fix times"),
    ],
    ids=["truncated-gpx", "gpx-without-times", "bare-geojson"],
)  # fmt: skip
def test_a_malformed_track_file_is_a_clear_error_and_queues_nothing(
    api, tmp_path, name, content, message
):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    bad = tmp_path / name
    bad.write_text(content)
    field.faults.sent.clear()

    refused = field("track", str(bad), "--kind", "foot")

    assert refused.exit_code == EXIT_USAGE, refused.output
    assert f"error: {name}" in refused.output and message in refused.output
    assert "Traceback" not in refused.output
    assert _unsent(field) == []
    assert field.faults.sent == []


@pytest.mark.parametrize(
    "args",
    [
        ["attach", "{unknown}", "{photo}"],
        ["note", "{unknown}", "a note"],
        ["withdraw", "{unknown}"],
    ],
    ids=["attach", "note", "withdraw"],
)
def test_ops_on_a_report_the_device_does_not_hold_are_refused(api, tmp_path, args):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"x" * 100)
    unknown = str(uuid.uuid4())

    refused = field(*[a.format(unknown=unknown, photo=photo) for a in args])

    assert refused.exit_code == EXIT_USAGE, refused.output
    assert f"error: No report {unknown} on this device" in refused.output
    assert _unsent(field) == []
    assert list((tmp_path / "store.sqlite3.files").glob("*")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attach", "not-a-uuid", "{photo}"], "is not a report id"),
        (["track", "{gpx}", "--kind", "bicycle"], "'bicycle': use one of foot, mobile"),
        (["track", "{gpx}", "--patrol-id", "42"], "is not a report id"),
        (["note", "{report}", "   "], "a note is 1 to 10,000 characters"),
    ],
    ids=["attach-bad-id", "track-kind", "track-bad-id", "empty-note"],
)
def test_bad_arguments_are_usage_errors_and_queue_nothing(api, tmp_path, args, message):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    report_id = _report(field)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"x" * 100)

    refused = field(*[a.format(photo=photo, gpx=GPX, report=report_id) for a in args])

    assert refused.exit_code == EXIT_USAGE, refused.output
    assert message in refused.output
    assert [u["kind"] for u in _unsent(field)] == ["create"]
