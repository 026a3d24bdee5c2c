"""Jobs: queued only after commit, run in-process by default and by an rq worker on Redis."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box
from sqlalchemy import select

from server.access.policy import system_actor
from server.reports import service as reports
from server.reports.models import Report
from server.reports.schemas import ReportCreate
from server.units import service as units
from server.worker import context as job_context
from server.worker import tasks
from server.worker.queue import RqQueue, after_commit, install_after_commit_hook
from tests.seed import POINT_A1_1

pytestmark = pytest.mark.integration


class RecordingQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[object, tuple]] = []

    def enqueue(self, func, *args) -> None:
        self.jobs.append((func, args))


def test_jobs_are_dispatched_once_after_commit_and_never_after_rollback(session_factory):
    queue = RecordingQueue()
    install_after_commit_hook(session_factory, queue)
    session = session_factory()
    after_commit(session, tasks.reassign_aor_units)
    after_commit(session, tasks.reassign_aor_units)  # deduplicated
    assert queue.jobs == []
    session.commit()
    assert queue.jobs == [(tasks.reassign_aor_units, ())]
    after_commit(session, tasks.reassign_aor_units)
    session.rollback()
    session.commit()
    assert len(queue.jobs) == 1
    session.close()


def test_jobs_queued_inside_a_savepoint_wait_for_the_outer_commit(session_factory):
    """Sync applies each op in a savepoint; releasing it is not the commit."""
    queue = RecordingQueue()
    install_after_commit_hook(session_factory, queue)
    session = session_factory()
    with session.begin_nested():
        after_commit(session, tasks.recompute_dirty_coverage)
    assert queue.jobs == []
    with session.begin_nested():
        pass  # a later op's savepoint, released, must not drop the first one's job
    session.commit()
    assert queue.jobs == [(tasks.recompute_dirty_coverage, ())]
    with session.begin_nested():
        after_commit(session, tasks.recompute_dirty_coverage)
    session.rollback()
    session.commit()
    assert len(queue.jobs) == 1
    session.close()


def _report_in_a1_1(session, settings, actor) -> Report:
    body = ReportCreate.model_validate(
        {
            "id": str(uuid.uuid4()),
            "category": "threats_intimidation",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "location": {"type": "Point", "coordinates": list(POINT_A1_1)},
            "location_accuracy_m": 15,
        }
    )
    report, _ = reports.create(
        session=session, report_in=body, actor=actor, mission=settings.mission
    )
    return report


def _shrink_company_a1_1(session, settings, mission) -> None:
    unit = units.get_or_raise(session=session, unit_id=mission.unit_id("coy-a1-1"))
    units.set_aor(
        session=session,
        unit=unit,
        geometry=box(20.0, 5.95, 20.05, 6.0),
        actor=system_actor("test"),
        mission=settings.mission,
    )


def test_reassign_job_is_idempotent(session_factory, session, settings, mission, actor_of):
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=session_factory)
    )
    report = _report_in_a1_1(session, settings, actor_of("analyst"))
    _shrink_company_a1_1(session, settings, mission)
    session.commit()
    tasks.reassign_aor_units()
    first = session.scalar(select(Report.aor_unit_id).where(Report.id == report.id))
    tasks.reassign_aor_units()
    second = session.scalar(select(Report.aor_unit_id).where(Report.id == report.id))
    assert first == second == mission.unit_id("bn-a1")


@pytest.mark.redis
def test_an_rq_worker_runs_the_job_against_the_database(
    session_factory, session, settings, mission, actor_of
):
    from redis import Redis
    from rq import SimpleWorker

    redis_url = os.environ["VIGIL_TEST_REDIS_URL"]
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    queue = RqQueue(redis_url, f"vigil-test-{uuid.uuid4().hex[:8]}")
    install_after_commit_hook(session_factory, queue)
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=session_factory)
    )
    report = _report_in_a1_1(session, settings, actor_of("analyst"))
    assert report.aor_unit_id == mission.unit_id("coy-a1-1")
    _shrink_company_a1_1(session, settings, mission)
    session.commit()  # the AOR change queues the reassignment on Redis
    # The report queued its alert drain (the report's outbox row) on the alerts queue, the AOR
    # change the reassignment on the default one, each once.
    jobs = {job.func_name: job for job in queue.rq_queue.get_jobs()}
    assert sorted(jobs) == ["server.worker.tasks.reassign_aor_units"]
    alert_jobs = [job.func_name for job in queue.alerts_rq_queue.get_jobs()]
    assert alert_jobs == ["server.worker.tasks.drain_alert_outbox"]
    reassign = jobs["server.worker.tasks.reassign_aor_units"]
    assert reassign.retries_left == 3
    SimpleWorker([queue.alerts_rq_queue, queue.rq_queue], connection=connection).work(burst=True)
    finished = queue.rq_queue.fetch_job(reassign.id)
    assert finished.get_status() == "finished"
    assert finished.return_value() > 0
    session.expire_all()
    assert session.scalar(select(Report.aor_unit_id).where(Report.id == report.id)) == (
        mission.unit_id("bn-a1")
    )
    connection.flushdb()


def test_the_ticker_runs_the_dirty_poll_at_once_and_the_refresh_on_its_interval() -> None:
    import threading

    from server.worker.schedule import Periodic, Ticker

    calls: list[str] = []
    done = threading.Event()

    def run(job: Periodic) -> None:
        calls.append(job.job_id)
        if calls.count("refresh") >= 1:
            done.set()

    ticker = Ticker(
        [Periodic("dirty", lambda: None, 1.0), Periodic("refresh", lambda: None, 2.0)], run
    )
    ticker.start()
    try:
        assert done.wait(timeout=15), calls
    finally:
        ticker.stop()
    assert calls[0] == "dirty"  # at once, before any refresh
    assert calls.index("refresh") >= 2  # the refresh waited its interval while dirty polls ran


@pytest.mark.redis
def test_periodic_hotspot_jobs_go_on_rq_and_a_worker_recomputes(
    session_factory, session, settings, mission, actor_of
):
    from redis import Redis
    from rq import Queue, SimpleWorker

    from server.hotspots.models import HotspotDirty, HotspotSnapshot
    from server.worker.schedule import enqueue_on, periodic_jobs

    connection = Redis.from_url(os.environ["VIGIL_TEST_REDIS_URL"])
    connection.flushdb()
    queue = Queue(f"vigil-test-{uuid.uuid4().hex[:8]}", connection=connection)
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=session_factory)
    )
    _report_in_a1_1(session, settings, actor_of("analyst"))
    session.commit()
    assert session.query(HotspotDirty).count() > 0
    before = session.query(HotspotSnapshot).count()
    enqueue = enqueue_on(queue)
    dirty_job = next(j for j in periodic_jobs(settings) if "dirty" in j.job_id)
    enqueue(dirty_job)
    enqueue(dirty_job)  # a second tick before the worker ran: the same job, not a copy
    assert queue.count == 1
    SimpleWorker([queue], connection=connection).work(burst=True)
    job = queue.fetch_job(dirty_job.job_id)
    assert job.get_status() == "finished" and job.return_value() > 0
    session.expire_all()
    assert session.query(HotspotDirty).count() == 0
    assert session.query(HotspotSnapshot).count() > before
    connection.flushdb()
