"""Incidents: one per real-world event, fused from reports; merge, unmerge and suggestions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Select, and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from server.access import policy
from server.access.policy import Actor, Detail, Permission, require
from server.audit import service as audit
from server.db import bulk
from server.db.base import utcnow
from server.errors import NotFoundError, PermissionDeniedError, ValidationFailedError
from server.hotspots import service as hotspots
from server.incidents.fusion import derive
from server.incidents.models import Incident, IncidentReport, IncidentStatus
from server.pagination import newest_first_page
from server.reports.derived import ReportValues
from server.reports.enums import TimePrecision
from server.reports.models import Report
from server.taxonomy.codes import Sensitivity

__all__ = [
    "IncidentFilters",
    "MergeSuggestion",
    "create_for_new_reports",
    "create_for_report",
    "create_for_reports",
    "get_or_raise",
    "incident_ids_for",
    "list_",
    "merge",
    "refresh_for_report",
    "suggestions",
    "unmerge",
]

EARTH_RADIUS_KM = 6371.0088

#: How long a period each time precision spans (for "how far apart in time" of coarse dates).
PRECISION_SPAN = {
    TimePrecision.EXACT: timedelta(0),
    TimePrecision.HOUR: timedelta(hours=1),
    TimePrecision.DAY: timedelta(days=1),
    TimePrecision.WEEK: timedelta(days=7),
    TimePrecision.MONTH: timedelta(days=31),
    TimePrecision.YEAR: timedelta(days=366),
}


def _apply(incident: Incident, reports: Sequence[Report]) -> None:
    derived = derive(reports)
    for name, value in derived.items():
        setattr(incident, name, value)


def create_for_report(
    *, session: Session, report: Report, actor: Actor | None, mark_dirty: bool = True
) -> Incident:
    """Every report starts as its own incident.

    ``mark_dirty=False`` is for bulk callers (imports), which mark every AOR once at the end.
    """
    return create_for_reports(
        session=session, reports=[report], actor=actor, mark_dirty=mark_dirty
    )[0]


def create_for_reports(
    *, session: Session, reports: Sequence[Report], actor: Actor | None, mark_dirty: bool = True
) -> list[Incident]:
    """:func:`create_for_report` for each of ``reports`` (already flushed), marking the
    hotspot pictures they touch once for all."""
    created = []
    for report in reports:
        incident = Incident(id=uuid.uuid4(), version=1, status=IncidentStatus.ACTIVE)
        _apply(incident, [report])
        # No flush here: the unit of work inserts the incident before its link, and bulk
        # callers (imports) flush once per batch.
        session.add(incident)
        session.add(
            IncidentReport(
                report_id=report.id,
                incident=incident,
                linked_by_user_id=actor.user_id if actor else None,
            )
        )
        created.append(incident)
    if mark_dirty:
        hotspots.mark_dirty_many(session, aor_unit_ids=[i.aor_unit_id for i in created])
    return created


def create_for_new_reports(
    *, session: Session, reports: Sequence[ReportValues], actor: Actor | None
) -> None:
    """:func:`create_for_reports` for reports just inserted as rows (a batch create): the
    incidents and their links go in with one statement each."""
    incident_rows = []
    link_rows = []
    linked_by = actor.user_id if actor else None
    for report in reports:
        incident_id = uuid.uuid4()
        incident_rows.append(
            {
                "id": incident_id,
                "version": 1,
                "status": IncidentStatus.ACTIVE,
                **derive([cast(Report, report)]),
            }
        )
        link_rows.append(
            {"incident_id": incident_id, "report_id": report["id"], "linked_by_user_id": linked_by}
        )
    bulk.insert_rows(session, Incident.__table__, incident_rows)
    bulk.insert_rows(session, IncidentReport.__table__, link_rows)
    hotspots.mark_dirty_many(session, aor_unit_ids=[r["aor_unit_id"] for r in incident_rows])


def _reports_of(session: Session, incident_id: uuid.UUID) -> list[Report]:
    return list(
        session.scalars(
            select(Report)
            .join(IncidentReport, IncidentReport.report_id == Report.id)
            .where(IncidentReport.incident_id == incident_id)
        )
    )


def _refresh(session: Session, incident: Incident) -> None:
    reports = _reports_of(session, incident.id)
    before = incident.aor_unit_id
    if reports:
        _apply(incident, reports)
        incident.version += 1
        incident.updated_at = utcnow()
    session.flush()
    # The threat picture changes where the incident was and where it now is.
    for unit_id in {before, incident.aor_unit_id}:
        hotspots.mark_dirty(session, aor_unit_id=unit_id)


def refresh_for_report(*, session: Session, report: Report) -> None:
    """Re-derive the incident of a report that changed."""
    incident_id = session.scalar(
        select(IncidentReport.incident_id).where(IncidentReport.report_id == report.id)
    )
    if incident_id is not None:
        incident = session.get(Incident, incident_id)
        if incident is not None:
            _refresh(session, incident)


def incident_ids_for(
    *, session: Session, report_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    if not report_ids:
        return {}
    rows = session.execute(
        select(IncidentReport.report_id, IncidentReport.incident_id).where(
            IncidentReport.report_id.in_(list(report_ids))
        )
    )
    return {report_id: incident_id for report_id, incident_id in rows}


# --------------------------------------------------------------------------- reading


def _report_scope_exists(actor: Actor) -> Any:
    """SQL: the incident (or, once merged, the incident holding its reports) has at least one
    report in the actor's scope."""
    return exists(
        select(IncidentReport.report_id)
        .join(Report, Report.id == IncidentReport.report_id)
        .where(
            # A merged incident has no reports of its own; its survivor holds them.
            IncidentReport.incident_id == func.coalesce(Incident.merged_into_id, Incident.id),
            policy.scope_clause(actor, Report.reporting_unit_id, Report.aor_unit_id),
        )
    )


def detail(*, session: Session, actor: Actor, incident: Incident) -> Detail:
    reports = _reports_of(session, incident.id)
    if not reports and incident.merged_into_id is not None:
        # A merged incident keeps no reports: it is seen as the incident that holds them.
        survivor = session.get(Incident, incident.merged_into_id)
        if survivor is not None:
            return detail(session=session, actor=actor, incident=survivor)
    units = [u for r in reports for u in (r.reporting_unit_id, r.aor_unit_id)]
    if not reports:
        return Detail.HIDDEN
    return policy.detail_for(actor, sensitivity=incident.sensitivity, unit_ids=units)


def get_or_raise(*, session: Session, incident_id: uuid.UUID, actor: Actor) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None or detail(session=session, actor=actor, incident=incident) is Detail.HIDDEN:
        if incident is not None:
            audit.record_denial(
                session,
                actor=actor,
                object_type="incident",
                object_id=incident_id,
                details={"reason": "out_of_scope"},
            )
        raise NotFoundError(f"Incident {incident_id} does not exist or is not visible to you.")
    return incident


def report_ids_of(*, session: Session, incident_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(IncidentReport.report_id)
            .where(IncidentReport.incident_id == incident_id)
            .order_by(IncidentReport.linked_at, IncidentReport.report_id)
        )
    )


@dataclass(frozen=True)
class IncidentFilters:
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    families: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    include_merged: bool = False


def _filtered(statement: Select[Any], actor: Actor, filters: IncidentFilters) -> Select[Any]:
    full = policy.full_detail_clause(actor, Incident.sensitivity)
    statement = statement.where(_report_scope_exists(actor))
    if not filters.include_merged:
        statement = statement.where(Incident.status == IncidentStatus.ACTIVE)
    if filters.occurred_from is not None:
        statement = statement.where(
            or_(
                and_(full, Incident.occurred_at >= filters.occurred_from),
                and_(not_(full), Incident.occurred_day_start >= filters.occurred_from),
            )
        )
    if filters.occurred_to is not None:
        statement = statement.where(
            or_(
                and_(full, Incident.occurred_at < filters.occurred_to),
                and_(not_(full), Incident.occurred_day_start < filters.occurred_to),
            )
        )
    if filters.families:
        statement = statement.where(Incident.family.in_(filters.families))
    if filters.categories:
        statement = statement.where(Incident.category.in_(filters.categories))
    return statement


def list_(
    *, session: Session, actor: Actor, filters: IncidentFilters, limit: int, cursor: str | None
) -> tuple[list[Incident], str | None]:
    statement = _filtered(select(Incident), actor, filters)
    return newest_first_page(session, statement, Incident, limit=limit, cursor=cursor)


def audit_sensitive_reads(
    *, session: Session, actor: Actor, incidents: Sequence[Incident], action: str
) -> None:
    """One audit row per request that showed sensitive incidents in full (SECURITY.md L1)."""
    shown = [
        str(i.id)
        for i in incidents
        if i.sensitivity is not Sensitivity.NORMAL
        and detail(session=session, actor=actor, incident=i) is Detail.FULL
    ]
    if shown:
        audit.record(
            session,
            actor=actor,
            action=action,
            object_type="incident",
            object_id=shown[0] if len(shown) == 1 else None,
            details={"incident_ids": shown},
        )


# --------------------------------------------------------------------------- merging


def _require_full_on_reports(actor: Actor, reports: Sequence[Report]) -> None:
    for report in reports:
        seen = policy.detail_for(
            actor,
            sensitivity=report.sensitivity,
            unit_ids=(report.reporting_unit_id, report.aor_unit_id),
        )
        if seen is Detail.HIDDEN:
            raise NotFoundError(f"Report {report.id} does not exist or is not visible to you.")
        if seen is not Detail.FULL:
            raise PermissionDeniedError(
                f"You may not merge or split report {report.id}: you cannot read it in full."
            )


def merge(
    *,
    session: Session,
    incident_ids: Sequence[uuid.UUID],
    actor: Actor,
    into: uuid.UUID | None = None,
    note: str | None = None,
) -> Incident:
    """Fuse several incidents into one (the ``into`` incident, or the oldest)."""
    require(actor, Permission.MERGE_INCIDENTS)
    unique_ids = list(dict.fromkeys(incident_ids))
    if into is not None and into not in unique_ids:
        unique_ids.append(into)
    if len(unique_ids) < 2:
        raise ValidationFailedError.on("incident_ids", "name at least two different incidents")
    incidents = []
    for incident_id in unique_ids:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFoundError(f"Incident {incident_id} does not exist or is not visible to you.")
        _require_full_on_reports(actor, _reports_of(session, incident.id))
        if incident.status is not IncidentStatus.ACTIVE:
            raise ValidationFailedError.on(
                "incident_ids",
                f"incident {incident_id} was already merged into {incident.merged_into_id}",
            )
        incidents.append(incident)
    target = (
        next(i for i in incidents if i.id == into)
        if into is not None
        else min(incidents, key=lambda i: (i.created_at, str(i.id)))
    )
    moved: list[str] = []
    for incident in incidents:
        if incident.id == target.id:
            continue
        for link in session.scalars(
            select(IncidentReport).where(IncidentReport.incident_id == incident.id)
        ):
            link.incident_id = target.id
            link.linked_at = utcnow()
            link.linked_by_user_id = actor.user_id
            moved.append(str(link.report_id))
        incident.status = IncidentStatus.MERGED
        incident.merged_into_id = target.id
        hotspots.mark_dirty(session, aor_unit_id=incident.aor_unit_id)
        # Incidents merged into this one earlier now point at the survivor too (one hop).
        for earlier in session.scalars(
            select(Incident).where(Incident.merged_into_id == incident.id)
        ):
            earlier.merged_into_id = target.id
        incident.report_count = 0
        incident.version += 1
        incident.updated_at = utcnow()
    session.flush()
    session.expire(target, ["links"])
    _refresh(session, target)
    # A fused incident may cross a threshold none of its reports did (five killed, told by
    # three witnesses): the alert rules see it, in this transaction.
    from server.alerts_inbox import service as alerts

    alerts.record_incidents(session, [target.id])
    audit.record(
        session,
        actor=actor,
        action="incidents_merged",
        object_type="incident",
        object_id=target.id,
        reason=note,
        details={"merged": [str(i.id) for i in incidents if i.id != target.id], "reports": moved},
    )
    return target


def unmerge(
    *,
    session: Session,
    incident: Incident,
    report_ids: Sequence[uuid.UUID],
    actor: Actor,
    note: str | None = None,
) -> list[Incident]:
    """Split reports out of an incident, each into an incident of its own."""
    require(actor, Permission.MERGE_INCIDENTS)
    reports = _reports_of(session, incident.id)
    _require_full_on_reports(actor, reports)
    by_id = {r.id: r for r in reports}
    wanted = list(dict.fromkeys(report_ids))
    missing = [str(r) for r in wanted if r not in by_id]
    if missing:
        raise ValidationFailedError.on(
            "report_ids", f"not part of incident {incident.id}: {', '.join(missing)}"
        )
    if not wanted:
        raise ValidationFailedError.on("report_ids", "name at least one report to split out")
    if len(wanted) >= len(reports):
        raise ValidationFailedError.on(
            "report_ids", "an incident keeps at least one report; leave one report in it"
        )
    stale = [link for link in incident.links if link.report_id in set(wanted)]
    session.execute(IncidentReport.__table__.delete().where(IncidentReport.report_id.in_(wanted)))
    # The deleted links must leave the session before new ones with their keys arrive.
    for link in stale:
        session.expunge(link)
    session.expire(incident, ["links"])
    created = create_for_reports(session=session, reports=[by_id[r] for r in wanted], actor=actor)
    _refresh(session, incident)
    audit.record(
        session,
        actor=actor,
        action="incident_unmerged",
        object_type="incident",
        object_id=incident.id,
        reason=note,
        details={
            "reports": [str(r) for r in wanted],
            "new_incidents": [str(i.id) for i in created],
        },
    )
    return created


# --------------------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class MergeSuggestion:
    incident_id: uuid.UUID
    candidate_id: uuid.UUID
    distance_km: float
    hours_apart: float
    same_category: bool
    score: float


def _haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _candidates(
    session: Session,
    actor: Actor,
    *,
    families: Sequence[str] | None,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
) -> list[tuple[Incident, str | None]]:
    statement = select(Incident).where(
        Incident.status == IncidentStatus.ACTIVE,
        _report_scope_exists(actor),
        policy.full_detail_clause(actor, Incident.sensitivity),
    )
    if families:
        statement = statement.where(Incident.family.in_(list(families)))
    if occurred_from is not None:
        statement = statement.where(Incident.occurred_at >= occurred_from)
    if occurred_to is not None:
        statement = statement.where(Incident.occurred_at < occurred_to)
    incidents = list(session.scalars(statement))
    # The dataset a whole incident comes from: two events of one curated dataset are distinct
    # by the dataset's own deduplication, so they are never suggested as the same event.
    datasets: dict[uuid.UUID, set[str | None]] = {}
    rows = session.execute(
        select(IncidentReport.incident_id, Report.dataset)
        .join(Report, Report.id == IncidentReport.report_id)
        .where(IncidentReport.incident_id.in_([i.id for i in incidents]))
    )
    for incident_id, dataset in rows:
        datasets.setdefault(incident_id, set()).add(dataset)
    out = []
    for incident in incidents:
        found = datasets.get(incident.id, {None})
        out.append((incident, next(iter(found)) if len(found) == 1 else None))
    return out


def suggestions(
    *,
    session: Session,
    actor: Actor,
    max_km: float,
    max_hours: float,
    incident_id: uuid.UUID | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    limit: int = 50,
) -> list[MergeSuggestion]:
    """Pairs of incidents of one family, close in space and time, best first.

    Score = 1 − ½·d/max_km − ½·Δt/max_hours, plus 0.1 for the same category. Time apart is the
    gap between the two periods the dates stand for (0 when they overlap), so a "some day in
    March" report can match a dated one. Only incidents the actor can read in full are
    considered. Vectorised: pairs are enumerated within the time-sorted window of each family.
    """
    require(actor, Permission.MERGE_INCIDENTS)
    focus = None
    if incident_id is not None:
        focus = get_or_raise(session=session, incident_id=incident_id, actor=actor)
        if detail(session=session, actor=actor, incident=focus) is not Detail.FULL:
            raise PermissionDeniedError("You cannot read this incident in full.")
        span = timedelta(hours=max_hours) + PRECISION_SPAN[focus.time_precision]
        occurred_from = focus.occurred_at - span - PRECISION_SPAN[TimePrecision.YEAR]
        occurred_to = focus.occurred_at + span + timedelta(microseconds=1)
    families = [focus.family] if focus is not None else None
    candidates = _candidates(
        session, actor, families=families, occurred_from=occurred_from, occurred_to=occurred_to
    )
    if len(candidates) < 2:
        return []
    incidents = [c[0] for c in candidates]
    dataset = np.array([c[1] or "" for c in candidates], dtype=object)
    start = np.array([i.occurred_at.timestamp() for i in incidents]) / 3600.0
    end = (
        start
        + np.array([PRECISION_SPAN[i.time_precision].total_seconds() for i in incidents]) / 3600.0
    )
    lat = np.array([i.latitude for i in incidents])
    lon = np.array([i.longitude for i in incidents])
    family = np.array([i.family for i in incidents], dtype=object)
    category = np.array([i.category for i in incidents], dtype=object)
    # Enumerate every pair whose start times are within the widest possible window, in one go.
    order = np.argsort(start, kind="stable")
    s_start = start[order]
    widest = max_hours + float(np.max(end - start))
    window_end = np.searchsorted(s_start, s_start + widest, side="right")
    counts = window_end - np.arange(len(order)) - 1
    total = int(counts.sum())
    if total == 0:
        return []
    first = np.repeat(np.arange(len(order)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offsets
    a, b = order[first], order[second]
    gap = np.maximum(0.0, np.maximum(start[a], start[b]) - np.minimum(end[a], end[b]))
    distance = _haversine_km(lat[a], lon[a], lat[b], lon[b])
    keep = (
        (family[a] == family[b])
        & (gap <= max_hours)
        & (distance <= max_km)
        & ~((dataset[a] != "") & (dataset[a] == dataset[b]))
    )
    if focus is not None:
        focus_index = next(k for k, inc in enumerate(incidents) if inc.id == focus.id)
        keep &= (a == focus_index) | (b == focus_index)
    a, b, gap, distance = a[keep], b[keep], gap[keep], distance[keep]
    same = category[a] == category[b]
    score = 1.0 - 0.5 * distance / max_km - 0.5 * gap / max_hours + np.where(same, 0.1, 0.0)
    ranked = np.argsort(-score, kind="stable")[:limit]
    result = []
    for k in ranked.tolist():
        first_id, second_id = incidents[a[k]].id, incidents[b[k]].id
        if focus is not None and second_id == focus.id:
            first_id, second_id = second_id, first_id
        result.append(
            MergeSuggestion(
                incident_id=first_id,
                candidate_id=second_id,
                distance_km=round(float(distance[k]), 3),
                hours_apart=round(float(gap[k]), 2),
                same_category=bool(same[k]),
                score=round(float(score[k]), 4),
            )
        )
    return result
