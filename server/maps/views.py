"""Vigil's own pages: the threat map (/maps/threat), the JOC page (/joc), the mission's offline
basemap tiles, and the browser libraries they load — all served from here, none from the
internet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from server.alerts_inbox import service as alert_service
from server.audit import service as audit
from server.db.base import utcnow
from server.deps import AppSettings, DbSession, Sessions, WebUser
from server.errors import ConflictError, NotFoundError, PermissionDeniedError
from server.maps import assets, joc, render
from server.maps.service import MapQuery, threat_map
from server.maps.tiles import Basemap, open_basemap
from server.settings import Settings
from server.web.views import ICON_SVG, page, template_environment

router = APIRouter(tags=["pages"], include_in_schema=False)

templates = template_environment(Path(__file__).with_name("templates"))

_IMMUTABLE = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
_MEDIA = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_OWN_ASSETS = ("vigil-map.js", "vigil-map.css")


@router.get("/maps/threat")
def threat_map_page(
    request: Request,
    session: DbSession,
    visitor: WebUser,
    settings: AppSettings,
    unit: Annotated[int | None, Query(description="Zoom to this unit's AOR")] = None,
    window_hours: Annotated[int, Query()] = 72,
    hotspot_days: Annotated[int, Query()] = 30,
    family: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
) -> HTMLResponse:
    assets.check_installed(settings.maps.assets_dir)
    query = MapQuery(unit, window_hours, hotspot_days, tuple(family))
    data = threat_map(session=session, actor=visitor.actor, settings=settings, query=query)
    html = render.render_threat_map(data, settings.maps, links={"JOC page": "/joc"})
    return page(html, request, visitor)


#: What the JOC page says after an acknowledge button (fixed texts: a link cannot make the
#: page say anything else).
_NOTICES = {
    "acked": (
        "Alert {id} acknowledged: its escalation stopped and the units told so far were told.",
        False,
    ),
    "gone": ("Alert {id} is not for your units (or no longer exists).", True),
    "taken": ("Alert {id} was already acknowledged or resolved.", True),
    "denied": ("Your role may not acknowledge alerts.", True),
    "expired": ("The page had expired; it is reloaded now: press Acknowledge again.", True),
}


@router.post("/joc/alerts/{alert_id}/acknowledge")
def acknowledge_from_joc(
    alert_id: int,
    session: DbSession,
    visitor: WebUser,
    sessions: Sessions,
    csrf: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """The acknowledge button: the same service as the API, then back to the page."""
    outcome = "acked"
    if not sessions.check_csrf(visitor.claims, csrf):
        outcome = "expired"
    else:
        try:
            alert_service.acknowledge(
                session=session,
                alert_id=alert_id,
                actor=visitor.actor,
                note=note.strip() or None,
                now=utcnow(),
            )
        except NotFoundError:
            outcome = "gone"
        except ConflictError:
            outcome = "taken"
        except PermissionDeniedError:
            outcome = "denied"
            audit.record_denial(
                session,
                actor=visitor.actor,
                object_type="route",
                object_id="/joc/alerts/{alert_id}/acknowledge",
                details={"reason": "permission", "method": "POST"},
            )
    target = f"/joc?{urlencode({'notice': outcome, 'alert': alert_id})}#alerts"
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/joc")
def joc_page(
    request: Request,
    session: DbSession,
    visitor: WebUser,
    settings: AppSettings,
    notice: Annotated[str | None, Query(max_length=20)] = None,
    alert: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    data = joc.joc_page(session=session, actor=visitor.actor, settings=settings)
    text, refused = _NOTICES.get(notice or "", (None, False))
    html = templates.get_template("joc.html").render(
        page=data,
        user=visitor.user.username,
        csrf=visitor.csrf,
        generated_at=data.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        refresh_seconds=settings.maps.joc_refresh_seconds,
        family_chart=Markup(data.family_chart),  # noqa: S704 - built from escaped parts
        ack_chart=Markup(data.ack_chart),  # noqa: S704
        notice=text.format(id=alert) if text else None,
        notice_refused=refused,
    )
    return page(html, request, visitor)


def _basemap(request: Request, settings: Settings) -> Basemap | None:
    if settings.maps.basemap is None:
        return None
    opened: Basemap | None = getattr(request.app.state, "basemap", None)
    if opened is None:
        opened = open_basemap(settings.maps.basemap)
        request.app.state.basemap = opened
    return opened


@router.get("/maps/tiles/{z}/{x}/{y}")
def basemap_tile(
    z: int, x: int, y: int, request: Request, visitor: WebUser, settings: AppSettings
) -> Response:
    basemap = _basemap(request, settings)
    tile = basemap.tile(z, x, y) if basemap is not None else None
    if tile is None:
        raise NotFoundError("The mission's basemap has no tile here.")
    return Response(
        tile.data, media_type=tile.media_type, headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get("/static/vendor/{package}/{file:path}")
def vendor_asset(package: str, file: str, settings: AppSettings) -> Response:
    try:
        data = assets.read_asset(settings.maps.assets_dir, package, file)
    except FileNotFoundError:
        raise NotFoundError(f"{package}/{file} is not one of Vigil's assets.") from None
    return Response(
        data,
        media_type=_MEDIA.get(Path(file).suffix, "application/octet-stream"),
        headers=_IMMUTABLE,
    )


@router.get("/static/vigil/{name}")
def own_asset(name: str) -> Response:
    if name not in _OWN_ASSETS:
        raise NotFoundError(f"{name} is not one of Vigil's assets.")
    data = (render.STATIC_DIR / name).read_bytes()
    return Response(
        data, media_type=_MEDIA[Path(name).suffix], headers={"Cache-Control": "no-cache"}
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page; answering keeps their consoles free of 404s."""
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(ICON_SVG, media_type="image/svg+xml", headers=headers)
