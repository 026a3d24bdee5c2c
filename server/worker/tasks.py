"""rq jobs. Thin, at stable import paths, taking ids not objects, safe to run twice."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select

from server.db.base import utcnow
from server.db.session import read_only
from server.units import service as units_service
from server.worker.context import current, job_session
from server.worker.queue import on_alerts_queue

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
                alerts=context.settings.alerts,
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


# ------------------------------------------------------------------------------------ alerts


def _moment(at: str | None) -> datetime:
    """Jobs run at the current time; tests and replays pass an ISO time instead."""
    return datetime.fromisoformat(at) if at else utcnow()


def _follow_up(notification_ids: list[int], escalations: list[tuple[int, int, datetime]]) -> None:
    """After the job's commit: a delivery job per external notification, an rq timer per
    escalation deadline (in-process, the periodic tick stands in for the timers)."""
    queue = current().queue
    if queue is None:
        # No queue (a CLI run, a test): deliver here, one by one; a failure waits for the
        # tick's sweep of undelivered notifications.
        for notification_id in notification_ids:
            try:
                deliver_alert_notification(notification_id)
            except Exception:
                log.warning("alert delivery deferred", extra={"notification": notification_id})
        return
    for notification_id in notification_ids:
        queue.enqueue(deliver_alert_notification, notification_id)
    for alert_id, level, due in escalations:
        queue.enqueue_at(due, escalate_alert, alert_id, level)


@on_alerts_queue
def drain_alert_outbox(at: str | None = None) -> int:
    """Turn outbox rows into alerts and due notifications, a batch per transaction, until the
    outbox is empty. Idempotent: processed rows are marked in the transaction that used them,
    an alert counts each subject once, and the delivery log is unique per step."""
    from server.alerts_inbox import service as alerts
    from server.alerts_inbox.models import Alert

    context = current()
    if not context.settings.alerts.enabled:
        return 0
    processed = 0
    while True:
        now = _moment(at)
        with job_session() as session:
            before = session.scalar(select(func.max(Alert.id))) or 0
            result = alerts.drain_outbox(session, settings=context.settings, now=now)
            new_ids = list(session.scalars(select(Alert.id).where(Alert.id > before)))
            timers = alerts.next_escalation_times(session, new_ids)
        _follow_up(result.notifications, timers)
        processed += result.processed
        if result.processed < context.settings.alerts.outbox_batch:
            break
    if processed:
        log.info("alert outbox drained", extra={"job": "drain_alert_outbox", "count": processed})
    return processed


@on_alerts_queue
def deliver_alert_notification(notification_id: int) -> str:
    """Send one notification (webhook or e-mail). Safe to run twice: a delivered notification
    is not sent again, and a resend after a crash carries the same idempotency key."""
    from server.alerts_inbox import delivery

    context = current()
    return delivery.deliver(
        context.session_factory, notification_id, settings=context.settings, now=utcnow
    )


@on_alerts_queue
def escalate_alert(alert_id: int, level: int, at: str | None = None) -> bool:
    """rq's timer for one alert's acknowledgement deadline: escalate it if it is still open at
    ``level`` and due. Idempotent: a second run finds it moved on."""
    from server.alerts_inbox import service as alerts
    from server.alerts_inbox.models import Alert

    context = current()
    now = _moment(at)
    with job_session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.level != level:
            return False
        escalated = alerts.escalate_due(session, now=now, alert_ids=[alert_id])
        notifications = alerts.flush_due_groups(session, settings=context.settings, now=now)
        timers = alerts.next_escalation_times(session, escalated)
    _follow_up(notifications, timers)
    return bool(escalated)


@on_alerts_queue
def alerts_tick(at: str | None = None) -> dict[str, int]:
    """The alert clock: drain what the outbox holds, escalate what is overdue, auto-resolve
    flash alerts that aged out, flush groups whose timers ran out, and hand undelivered
    notifications to a delivery job again. Every step is idempotent."""
    from server.alerts_inbox import service as alerts

    context = current()
    if not context.settings.alerts.enabled:
        return {}
    drained = drain_alert_outbox(at)
    now = _moment(at)
    with job_session() as session:
        escalated = alerts.escalate_due(session, now=now)
        expired = alerts.expire_flash_alerts(session, now=now)
        notifications = alerts.flush_due_groups(session, settings=context.settings, now=now)
        retry = alerts.undelivered(session, settings=context.settings, now=now)
        timers = alerts.next_escalation_times(session, escalated)
    pending = list(dict.fromkeys([*notifications, *retry]))
    _follow_up(pending, timers)
    return {
        "drained": drained,
        "escalated": len(escalated),
        "expired": expired,
        "notifications": len(pending),
    }


@on_alerts_queue
def evaluate_coverage_gaps(at: str | None = None) -> int:
    """Put every threatened cell's coverage state on the alert outbox (the gap rule raises the
    overdue ones and clears those that presence has closed), then drain."""
    from server.alerts_inbox import service as alerts

    context = current()
    if not context.settings.alerts.enabled:
        return 0
    now = _moment(at)
    with job_session() as session:
        facts = alerts.gap_facts(session, settings=context.settings, now=now)
        alerts.record_gaps(session, facts)
    drain_alert_outbox(at)
    return len(facts)


def preload() -> None:
    """Import what the jobs import lazily, once, in the worker's parent process.

    rq forks a work horse per job; a module first imported inside a horse is imported again by
    the next one. Measured (bench_alerts.py): a drain job took 0.16 s and a delivery 0.21 s,
    most of it imports, which capped one worker at ~2.5 alerts/s.
    """
    import importlib

    for name in (
        "server.alerts_inbox.delivery",
        "server.alerts_inbox.notifiers",
        "server.alerts_inbox.service",
        "server.coverage.service",
        "server.hotspots.service",
        "server.sites.service",
        "server.sync.service",
        "server.sync.uploads",
        "alerts.cap",
    ):
        importlib.import_module(name)
