"""Device clocks (SYNC.md §4.8, scenarios 30–31: wrong clocks are measured, corrected for
display and flagged, never used for ordering) and patrol track appends over sync."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.patrols.models import Patrol, PatrolTrackPoint
from tests.api._builders import API, iso
from tests.sync.kit import SYNC, SyncDevice

YEAR_MS = 365 * 86_400_000


def _probe(device: SyncDevice) -> dict[str, int]:
    """One hello as a clock probe: t0/t3 by the device clock, t1/t2 stamped by the server."""
    t0 = device.device_time_ms()
    response = device.http.get(f"{SYNC}/hello", headers=device.headers())
    t3 = device.device_time_ms()
    assert response.status_code == 200, response.text
    return {
        "t0_ms": t0,
        "t1_ms": int(response.headers["X-Server-Received-Ms"]),
        "t2_ms": int(response.headers["X-Server-Time-Ms"]),
        "t3_ms": t3,
    }


def _push_with_probe(device: SyncDevice, probe: dict[str, int], *ops: dict[str, Any]) -> Any:
    response = device.push_body(device.batch(list(ops), previous_exchange=probe))
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _report(api: Any, report_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.as_("analyst").get(f"{API}/reports/{report_id}").json()
    return body


def _seconds_from_now(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return abs((moment - datetime.now(UTC)).total_seconds())


def test_a_clock_set_to_1970_is_measured_corrected_and_flagged(api: Any) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    device.clock_skew_ms = -(int(time.time() * 1000) - 86_400_000)  # 2 January 1970
    probe = _probe(device)
    op = device.create()
    (result,) = _push_with_probe(device, probe, op)
    assert result["status"] == "applied"
    report = _report(api, op["report_id"])
    assert report["captured_at_device"].startswith("1970-01-0")
    assert _seconds_from_now(report["captured_at_corrected"]) < 120
    assert report["capture_time_flag"] == "clock_offset"
    assert 0 <= report["capture_uncertainty_ms"] < 60_000


def test_a_clock_two_years_ahead_cannot_push_a_report_into_the_future(api: Any) -> None:
    """The form took the incident time from the fast clock: corrected by the measured offset."""
    device = SyncDevice.for_user(api, "officer_a")
    device.clock_skew_ms = 2 * YEAR_MS
    probe = _probe(device)
    device_now = datetime.now(UTC) + timedelta(milliseconds=device.clock_skew_ms)
    op = device.create(occurred_at=iso(device_now - timedelta(hours=3)))
    (result,) = _push_with_probe(device, probe, op)
    assert result["status"] == "applied" and not result["quarantined"]
    report = _report(api, op["report_id"])
    occurred = datetime.fromisoformat(report["occurred_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - occurred) - timedelta(hours=3)) < timedelta(minutes=2)
    assert report["capture_time_flag"] == "clock_offset"


def test_the_clock_changed_between_capture_and_sync_in_the_same_boot(api: Any) -> None:
    """The sample nearest in uptime corrects the capture; later samples do not disturb it."""
    device = SyncDevice.for_user(api, "officer_a")
    device.clock_skew_ms = -3 * 3_600_000  # three hours slow at capture
    (result,) = _push_with_probe(device, _probe(device), device.create())
    assert result["status"] == "applied"
    op = device.create()  # captured right after that sample
    device.started -= 3600  # an hour of uptime later the officer fixes the clock and syncs
    device.clock_skew_ms = 0
    (result,) = _push_with_probe(device, _probe(device), op)
    assert result["status"] == "applied"
    report = _report(api, op["report_id"])
    assert _seconds_from_now(report["captured_at_corrected"]) < 120
    assert report["capture_time_flag"] == "clock_offset"


def test_a_reboot_before_sync_leaves_the_capture_uncorrected_and_flagged(api: Any) -> None:
    """Scenario 31: a new boot id means no offset is known for the boot of the capture."""
    device = SyncDevice.for_user(api, "officer_a")
    device.clock_skew_ms = 10 * 60_000
    op = device.create()
    device.boot_id = uuid.uuid4()
    (result,) = _push_with_probe(device, _probe(device), op)
    assert result["status"] == "applied"
    report = _report(api, op["report_id"])
    assert report["captured_at_corrected"] is None
    assert report["capture_time_flag"] == "no_clock_sample"


def test_device_clocks_never_order_anything(api: Any) -> None:
    """I10: ops apply in device_seq order and pull in commit order, whatever the clocks say."""
    device = SyncDevice.for_user(api, "officer_a")
    create = device.create(place_name="first")
    edit = device.op(
        "set_fields",
        create["report_id"],
        {"fields": {"place_name": "second"}},
        base_version=1,
        device_time_ms=0,  # an edit "from 1970", after the create "from now"
    )
    device.push(create, edit)
    assert _report(api, create["report_id"])["place_name"] == "second"
    other = SyncDevice.for_user(api, "officer_a")
    other.clock_skew_ms = 5 * YEAR_MS
    late = other.create()
    other.push(late)
    changes, _ = device.pull_all()
    order = [c["report_id"] for c in changes]
    assert order.index(create["report_id"]) < order.index(late["report_id"])


# --------------------------------------------------------------------------- patrol tracks


def _fixes(start: datetime, points: list[tuple[float, float]], step_s: int = 60) -> list[Any]:
    return [
        {"t": iso(start + timedelta(seconds=i * step_s)), "lon": lon, "lat": lat, "accuracy_m": 8}
        for i, (lon, lat) in enumerate(points)
    ]


def test_track_appends_are_idempotent_per_fix_and_flag_jumps(api: Any, session: Session) -> None:
    device = SyncDevice.for_user(api, "officer_a")
    patrol_id = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(hours=2)
    first = {
        "patrol": {"kind": "foot"},
        "points": _fixes(start, [(20.120, 5.750), (20.121, 5.751), (20.122, 5.752)]),
    }
    overlapping = {
        "patrol": {"kind": "foot"},
        "points": _fixes(
            start,
            [
                (20.120, 5.750),
                (20.121, 5.751),
                (20.122, 5.752),
                (21.500, 6.900),  # 200 km in a minute: a GPS jump
                (20.124, 5.754),
            ],
        ),
    }
    results = device.push(
        device.op("track_append", patrol_id, first),
        device.op("track_append", patrol_id, overlapping),
    )
    assert [r["status"] for r in results] == ["applied", "applied"]
    points = session.scalars(
        select(PatrolTrackPoint)
        .where(PatrolTrackPoint.patrol_id == patrol_id)
        .order_by(PatrolTrackPoint.recorded_at)
    ).all()
    assert len(points) == 5
    assert [p.excluded for p in points] == [False, False, False, True, False]
    patrol = session.get(Patrol, patrol_id)
    assert patrol is not None and patrol.created_by_device_id == device.device_id


def test_track_appends_need_the_right_role_and_sane_fixes(api: Any) -> None:
    analyst = SyncDevice.for_user(api, "analyst")
    start = datetime.now(UTC) - timedelta(hours=1)
    body = {"patrol": {"kind": "foot"}, "points": _fixes(start, [(20.12, 5.75)])}
    (result,) = analyst.push(analyst.op("track_append", uuid.uuid4(), body))
    assert (result["status"], result["error"]["code"]) == ("rejected", "forbidden")
    officer = SyncDevice.for_user(api, "officer_a")
    backwards = {
        "patrol": {"kind": "foot"},
        "points": _fixes(start, [(20.12, 5.75), (20.13, 5.76)], step_s=-60),
    }
    (result,) = officer.push(officer.op("track_append", uuid.uuid4(), backwards))
    assert result["status"] == "applied" and result["quarantined"]
    assert "increasing time" in result["error"]["detail"]
