"""Protected sites: /api/v1/sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from server.deps import AppSettings, CurrentActor, DbSession
from server.geojson import geometry_to_geojson
from server.sites import service
from server.sites.enums import SiteKind
from server.sites.models import ProtectedSite
from server.sites.schemas import (
    SiteCollection,
    SiteCreate,
    SiteFeature,
    SiteProperties,
    SiteUpdate,
)

router = APIRouter(prefix="/sites", tags=["sites"])


def _feature(site: ProtectedSite) -> SiteFeature:
    return SiteFeature(
        id=site.id,
        geometry=geometry_to_geojson(site.area if site.area is not None else site.location),
        properties=SiteProperties(
            id=site.id,
            name=site.name,
            kind=site.kind,
            location=geometry_to_geojson(site.location),
            population=site.population,
            aor_unit_id=site.aor_unit_id,
            notes=site.notes,
            version=site.version,
            created_at=site.created_at,
            updated_at=site.updated_at,
        ),
    )


@router.get("", response_model=SiteCollection, summary="Protected sites (GeoJSON)")
def list_sites(
    session: DbSession,
    _actor: CurrentActor,
    kind: Annotated[list[SiteKind], Query()] = [],  # noqa: B006 - FastAPI copies defaults
) -> SiteCollection:
    return SiteCollection(
        features=[_feature(s) for s in service.list_(session=session, kinds=kind)]
    )


@router.post(
    "",
    response_model=SiteFeature,
    status_code=status.HTTP_201_CREATED,
    summary="Add a protected site: IDP camp, refugee or POC site, market, water point",
)
def create_site(
    body: SiteCreate, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> SiteFeature:
    return _feature(
        service.create(session=session, site_in=body, actor=actor, mission=settings.mission)
    )


@router.get("/{site_id}", response_model=SiteFeature, summary="One protected site")
def get_site(site_id: int, session: DbSession, _actor: CurrentActor) -> SiteFeature:
    return _feature(service.get_or_raise(session=session, site_id=site_id))


@router.patch(
    "/{site_id}",
    response_model=SiteFeature,
    summary="Change a protected site (send the version you read)",
)
def update_site(
    site_id: int, body: SiteUpdate, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> SiteFeature:
    site = service.get_or_raise(session=session, site_id=site_id)
    return _feature(
        service.update(
            session=session, site=site, site_in=body, actor=actor, mission=settings.mission
        )
    )


@router.delete(
    "/{site_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a protected site"
)
def delete_site(site_id: int, session: DbSession, actor: CurrentActor) -> Response:
    site = service.get_or_raise(session=session, site_id=site_id)
    service.delete(session=session, site=site, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
