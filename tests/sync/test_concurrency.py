"""Concurrent connections that really commit (tests/sync/committed.py): a retry storm of one
op (SYNC.md §6 scenario 2, kobocat#470), one device's ops racing each other (I4), and the
commit-ordered change log (scenario 21: a pull never skips a change, and would without the
ordering lock)."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from server.reports.models import Report
from server.sync import changes
from server.sync.models import SyncOp
from tests.sync.committed import CommittedServer, committed_server
from tests.sync.kit import SyncDevice

STORM = 50


@pytest.fixture(scope="module")
def server(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommittedServer]:
    with committed_server(settings, tmp_path_factory.mktemp("commits")) as server:
        yield server


@pytest.fixture
def device(server: CommittedServer) -> SyncDevice:
    return SyncDevice.for_user(server.api, "officer_a")


def _in_parallel(calls: list[Any]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_fifty_identical_pushes_apply_once(server: CommittedServer, device: SyncDevice) -> None:
    """Two sync loops and a retry storm deliver one batch 50 times at once: one ``applied``,
    49 ``duplicate``, one report, one ledger row; never a 5xx."""
    op = device.create()
    batch = device.batch([op])
    responses = _in_parallel([lambda: device.push_body(batch)] * STORM)
    assert [r.status_code for r in responses] == [200] * STORM, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    statuses = Counter(r.json()["results"][0]["status"] for r in responses)
    assert statuses == {"applied": 1, "duplicate": STORM - 1}
    versions = {r.json()["results"][0]["version"] for r in responses}
    assert versions == {1}
    report_id = uuid.UUID(op["report_id"])
    with server.session_factory() as session:
        assert session.scalar(select(func.count()).where(Report.id == report_id)) == 1
        ops = session.scalar(select(func.count()).where(SyncOp.op_id == uuid.UUID(op["op_id"])))
        assert ops == 1


def test_one_op_in_fifty_different_batches_applies_once(
    server: CommittedServer, device: SyncDevice
) -> None:
    op = device.create()
    batches = [device.batch([op]) for _ in range(STORM)]
    responses = _in_parallel([lambda b=b: device.push_body(b) for b in batches])
    assert {r.status_code for r in responses} == {200}
    statuses = Counter(r.json()["results"][0]["status"] for r in responses)
    assert statuses == {"applied": 1, "duplicate": STORM - 1}


def test_racing_ops_of_one_device_take_effect_in_device_seq_order(
    server: CommittedServer, device: SyncDevice
) -> None:
    """I4: 50 edits pushed at once in 50 batches, in shuffled order. Each is applied or
    deferred; resending the deferred ones (as the client does) applies all, strictly in
    device_seq order, whatever order they arrived in."""
    create = device.create(place_name="v0")
    device.push(create)
    report_id = create["report_id"]
    edits = [
        device.op("set_fields", report_id, {"fields": {"place_name": f"v{i}"}}, base_version=i)
        for i in range(1, STORM + 1)
    ]
    shuffled = random.Random(7).sample(edits, len(edits))
    responses = _in_parallel([lambda e=e: device.push_body(device.batch([e])) for e in shuffled])
    results = {r.json()["results"][0]["device_seq"]: r.json()["results"][0] for r in responses}
    assert {r["status"] for r in results.values()} <= {"applied", "deferred"}
    while any(r["status"] == "deferred" for r in results.values()):
        waiting = sorted(s for s, r in results.items() if r["status"] == "deferred")
        for result in device.push(*(e for e in edits if e["device_seq"] in waiting)):
            results[result["device_seq"]] = result
    applied = [results[e["device_seq"]] for e in edits]
    assert all(r["status"] in ("applied", "duplicate") for r in applied)
    # Version n+1 is the n-th edit: each edit was applied on top of the previous one.
    assert [r["version"] for r in applied] == list(range(2, STORM + 2))
    with server.session_factory() as session:
        report = session.get(Report, uuid.UUID(report_id))
        assert report is not None
        assert (report.place_name, report.version, report.conflict_state) == (
            f"v{STORM}",
            STORM + 1,
            "none",
        )


def _pull_once(device: SyncDevice, cursor: str | None) -> tuple[set[str], str]:
    params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
    response = device.http.get("/sync/v1/pull", params=params, headers=device.headers())
    assert response.status_code == 200, response.text
    page = response.json()
    return {c["report_id"] for c in page["changes"]}, page["next_cursor"]


def _out_of_order_commit(server: CommittedServer, device: SyncDevice) -> set[str]:
    """T1 numbers its change and is slow to commit; T2 numbers and commits meanwhile; a puller
    pulls in between and again after both. Returns the report ids that never reached it."""
    first, second = device.create(), device.create()
    device.push(first, second)
    _, cursor = _pull_once(device, None)
    slow = server.session_factory()
    changes.note_change(slow, report_id=uuid.UUID(first["report_id"]), version=1)
    changes.number_pending_changes(slow)  # seq allocated; COMMIT delayed
    fast_done = threading.Event()

    def fast() -> None:
        with server.session_factory() as session:
            changes.note_change(session, report_id=uuid.UUID(second["report_id"]), version=1)
            session.commit()
        fast_done.set()

    writer = threading.Thread(target=fast)
    writer.start()
    fast_done.wait(timeout=2.0)  # with the lock, it cannot commit before T1 does
    seen, cursor = _pull_once(device, cursor)
    slow.commit()
    slow.close()
    writer.join(timeout=30)
    assert not writer.is_alive()
    later, _ = _pull_once(device, cursor)
    return {first["report_id"], second["report_id"]} - (seen | later)


@pytest.mark.postgres_only
def test_a_pull_never_skips_a_change_committed_out_of_order(
    server: CommittedServer, device: SyncDevice
) -> None:
    assert _out_of_order_commit(server, device) == set()


@pytest.mark.postgres_only
def test_without_the_ordering_lock_the_pull_would_skip_it(
    server: CommittedServer, device: SyncDevice
) -> None:
    """The control: the same schedule with the advisory lock off loses T1's change for good,
    which is what the lock prevents."""
    changes.ordering_enabled(False)
    try:
        missed = _out_of_order_commit(server, device)
    finally:
        changes.ordering_enabled(True)
    assert len(missed) == 1


def test_concurrent_pushes_from_many_devices_all_land(server: CommittedServer) -> None:
    devices = [SyncDevice.for_user(server.api, "officer_a") for _ in range(10)]
    ops = [[d.create() for _ in range(5)] for d in devices]
    responses = _in_parallel(
        [lambda d=d, o=o: d.push_body(d.batch(o)) for d, o in zip(devices, ops, strict=True)]
    )
    assert {r.status_code for r in responses} == {200}
    statuses = Counter(x["status"] for r in responses for x in r.json()["results"])
    assert statuses == {"applied": 50}
