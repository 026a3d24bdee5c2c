"""Incidents: /api/v1/incidents — list, read, merge, unmerge, merge suggestions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from server.access.policy import Actor, Detail
from server.deps import AppSettings, CurrentActor, DbSession
from server.incidents import service
from server.incidents.models import Incident
from server.incidents.schemas import (
    IncidentPage,
    IncidentRead,
    IncidentRedacted,
    IncidentView,
    MergeRequest,
    MergeSuggestionRead,
    UnmergeRequest,
    UnmergeResult,
)
from server.incidents.service import IncidentFilters
from server.reports.derived import cells_as_strings, redacted_fields
from server.taxonomy.service import check_filter_codes

router = APIRouter(prefix="/incidents", tags=["incidents"])


def _full(session: Session, incident: Incident) -> IncidentRead:
    return IncidentRead(
        id=incident.id,
        version=incident.version,
        status=incident.status,
        merged_into_id=incident.merged_into_id,
        category=incident.category,
        family=incident.family,
        severity_weight=incident.severity_weight,
        sensitivity=incident.sensitivity,
        verification_state=incident.verification_state,
        occurred_at=incident.occurred_at,
        time_precision=incident.time_precision,
        location={"type": "Point", "coordinates": [incident.longitude, incident.latitude]},
        location_precision=incident.location_precision,
        cells=cells_as_strings(incident),
        aor_unit_id=incident.aor_unit_id,
        killed_best=incident.killed_best,
        report_count=incident.report_count,
        report_ids=service.report_ids_of(session=session, incident_id=incident.id),
        created_at=incident.created_at,
        updated_at=incident.updated_at,
    )


def _redacted(incident: Incident) -> IncidentRedacted:
    return IncidentRedacted(
        id=incident.id, report_count=incident.report_count, **redacted_fields(incident)
    )


def _view(session: Session, actor: Actor, incident: Incident) -> IncidentRead | IncidentRedacted:
    if service.detail(session=session, actor=actor, incident=incident) is Detail.FULL:
        return _full(session, incident)
    return _redacted(incident)


@router.get("", response_model=IncidentPage, summary="Incidents you may see, newest first")
def list_incidents(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    occurred_from: Annotated[AwareDatetime | None, Query()] = None,
    occurred_to: Annotated[AwareDatetime | None, Query()] = None,
    category: Annotated[list[str], Query()] = [],  # noqa: B006
    family: Annotated[list[str], Query()] = [],  # noqa: B006
    include_merged: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> IncidentPage:
    check_filter_codes(category, family)
    filters = IncidentFilters(
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        families=tuple(family),
        categories=tuple(category),
        include_merged=include_merged,
    )
    rows, next_cursor = service.list_(
        session=session,
        actor=actor,
        filters=filters,
        limit=min(limit, settings.mission.page_size_max),
        cursor=cursor,
    )
    service.audit_sensitive_reads(
        session=session, actor=actor, incidents=rows, action="incidents_listed_sensitive"
    )
    return IncidentPage(items=[_view(session, actor, i) for i in rows], next_cursor=next_cursor)


@router.get(
    "/merge-suggestions",
    response_model=list[MergeSuggestionRead],
    summary="Pairs of incidents that may be one event (same family, close in space and time)",
)
def mission_suggestions(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    max_km: Annotated[float | None, Query(gt=0, le=500)] = None,
    max_hours: Annotated[float | None, Query(gt=0, le=24 * 90)] = None,
    occurred_from: Annotated[AwareDatetime | None, Query()] = None,
    occurred_to: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[MergeSuggestionRead]:
    found = service.suggestions(
        session=session,
        actor=actor,
        max_km=max_km or settings.mission.merge_max_km,
        max_hours=max_hours or settings.mission.merge_max_hours,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        limit=limit,
    )
    return [MergeSuggestionRead(**s.__dict__) for s in found]


@router.post(
    "/merge",
    response_model=IncidentRead,
    summary="Merge incidents into one (their reports describe the same event)",
)
def merge_incidents(body: MergeRequest, session: DbSession, actor: CurrentActor) -> IncidentRead:
    incident = service.merge(
        session=session, incident_ids=body.incident_ids, actor=actor, into=body.into, note=body.note
    )
    return _full(session, incident)


@router.get("/{incident_id}", response_model=IncidentView, summary="One incident")
def get_incident(
    incident_id: uuid.UUID, session: DbSession, actor: CurrentActor
) -> IncidentRead | IncidentRedacted:
    incident = service.get_or_raise(session=session, incident_id=incident_id, actor=actor)
    service.audit_sensitive_reads(
        session=session, actor=actor, incidents=[incident], action="incident_read_sensitive"
    )
    return _view(session, actor, incident)


@router.post(
    "/{incident_id}/unmerge",
    response_model=UnmergeResult,
    summary="Split reports out of an incident, each into its own incident",
)
def unmerge_incident(
    incident_id: uuid.UUID, body: UnmergeRequest, session: DbSession, actor: CurrentActor
) -> UnmergeResult:
    incident = service.get_or_raise(session=session, incident_id=incident_id, actor=actor)
    created = service.unmerge(
        session=session, incident=incident, report_ids=body.report_ids, actor=actor, note=body.note
    )
    return UnmergeResult(
        incident=_full(session, incident), new_incidents=[_full(session, i) for i in created]
    )


@router.get(
    "/{incident_id}/merge-suggestions",
    response_model=list[MergeSuggestionRead],
    summary="Incidents that may be the same event as this one, best first",
)
def incident_suggestions(
    incident_id: uuid.UUID,
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    max_km: Annotated[float | None, Query(gt=0, le=500)] = None,
    max_hours: Annotated[float | None, Query(gt=0, le=24 * 90)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[MergeSuggestionRead]:
    found = service.suggestions(
        session=session,
        actor=actor,
        incident_id=incident_id,
        max_km=max_km or settings.mission.merge_max_km,
        max_hours=max_hours or settings.mission.merge_max_hours,
        limit=limit,
    )
    return [MergeSuggestionRead(**s.__dict__) for s in found]
