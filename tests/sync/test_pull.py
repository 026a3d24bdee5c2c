"""GET /sync/v1/pull: the caller's view of field reports over a commit-ordered change log,
with tombstones, revocations and 410 when a cursor can no longer be trusted (SYNC.md §4.5,
scenarios 10, 22–24). The out-of-order commit scenario (21) is in test_concurrency.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import system_actor
from server.db.base import utcnow
from server.imports import service as imports
from server.imports.acled import read_acled
from server.reports.enums import ReportOrigin
from server.reports.models import Report
from server.sync import service as sync
from server.sync.models import Change
from server.worker import tasks
from tests.api._builders import API, report_body
from tests.seed import POINT_A1_1, POINT_B1
from tests.sync.kit import SYNC, SyncDevice

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _pull(device: SyncDevice, cursor: str | None = None, limit: int = 200) -> Any:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    return device.http.get(f"{SYNC}/pull", params=params, headers=device.headers())


def _analyst_report(api: Any, **overrides: Any) -> str:
    body = report_body(**overrides)
    response = api.as_("analyst").post(f"{API}/reports", json=body)
    assert response.status_code == 201, response.text
    return str(body["id"])


def _patch(api: Any, report_id: str, **fields: Any) -> None:
    current = api.as_("analyst").get(f"{API}/reports/{report_id}").json()
    response = api.as_("analyst").patch(
        f"{API}/reports/{report_id}", json={"version": current["version"], **fields}
    )
    assert response.status_code == 200, response.text


def _by_report(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["report_id"]: c for c in changes}


def test_pull_pages_in_seq_order_and_repeats_never_skip(api: Any) -> None:
    """Scenario 22: re-pulling from an older cursor only repeats."""
    device = SyncDevice.for_user(api, "officer_a")
    ops = [device.create() for _ in range(5)]
    device.push(*ops)
    pages = []
    cursor = None
    while True:
        response = _pull(device, cursor, limit=2)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    seqs = [c["seq"] for p in pages for c in p["changes"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    mine = {op["report_id"] for op in ops}
    assert mine <= {c["report_id"] for p in pages for c in p["changes"]}
    again = _pull(device, pages[0]["next_cursor"], limit=500).json()
    assert {c["seq"] for c in again["changes"]} == set(seqs[2:])
    assert all(
        c["kind"] == "upsert" and c["record"]["version"] == c["version"]
        for p in pages
        for c in p["changes"]
    )
    assert _pull(device, cursor).json()["changes"] == []


def test_a_changed_report_moves_to_a_new_seq_with_its_current_state(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    op = device.create(place_name="Before")
    device.push(op)
    changes, cursor = device.pull_all()
    first = _by_report(changes)[op["report_id"]]
    _patch(api, op["report_id"], place_name="After")
    later, _ = device.pull_all(cursor)
    (change,) = [c for c in later if c["report_id"] == op["report_id"]]
    assert change["seq"] > first["seq"]
    assert (change["version"], change["record"]["place_name"]) == (2, "After")


def test_a_report_leaving_the_users_area_is_revoked(api: Any) -> None:
    """Scenario 23: reassigned to another sector's ground → ``revoke``, no record."""
    report_id = _analyst_report(api, point=POINT_A1_1)
    device = SyncDevice.for_user(api, "officer_a")
    changes, cursor = device.pull_all()
    assert _by_report(changes)[report_id]["kind"] == "upsert"
    _patch(api, report_id, location={"type": "Point", "coordinates": list(POINT_B1)})
    later, cursor = device.pull_all(cursor)
    change = _by_report(later)[report_id]
    assert (change["kind"], change["record"]) == ("revoke", None)
    _patch(api, report_id, place_name="still elsewhere")
    quiet, _ = device.pull_all(cursor)
    assert report_id not in _by_report(quiet), "a revoked report is not announced again"


def test_raised_sensitivity_revokes_the_full_copy(api: Any) -> None:
    """Scenario 23: the device must drop its full copy and keep only the redacted one."""
    report_id = _analyst_report(api, point=POINT_A1_1)
    device = SyncDevice.for_user(api, "officer_a")
    changes, cursor = device.pull_all()
    assert _by_report(changes)[report_id]["record"]["detail"] == "full"
    _patch(api, report_id, category="sexual_violence")
    later, _ = device.pull_all(cursor)
    change = _by_report(later)[report_id]
    assert change["kind"] == "revoke"
    assert change["record"]["detail"] == "redacted"
    assert "narrative" not in change["record"]


def test_reports_a_device_never_saw_are_not_announced_on_the_way_out(api: Any) -> None:
    report_id = _analyst_report(api, point=POINT_B1)
    device = SyncDevice.for_user(api, "officer_a")
    changes, _ = device.pull_all()
    assert report_id not in _by_report(changes)
    api.as_("analyst").post(f"{API}/reports/{report_id}/removal", json={"reason": "duplicate"})
    changes, _ = device.pull_all()
    assert report_id not in _by_report(changes)


def test_a_removed_report_arrives_as_a_tombstone(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    op = device.create()
    device.push(op)
    _, cursor = device.pull_all()
    api.as_("analyst").post(
        f"{API}/reports/{op['report_id']}/removal", json={"reason": "entered twice"}
    )
    later, _ = device.pull_all(cursor)
    change = _by_report(later)[op["report_id"]]
    assert (change["kind"], change["record"]) == ("tombstone", None)


def test_imported_datasets_are_not_synced_to_devices(
    api: Any, session: Session, session_factory: Any, settings: Any
) -> None:
    """UCDP/ACLED events are context for analysts, not field data: even once an analyst works
    on one (which puts it in the change log), no device is sent it."""
    imports.import_events(
        session_factory=session_factory,
        dataset="acled",
        rows=read_acled(FIXTURES / "acled_sample.csv"),
        actor=system_actor("test-import"),
        mission=settings.mission,
    )
    imported = session.scalars(
        select(Report.id).where(Report.origin == ReportOrigin.IMPORT).limit(1)
    ).one()
    verified = api.as_("analyst").post(
        f"{API}/reports/{imported}/verification", json={"to_state": "under_verification"}
    )
    assert verified.status_code == 200, verified.text
    assert session.scalar(select(Change.seq).where(Change.report_id == imported)) is not None
    field_report = _analyst_report(api)
    device = SyncDevice.for_user(api, "analyst")
    changes, _ = device.pull_all()
    sent = {c["report_id"] for c in changes}
    assert field_report in sent
    assert str(imported) not in sent
    assert {c["record"]["origin"] for c in changes if c["record"]} == {"field"}


def test_a_new_epoch_answers_410_and_a_replacement_sync_starts_over(
    api: Any, session: Session
) -> None:
    """Scenario 10: after a restore, old cursors are refused; a pull without one works."""
    device = SyncDevice.for_user(api, "officer_a")
    device.push(device.create())
    changes, cursor = device.pull_all()
    sync.new_epoch(session)
    session.commit()
    response = _pull(device, cursor)
    assert response.status_code == 410
    assert response.json()["code"] == "cursor_expired"
    assert "keep your outbox" in response.json()["message"]
    replacement, new_cursor = device.pull_all()
    assert {c["report_id"] for c in replacement} >= {c["report_id"] for c in changes}
    assert _pull(device, new_cursor).status_code == 200


def test_a_cursor_older_than_the_tombstone_horizon_gets_410(
    api: Any, session: Session, settings: Any
) -> None:
    """Scenario 24: tombstones are kept for the horizon; a cursor from before the newest
    pruned one could have missed a removal."""
    device = SyncDevice.for_user(api, "officer_a")
    op = device.create()
    device.push(op)
    _, old_cursor = device.pull_all()
    api.as_("analyst").post(f"{API}/reports/{op['report_id']}/removal", json={"reason": "test"})
    _, fresh_cursor = device.pull_all()
    later = utcnow() + timedelta(days=settings.sync.tombstone_horizon_days + 1)
    assert sync.prune_tombstones(session, settings.sync, now=later) >= 1
    session.commit()
    response = _pull(device, old_cursor)
    assert response.status_code == 410
    assert "older than the server keeps removals" in response.json()["message"]
    assert _pull(device, fresh_cursor).status_code == 200


def test_housekeeping_keeps_tombstones_within_the_horizon(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    op = device.create()
    device.push(op)
    _, cursor = device.pull_all()
    api.as_("analyst").post(f"{API}/reports/{op['report_id']}/removal", json={"reason": "test"})
    done = tasks.sync_housekeeping()
    assert done["tombstones_pruned"] == 0
    later, _ = device.pull_all(cursor)
    assert _by_report(later)[op["report_id"]]["kind"] == "tombstone"


def test_a_cursor_the_server_did_not_issue_is_422(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    for cursor in ("garbage", "AAAA", "x" * 64):
        response = _pull(device, cursor)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "query:cursor"
    assert _pull(device, "x" * 65).status_code == 422
