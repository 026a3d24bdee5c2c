"""Reports: /api/v1/reports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from geo import cells as geo_cells
from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import (
    ErrorBody,
    PermissionDeniedError,
    PreconditionRequiredError,
    ValidationFailedError,
)
from server.geojson import Feature, FeatureCollection
from server.incidents import service as incidents
from server.reports import service
from server.reports.enums import VerificationState
from server.reports.models import Report
from server.reports.schemas import (
    RemovalRequest,
    ReportCreate,
    ReportPage,
    ReportRead,
    ReportRedacted,
    ReportUpdate,
    ReportView,
    VerificationRead,
    VerificationRequest,
)
from server.reports.service import BBox, ReportFilters
from server.taxonomy.service import check_filter_codes

router = APIRouter(prefix="/reports", tags=["reports"])

GEOJSON_MEDIA_TYPE = "application/geo+json"


def parse_bbox(text: str | None) -> BBox | None:
    """``minLon,minLat,maxLon,maxLat`` → BBox, or a 422 naming what is wrong."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValidationFailedError.on(
            "query:bbox",
            "must be four numbers: min_longitude,min_latitude,max_longitude,max_latitude",
        )
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise ValidationFailedError.on("query:bbox", "every part must be a number") from None
    for name, value, limit in (
        ("longitude", min_lon, 180),
        ("latitude", min_lat, 90),
        ("longitude", max_lon, 180),
        ("latitude", max_lat, 90),
    ):
        if not -limit <= value <= limit:
            raise ValidationFailedError.on("query:bbox", f"{name} {value} is out of range")
    if min_lon > max_lon or min_lat > max_lat:
        raise ValidationFailedError.on(
            "query:bbox",
            "minimum must not exceed maximum (boxes across the antimeridian are "
            "not supported; send two boxes)",
        )
    return BBox(min_lon, min_lat, max_lon, max_lat)


def _views(session: Any, actor: Any, reports: list[Report]) -> list[ReportRead | ReportRedacted]:
    incident_ids = incidents.incident_ids_for(session=session, report_ids=[r.id for r in reports])
    return [
        service.to_view(session=session, actor=actor, report=r, incident_ids=incident_ids)
        for r in reports
    ]


def _feature(view: ReportRead | ReportRedacted) -> Feature:
    if isinstance(view, ReportRead):
        properties = view.model_dump(mode="json", exclude={"location"})
        return Feature(id=str(view.id), geometry=view.location, properties=properties)
    geometry = None
    if view.h3_res6:
        ring = geo_cells.cell_boundary(geo_cells.cell_from_string(view.h3_res6))
        geometry = {
            "type": "Polygon",
            "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]],
        }
    return Feature(id=str(view.id), geometry=geometry, properties=view.model_dump(mode="json"))


@router.get(
    "",
    response_model=ReportPage | FeatureCollection,
    summary="Reports you may see, newest first",
    description=(
        "Filters combine with AND. Sensitive reports you may not read in full appear in their "
        "redacted form and match `bbox` and the time window by their res-6 cell and day only. "
        "`format=geojson` returns an RFC 7946 FeatureCollection (redacted reports as their "
        "res-6 hexagon)."
    ),
    responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}}},
)
def list_reports(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    occurred_from: Annotated[AwareDatetime | None, Query()] = None,
    occurred_to: Annotated[AwareDatetime | None, Query(description="Exclusive")] = None,
    category: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    family: Annotated[list[str], Query()] = [],  # noqa: B006
    unit: Annotated[int | None, Query(description="A unit: its subtree's reports")] = None,
    verification_state: Annotated[list[VerificationState], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["json", "geojson"], Query()] = "json",
) -> ReportPage | JSONResponse:
    check_filter_codes(category, family)
    if occurred_from and occurred_to and occurred_from >= occurred_to:
        raise ValidationFailedError.on("query:occurred_to", "must be later than occurred_from")
    filters = ReportFilters(
        bbox=parse_bbox(bbox),
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        categories=tuple(category),
        families=tuple(family),
        unit_id=unit,
        verification_states=tuple(verification_state),
    )
    rows, next_cursor = service.list_(
        session=session,
        actor=actor,
        filters=filters,
        limit=min(limit, settings.mission.page_size_max),
        cursor=cursor,
    )
    service.audit_sensitive_reads(session, actor, rows, "reports_listed_sensitive")
    views = _views(session, actor, rows)
    if format == "geojson":
        collection = FeatureCollection(
            features=[_feature(v) for v in views], next_cursor=next_cursor
        )
        # RFC 7946 section 12: GeoJSON has its own media type.
        return JSONResponse(collection.model_dump(mode="json"), media_type=GEOJSON_MEDIA_TYPE)
    return ReportPage(items=views, next_cursor=next_cursor)


@router.post(
    "",
    response_model=ReportView,
    status_code=status.HTTP_201_CREATED,
    summary="File a report (idempotent on its client-generated id)",
    responses={
        200: {"description": "The same report was already stored (a resend)"},
        409: {"description": "The id is already used by a report with different content"},
    },
)
def create_report(
    body: ReportCreate,
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    response: Response,
) -> ReportRead | ReportRedacted:
    report, created = service.create(
        session=session, report_in=body, actor=actor, mission=settings.mission
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    view = service.to_view(session=session, actor=actor, report=report)
    if isinstance(view, ReportRead):
        response.headers["ETag"] = f'"{report.version}"'
    return view


@router.get("/{report_id}", response_model=ReportView, summary="One report")
def get_report(
    report_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response
) -> ReportRead | ReportRedacted:
    report = service.get_or_raise(session=session, report_id=report_id, actor=actor)
    service.audit_sensitive_reads(session, actor, [report], "report_read_sensitive")
    view = service.to_view(session=session, actor=actor, report=report)
    if isinstance(view, ReportRead):
        response.headers["ETag"] = f'"{report.version}"'
        response.headers["Cache-Control"] = "no-store"
    return view


def _expected_version(if_match: str | None, body_version: int | None) -> int:
    if if_match is not None:
        text = if_match.strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"')
        try:
            version = int(text)
        except ValueError:
            raise ValidationFailedError.on(
                "header:If-Match", 'must be the ETag you read, e.g. "3"'
            ) from None
        if body_version is not None and body_version != version:
            raise ValidationFailedError.on("version", "differs from If-Match; send one of them")
        return version
    if body_version is not None:
        return body_version
    raise PreconditionRequiredError(
        "Say which version you edited: send the report's ETag as If-Match, "
        "or `version` in the body."
    )


@router.patch(
    "/{report_id}",
    response_model=ReportView,
    summary="Edit a report (optimistic concurrency: If-Match or version)",
    description="Answers with the report as you may now see it: if the edit made it sensitive "
    "(a category of sexual violence, a child victim, an informant source), the answer is its "
    "redacted form, without an ETag.",
    responses={
        412: {"model": ErrorBody, "description": "Someone changed the report since you read it"},
        428: {"model": ErrorBody, "description": "No version given"},
    },
)
def update_report(
    report_id: uuid.UUID,
    body: ReportUpdate,
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> ReportRead | ReportRedacted:
    report = service.get_or_raise(session=session, report_id=report_id, actor=actor)
    expected = _expected_version(if_match, body.version)
    report = service.update(
        session=session,
        report=report,
        report_in=body,
        expected_version=expected,
        actor=actor,
        mission=settings.mission,
    )
    view = service.to_view(session=session, actor=actor, report=report)
    if isinstance(view, ReportRead):
        response.headers["ETag"] = f'"{report.version}"'
    return view


@router.post(
    "/{report_id}/verification",
    response_model=ReportRead,
    summary="Move a report through verification",
    description="reported → under_verification → verified | discredited; a decided report can "
    "be reopened (back to under_verification) with a note.",
)
def verify_report(
    report_id: uuid.UUID,
    body: VerificationRequest,
    session: DbSession,
    actor: CurrentActor,
    response: Response,
) -> ReportRead:
    report = service.get_or_raise(session=session, report_id=report_id, actor=actor)
    report = service.transition(session=session, report=report, request=body, actor=actor)
    view = service.to_view(session=session, actor=actor, report=report)
    assert isinstance(view, ReportRead)  # transition() requires full detail
    response.headers["ETag"] = f'"{report.version}"'
    return view


@router.post(
    "/{report_id}/removal",
    response_model=ReportRead,
    summary="Remove a report from the field (HQ)",
    description="The report stays on record for HQ but leaves incidents and hotspots; devices "
    "that hold it receive a tombstone on their next pull and any later sync operation on it "
    "answers `gone`. Removing twice changes nothing.",
)
def remove_report(
    report_id: uuid.UUID,
    body: RemovalRequest,
    session: DbSession,
    actor: CurrentActor,
    response: Response,
) -> ReportRead:
    report = service.get_or_raise(session=session, report_id=report_id, actor=actor)
    report = service.remove(session=session, report=report, actor=actor, reason=body.reason)
    view = service.to_view(session=session, actor=actor, report=report)
    assert isinstance(view, ReportRead)  # remove() requires full detail
    response.headers["ETag"] = f'"{report.version}"'
    return view


@router.get(
    "/{report_id}/verification",
    response_model=list[VerificationRead],
    summary="The report's verification history",
)
def verification_history(
    report_id: uuid.UUID, session: DbSession, actor: CurrentActor
) -> list[VerificationRead]:
    report = service.get_or_raise(session=session, report_id=report_id, actor=actor)
    if service.detail(actor, report).value != "full":
        raise PermissionDeniedError("You may not see the verification history of this report.")
    return [
        VerificationRead(
            from_state=v.from_state,
            to_state=v.to_state,
            actor_user_id=v.actor_user_id,
            note=v.note,
            at=v.at,
        )
        for v in service.verification_history(session=session, report=report)
    ]
