"""Coverage on the database: the last presence is kept incrementally and equals the maximum over
patrol cells after any sequence of writes; recomputes are idempotent; coverage nests across
resolutions; gaps are assigned as reports are routed; sync appends and rq workers recompute."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.coverage import service as coverage
from server.coverage.models import CellLastPresence, CoverageDirty, PatrolCell
from server.patrols import service as patrols
from server.patrols.enums import PatrolType
from server.patrols.models import Patrol
from server.patrols.schemas import PatrolCreate, PatrolUpdate, TrackFix
from server.units import service as units
from server.worker import context as job_context
from server.worker import tasks
from server.worker.queue import RqQueue, install_after_commit_hook
from tests.seed import POINT_A1_1

pytestmark = pytest.mark.integration


def fixes_from(
    start: tuple[float, float], hours_ago: float, n: int = 15, step=(0.0012, 0.0004)
) -> list[TrackFix]:
    began = datetime.now(UTC) - timedelta(hours=hours_ago)
    return [
        TrackFix(
            t=began + timedelta(minutes=i), lon=start[0] + i * step[0], lat=start[1] + i * step[1]
        )
        for i in range(n)
    ]


def record(
    session: Session,
    actor: Any,
    settings: Any,
    start: tuple[float, float],
    hours_ago: float,
    kind: PatrolType = PatrolType.FOOT,
    **kw: Any,
) -> Patrol:
    patrol = patrols.create(session=session, patrol_in=PatrolCreate(kind=kind, **kw), actor=actor)
    patrols.append_fixes(
        session=session,
        patrol_id=patrol.id,
        fixes=fixes_from(start, hours_ago),
        actor=actor,
        mission=settings.mission,
    )
    coverage.recompute_dirty(session, settings=settings)
    return patrol


def last_presence_table(session: Session) -> dict[tuple[int, int], datetime]:
    return {
        (r, c): t
        for r, c, t in session.execute(
            select(
                CellLastPresence.resolution,
                CellLastPresence.cell,
                CellLastPresence.last_presence_at,
            )
        )
    }


def maximum_over_patrol_cells(session: Session) -> dict[tuple[int, int], datetime]:
    return {
        (r, c): t
        for r, c, t in session.execute(
            select(
                PatrolCell.resolution, PatrolCell.cell, func.max(PatrolCell.last_presence_at)
            ).group_by(PatrolCell.resolution, PatrolCell.cell)
        )
    }


def test_a_late_older_track_never_lowers_the_last_presence(session, settings, actor_of):
    officer = actor_of("officer_a")
    recent = record(session, officer, settings, POINT_A1_1, hours_ago=2)
    before = last_presence_table(session)
    older = record(session, officer, settings, POINT_A1_1, hours_ago=30)
    after = last_presence_table(session)
    shared = set(before) & set(after)
    assert shared and all(after[key] == before[key] for key in shared)
    owners = set(session.scalars(select(CellLastPresence.patrol_id)))
    assert recent.id in owners
    assert after == maximum_over_patrol_cells(session)
    assert session.scalar(select(func.count()).select_from(CoverageDirty)) == 0
    assert older.coverage_at is not None


def test_recomputing_a_patrol_changes_nothing(session, settings, actor_of):
    patrol = record(session, actor_of("officer_a"), settings, POINT_A1_1, hours_ago=3)

    def rows() -> list[tuple[Any, ...]]:
        return sorted(
            session.execute(
                select(
                    PatrolCell.resolution,
                    PatrolCell.cell,
                    PatrolCell.km,
                    PatrolCell.minutes,
                    PatrolCell.last_presence_at,
                ).where(PatrolCell.patrol_id == patrol.id)
            ).all()
        )

    first, table = rows(), last_presence_table(session)
    coverage.recompute_patrol(session, patrol_id=patrol.id, settings=settings)
    assert rows() == first and last_presence_table(session) == table


def test_coverage_nests_across_resolutions(session, settings, actor_of):
    patrol = record(session, actor_of("officer_a"), settings, POINT_A1_1, hours_ago=3)
    km = dict(
        session.execute(
            select(PatrolCell.resolution, func.sum(PatrolCell.km))
            .where(PatrolCell.patrol_id == patrol.id)
            .group_by(PatrolCell.resolution)
        ).all()
    )
    assert sorted(km) == coverage.coverage_resolutions(settings) == [5, 6, 7, 8]
    assert all(v == pytest.approx(patrol.track_km) for v in km.values())
    fine = session.scalars(
        select(PatrolCell.cell).where(PatrolCell.patrol_id == patrol.id, PatrolCell.resolution == 8)
    ).all()
    coarse = session.scalars(
        select(PatrolCell.cell).where(PatrolCell.patrol_id == patrol.id, PatrolCell.resolution == 6)
    ).all()
    assert set(coarse) == set(geo_cells.cell_parents(np.array(fine), 6).tolist())


def test_a_smaller_sensing_radius_shrinks_presence_and_rebuilds_it(session, settings, actor_of):
    officer = actor_of("officer_a")
    wide = record(session, officer, settings, POINT_A1_1, hours_ago=2, sensing_radius_m=3000)
    narrow = record(session, officer, settings, POINT_A1_1, hours_ago=20)
    cells_wide = len(last_presence_table(session))
    patrols.update(
        session=session,
        patrol_id=wide.id,
        patrol_in=PatrolUpdate(sensing_radius_m=100),
        actor=officer,
    )
    coverage.recompute_dirty(session, settings=settings)
    table = last_presence_table(session)
    assert len(table) < cells_wide
    assert table == maximum_over_patrol_cells(session)
    # Cells the narrow patrol alone still reaches now carry its (older) time.
    narrow_cells = set(
        session.execute(
            select(PatrolCell.resolution, PatrolCell.cell).where(PatrolCell.patrol_id == narrow.id)
        ).all()
    )
    assert narrow_cells <= set(table)


def test_the_last_presence_table_is_the_maximum_after_any_writes(session, settings, actor_of):
    rng = np.random.default_rng(11)
    officer = actor_of("officer_a")
    made = []
    for _ in range(6):
        start = (POINT_A1_1[0] + rng.uniform(-0.01, 0.01), POINT_A1_1[1] + rng.uniform(-0.01, 0.01))
        made.append(record(session, officer, settings, start, hours_ago=float(rng.uniform(1, 90))))
        if rng.random() < 0.5:
            victim = made[int(rng.integers(0, len(made)))]
            patrols.update(
                session=session,
                patrol_id=victim.id,
                patrol_in=PatrolUpdate(sensing_radius_m=float(rng.choice([100, 500, 2000]))),
                actor=officer,
            )
            coverage.recompute_dirty(session, settings=settings)
        assert last_presence_table(session) == maximum_over_patrol_cells(session)


@pytest.mark.parametrize("seed", range(3))
def test_gaps_are_assigned_as_reports_are_routed(session, settings, seed):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(19.9, 21.1, 60)
    lat = rng.uniform(5.45, 6.05, 60)
    cells = geo_cells.point_cells(lat, lon, 8)
    got = coverage.responsible_units(session, cells=cells, resolution=8, settings=settings)
    for i in range(cells.size):
        indexed = geo_cells.index_points([lat[i]], [lon[i]], [8])[0]
        by_resolution = {
            r: int(c) or None
            for r, c in zip(geo_cells.STORED_RESOLUTIONS, indexed.tolist(), strict=True)
        }
        expected = units.route_cells(session=session, cells=by_resolution, mission=settings.mission)
        assert (None if got[i] < 0 else int(got[i])) == expected, (lon[i], lat[i])


def test_a_sync_track_append_gets_its_coverage_after_commit(api, session):
    from tests.api._builders import walk_fixes
    from tests.sync.kit import SyncDevice

    device = SyncDevice.for_user(api, "officer_a")
    patrol_id = uuid.uuid4()
    body = {"patrol": {"kind": "foot"}, "points": walk_fixes(POINT_A1_1, fixes=10)}
    (result,) = device.push(device.op("track_append", patrol_id, body))
    assert result["status"] == "applied"
    session.expire_all()
    stored = session.get(Patrol, patrol_id)
    assert stored is not None and stored.coverage_at is not None and stored.track_km > 0
    assert session.scalar(
        select(func.count()).select_from(PatrolCell).where(PatrolCell.patrol_id == patrol_id)
    )


@pytest.mark.redis
def test_an_rq_worker_recomputes_coverage(session_factory, session, settings, actor_of):
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
    officer = actor_of("officer_a")
    patrol = patrols.create(
        session=session, patrol_in=PatrolCreate(kind=PatrolType.FOOT), actor=officer
    )
    patrols.append_fixes(
        session=session,
        patrol_id=patrol.id,
        fixes=fixes_from(POINT_A1_1, 2),
        actor=officer,
        mission=settings.mission,
    )
    session.commit()  # the stored fixes queue the recompute on Redis
    jobs = queue.rq_queue.get_jobs()
    assert [job.func_name for job in jobs] == ["server.worker.tasks.recompute_dirty_coverage"]
    assert jobs[0].retries_left == 3
    SimpleWorker([queue.rq_queue], connection=connection).work(burst=True)
    assert queue.rq_queue.fetch_job(jobs[0].id).return_value() == 1
    session.expire_all()
    assert session.get(Patrol, patrol.id).coverage_at is not None
    assert tasks.recompute_dirty_coverage() == 0  # a second run finds nothing due
    connection.flushdb()
