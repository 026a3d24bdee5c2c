"""Hotspot snapshots: which AORs a change dirties, what a recompute stores, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from server.hotspots import service as hotspots
from server.hotspots.models import HotspotCell, HotspotDirty, HotspotSnapshot
from server.reports import service as reports
from server.reports.schemas import ReportCreate
from server.units.models import AorVersion
from tests.seed import POINT_A1_1

pytestmark = pytest.mark.integration


def _file(session, settings, actor, point=POINT_A1_1, category="killing_of_civilians", n=1):
    for _ in range(n):
        body = ReportCreate.model_validate(
            {
                "id": str(uuid.uuid4()),
                "category": category,
                "occurred_at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
                "location": {"type": "Point", "coordinates": list(point)},
                "location_accuracy_m": 20,
            }
        )
        reports.create(session=session, report_in=body, actor=actor, mission=settings.mission)


def _dirty_units(session) -> set[int]:
    return set(
        session.scalars(
            select(AorVersion.unit_id).join(
                HotspotDirty, HotspotDirty.aor_version_id == AorVersion.id
            )
        )
    )


def test_a_report_dirties_only_the_aors_that_hold_it(session, settings, mission, actor_of):
    session.execute(HotspotDirty.__table__.delete())
    _file(session, settings, actor_of("analyst"))
    session.flush()
    expected = {
        mission.unit_id(c) for c in ("coy-a1-1", "bn-a1", "sector-a", "force-hq", "mission-hq")
    }
    assert _dirty_units(session) == expected


def test_recompute_stores_every_eligible_picture_and_prunes(session, settings, mission, actor_of):
    _file(session, settings, actor_of("analyst"), n=4)
    aor = session.scalars(
        select(AorVersion).where(
            AorVersion.unit_id == mission.unit_id("coy-a1-1"), AorVersion.valid_to.is_(None)
        )
    ).one()
    eligible = hotspots.eligible_resolutions(session, aor, settings)
    assert eligible and all(
        settings.hotspots.min_cells
        <= hotspots.universe_size(session, aor, r)
        <= settings.hotspots.max_cells
        for r in eligible
    )
    now = datetime.now(UTC)
    for hours in range(settings.hotspots.retention + 2):
        hotspots.recompute(
            session, settings=settings, as_of=now + timedelta(hours=hours), aor_version_ids=[aor.id]
        )
    per_key = session.execute(
        select(HotspotSnapshot.resolution, HotspotSnapshot.audience, func.count())
        .where(HotspotSnapshot.aor_version_id == aor.id)
        .group_by(HotspotSnapshot.resolution, HotspotSnapshot.audience)
    ).all()
    assert {r for r, _, _ in per_key} == set(eligible)
    assert {a for _, a, _ in per_key} == {"full", "general"}
    assert all(count == settings.hotspots.retention for _, _, count in per_key)
    newest = session.scalars(
        select(HotspotSnapshot)
        .where(
            HotspotSnapshot.aor_version_id == aor.id,
            HotspotSnapshot.resolution == max(eligible),
            HotspotSnapshot.audience == "general",
        )
        .order_by(HotspotSnapshot.as_of.desc())
    ).first()
    assert newest.incidents == 4
    stored_cells = session.scalar(
        select(func.count()).select_from(HotspotCell).where(HotspotCell.snapshot_id == newest.id)
    )
    assert 0 < stored_cells < newest.universe_cells  # notable cells only


def test_a_quiet_aor_stores_an_empty_picture_without_analysis(session, settings, mission):
    aor = session.scalars(
        select(AorVersion).where(
            AorVersion.unit_id == mission.unit_id("bn-b1"), AorVersion.valid_to.is_(None)
        )
    ).one()
    stored = hotspots.recompute(
        session, settings=settings, as_of=datetime.now(UTC), aor_version_ids=[aor.id]
    )
    assert stored > 0
    snapshots = session.scalars(
        select(HotspotSnapshot).where(HotspotSnapshot.aor_version_id == aor.id)
    ).all()
    assert all(s.incidents == 0 and s.universe_cells > 0 for s in snapshots)
    assert (
        session.scalar(
            select(func.count())
            .select_from(HotspotCell)
            .where(HotspotCell.snapshot_id.in_([s.id for s in snapshots]))
        )
        == 0
    )


def test_a_sensitive_incident_gives_a_separate_full_picture(session, settings, mission, actor_of):
    _file(session, settings, actor_of("protection"), category="sexual_violence", n=3)
    aor = session.scalars(
        select(AorVersion).where(
            AorVersion.unit_id == mission.unit_id("coy-a1-1"), AorVersion.valid_to.is_(None)
        )
    ).one()
    analyses = hotspots.compute_snapshots(
        session, settings=settings, as_of=datetime.now(UTC), aor=aor
    )
    by_audience = {}
    for analysis in analyses:
        by_audience.setdefault(analysis.audience, []).append(analysis.incidents)
    assert set(by_audience["general"]) == {0}
    assert max(by_audience["full"]) == 3
