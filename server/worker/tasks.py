"""rq jobs. Thin, at stable import paths, taking ids not objects, safe to run twice."""

from __future__ import annotations

import logging

from server.db.base import utcnow
from server.db.session import read_only
from server.units import service as units_service
from server.worker.context import current, job_session

log = logging.getLogger("vigil.jobs")


def reassign_aor_units() -> int:
    """Recompute which unit's AOR holds each report and incident (after an AOR change).

    Idempotent: it derives ``aor_unit_id`` from the current AORs, so a second run changes nothing.
    """
    from server.sites import service as sites

    with job_session() as session:
        updated = units_service.reassign_all_aor_units(
            session=session, mission=current().settings.mission
        )
        updated += sites.reassign_aor_units(session=session, mission=current().settings.mission)
    log.info("aor units reassigned", extra={"rows": updated})
    return updated


def _recompute_each(aor_version_ids: list[int]) -> int:
    """Per AOR: analyse in a read-only transaction, then store in a short write transaction —
    on SQLite the write lock is held for the inserts only, never for the analysis."""
    from server.hotspots import service as hotspots
    from server.units.models import AorVersion

    context = current()
    as_of = utcnow()
    stored = 0
    for aor_version_id in aor_version_ids:
        with read_only(context.session_factory) as reader:
            aor = reader.get(AorVersion, aor_version_id)
            if aor is None or aor.valid_to is not None:
                continue
            analyses = hotspots.compute_snapshots(
                reader, settings=context.settings, as_of=as_of, aor=aor
            )
        with job_session() as session:
            stored += hotspots.store_snapshots(
                session,
                analyses,
                aor_version_id=aor_version_id,
                retention=context.settings.hotspots.retention,
            )
    return stored


def recompute_dirty_hotspots() -> int:
    """Recompute the snapshots of AORs whose incidents changed. Idempotent: a second run finds
    nothing dirty, and recomputing stores the same picture under the same key.

    The dirty rows are claimed in their own transaction; if the job dies after that, the hourly
    refresh recomputes everything anyway.
    """
    from server.hotspots import service as hotspots

    with job_session() as session:
        dirty = hotspots.take_dirty(session)
    if not dirty:
        return 0
    stored = _recompute_each(dirty)
    log.info("hotspots recomputed", extra={"job": "recompute_dirty_hotspots", "count": stored})
    return stored


def refresh_hotspots() -> int:
    """Recompute every current AOR's snapshots (windows move with time, even without news)."""
    from sqlalchemy import select

    from server.hotspots import service as hotspots
    from server.units.models import AorVersion

    with job_session() as session:
        hotspots.take_dirty(session)
        current_ids = list(
            session.scalars(select(AorVersion.id).where(AorVersion.valid_to.is_(None)))
        )
    stored = _recompute_each(current_ids)
    log.info("hotspots refreshed", extra={"job": "refresh_hotspots", "count": stored})
    return stored


def recompute_dirty_coverage() -> int:
    """Derive the coverage of patrols whose fixes changed (queued after every commit that
    stores fixes, and polled). Idempotent: coverage is rewritten from the fixes, and the last
    presence is a maximum. Claiming and writing share one transaction per batch, so a failure
    leaves the patrols due for the retry."""
    from server.coverage import service as coverage

    context = current()
    done = 0
    while True:
        with job_session() as session:
            batch = coverage.recompute_dirty(session, settings=context.settings, limit=50)
        done += batch
        if batch < 50:
            break
    if done:
        log.info("coverage recomputed", extra={"job": "recompute_dirty_coverage", "count": done})
    return done


def sync_housekeeping() -> dict[str, int]:
    """Drop tombstones older than the horizon and discard expired unfinished uploads.
    Idempotent: a second run finds nothing left to do."""
    from server.sync import service as sync
    from server.sync import uploads

    settings = current().settings
    with job_session() as session:
        pruned = sync.prune_tombstones(session, settings.sync)
        discarded = uploads.discard_expired(session, settings)
    log.info(
        "sync housekeeping",
        extra={"job": "sync_housekeeping", "tombstones": pruned, "uploads": discarded},
    )
    return {"tombstones_pruned": pruned, "uploads_discarded": discarded}
