"""/healthz (the process answers) and /readyz (the database answers and is at schema head)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from server.db import migrate

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations at head")
def readyz(request: Request) -> JSONResponse:
    engine = request.app.state.engine
    checks: dict[str, str] = {}
    try:
        # Autocommit: a probe must not queue behind a long write (an import) for the lock.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any failure to reach the database means "not ready"
        checks["database"] = "unreachable"
    if checks["database"] == "ok":
        try:
            current = migrate.current_revision(engine)
            head = migrate.head_revision()
            checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        except Exception:
            checks["migrations"] = "unknown"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
