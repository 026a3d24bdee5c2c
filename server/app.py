"""The FastAPI application, built from settings: ``create_app(settings)``.

Nothing is built at import time; the lifespan opens the engine and closes it again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from mobile_sync.protocol.models import PROTOCOL_VERSION
from server.alerts_inbox.views import router as alerts_router
from server.audit.views import router as audit_router
from server.auth.passwords import PasswordService
from server.auth.throttle import LoginThrottler
from server.auth.tokens import TokenService
from server.auth.views import router as auth_router
from server.coverage.views import router as coverage_router
from server.db.session import create_engine_for, create_session_factory
from server.deps import reject_nul_characters
from server.devices.views import router as devices_router
from server.docs import install_offline_docs
from server.errors import COMMON_ERROR_RESPONSES, install_error_handlers
from server.health.views import router as health_router
from server.hotspots.views import router as hotspots_router
from server.incidents.views import router as incidents_router
from server.logs import configure_logging
from server.maps.views import router as maps_router
from server.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SyncProtocolMiddleware,
    UnexpectedErrorMiddleware,
)
from server.patrols.views import router as patrols_router
from server.reports.views import router as reports_router
from server.settings import Settings
from server.sites.views import router as sites_router
from server.sync.encoding import SyncCompressionMiddleware
from server.sync.views import router as sync_router
from server.taxonomy.views import router as taxonomy_router
from server.units.views import router as units_router
from server.users.views import router as users_router
from server.web.sessions import SessionService
from server.web.views import router as web_router
from server.worker import context as job_context
from server.worker.queue import (
    ALERTS,
    InProcessQueue,
    JobQueue,
    RqQueue,
    install_after_commit_hook,
)
from server.worker.schedule import Ticker, periodic_jobs, run_in_process

__all__ = ["create_app"]

API_PREFIX = "/api/v1"

DESCRIPTION = """
Vigil records geotagged incident reports from the field, fuses them into incidents, and keeps
need-to-know: sensitive cases (sexual violence, children, informants, misconduct) reach only
protection officers in full, and everyone else sees them as a category, a day and a res-6 cell.

Sign in with `POST /api/v1/auth/token` (OAuth2 password flow) and send the token as
`Authorization: Bearer …`. Errors come as `{code, message, errors: [{field, message}], request_id}`.
"""


def make_queue(settings: Settings) -> JobQueue:
    if settings.queue.redis_url:
        return RqQueue(settings.queue.redis_url, settings.queue.queue_name)
    # Embedded: the alert path in a background thread, so a push is answered once committed.
    return InProcessQueue(background=frozenset({ALERTS}))


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    engine: Any = None,
    queue: JobQueue | None = None,
) -> FastAPI:
    """Build the app. Tests may pass their own engine/session factory (bound to a
    connection that is rolled back) and queue."""
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_engine = engine is None
        app.state.engine = engine if engine is not None else create_engine_for(settings)
        factory = session_factory or create_session_factory(app.state.engine)
        app.state.session_factory = factory
        jobs = queue or make_queue(settings)
        install_after_commit_hook(factory, jobs)
        job_context.configure(
            job_context.JobContext(settings=settings, session_factory=factory, queue=jobs)
        )
        ticker = None
        if queue is None and not settings.queue.redis_url and settings.hotspots.background:
            # Embedded mode: the periodic jobs run here, as `vigil worker` would run them.
            ticker = Ticker(periodic_jobs(settings), run_in_process)
            ticker.start()
        try:
            yield
        finally:
            if ticker is not None:
                ticker.stop()
            if isinstance(jobs, InProcessQueue):
                jobs.close()
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="Vigil",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "auth", "description": "Sign in and who am I."},
            {"name": "reports", "description": "Field reports: file, read, edit, verify."},
            {"name": "incidents", "description": "Real-world events fused from reports."},
            {"name": "hotspots", "description": "Hotspots, emerging threats, early warning."},
            {
                "name": "patrols",
                "description": "Patrols: plans, status, GPS tracks (GeoJSON, GPX).",
            },
            {"name": "sites", "description": "Protected sites: camps, markets, water points."},
            {
                "name": "coverage",
                "description": "Patrol coverage, protection gaps and tasking suggestions.",
            },
            {"name": "units", "description": "Mission hierarchy and areas of responsibility."},
            {"name": "users", "description": "Accounts and roles (admin)."},
            {"name": "devices", "description": "Field devices, revocable in one request."},
            {"name": "taxonomy", "description": "Incident categories and crosswalks."},
            {
                "name": "alerts",
                "description": "Alerts for my unit and chain: acknowledge, resolve, silence, CAP.",
            },
            {"name": "audit", "description": "The hash-chained audit log (admin)."},
            {"name": "sync", "description": "Offline sync for field devices (protocol v1)."},
            {"name": "operations", "description": "Health and readiness."},
        ],
    )
    app.state.settings = settings
    app.state.tokens = TokenService(
        settings.secret_key, timedelta(minutes=settings.auth.access_token_minutes)
    )
    app.state.passwords = PasswordService(settings.auth)
    app.state.throttle = LoginThrottler(settings.secret_key, settings.auth)
    app.state.sessions = SessionService(
        settings.secret_key,
        idle=timedelta(minutes=settings.maps.session_idle_minutes),
        lifetime=timedelta(hours=settings.maps.session_max_hours),
    )
    install_error_handlers(app)
    install_offline_docs(app)

    for router in (
        auth_router,
        taxonomy_router,
        units_router,
        users_router,
        devices_router,
        reports_router,
        incidents_router,
        hotspots_router,
        patrols_router,
        sites_router,
        coverage_router,
        audit_router,
        alerts_router,
    ):
        # Directly on the app, so each route's path (in logs, in the OpenAPI) is the full one.
        app.include_router(
            router,
            prefix=API_PREFIX,
            responses=COMMON_ERROR_RESPONSES,
            dependencies=[Depends(reject_nul_characters)],
        )
    app.include_router(health_router)
    # Pages for browsers (sign-in form, threat map, JOC page) and the files they load.
    app.include_router(web_router)
    app.include_router(maps_router)
    # Outside /api/v1: the sync protocol is versioned on its own (SYNC.md §4.2).
    app.include_router(sync_router, responses=COMMON_ERROR_RESPONSES)

    # Added innermost first: unexpected errors are caught before Starlette's own handler could
    # log them raw; the request id is assigned outermost so every layer can use it.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.mission.max_body_bytes)
    # gzip answers for hello/push/pull only; inside the protocol stamps, so they go out with
    # the compressed answer and every answer, compressed or not, carries them.
    app.add_middleware(SyncCompressionMiddleware)
    app.add_middleware(
        SyncProtocolMiddleware,
        protocol_version=PROTOCOL_VERSION,
        max_concurrent=settings.sync.max_concurrent_requests,
        admission_wait_s=settings.sync.admission_wait_s,
    )
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_environment() -> FastAPI:
    """The app for each of several uvicorn worker processes (``vigil serve --workers N``),
    configured from the environment as ``vigil serve`` is."""
    return create_app(Settings.load())
