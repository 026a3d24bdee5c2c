"""Operations: liveness, readiness, request ids, the error body, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.api._builders import API


def test_healthz_answers_without_signing_in(api):
    response = api.http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def own_engine_http(settings: Any, engine: Any) -> Iterator[TestClient]:
    """The app on the test database as a deployment runs it: its own sessions, no test
    transaction held open (on SQLite that transaction holds the write lock /readyz waits for)."""
    from server.app import create_app
    from server.worker.queue import InProcessQueue

    app = create_app(settings, engine=engine, queue=InProcessQueue())
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def test_readyz_reports_database_and_migrations_ok(own_engine_http):
    response = own_engine_http.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok"},
    }


@pytest.fixture
def unreachable_api(settings: Any, session_factory: Any, tmp_path: Any) -> Iterator[TestClient]:
    """The app over an engine whose database cannot be opened."""
    from server.app import create_app
    from server.worker.queue import InProcessQueue

    broken = create_engine(f"sqlite:///{tmp_path}/missing-directory/vigil.sqlite3")
    app = create_app(
        settings, session_factory=session_factory, engine=broken, queue=InProcessQueue()
    )
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http
    broken.dispose()


def test_readyz_is_503_when_the_database_is_unreachable(unreachable_api):
    response = unreachable_api.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["checks"]["database"] == "unreachable"
    assert unreachable_api.get("/healthz").status_code == 200


def test_every_response_carries_a_fresh_request_id(api):
    first = api.http.get("/healthz").headers["X-Request-Id"]
    second = api.http.get("/healthz").headers["X-Request-Id"]

    assert len(first) == 32
    assert first != second


def test_unknown_route_is_404_in_the_error_shape(api):
    response = api.as_("analyst").get(f"{API}/no-such-thing")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert body["errors"] == []
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_wrong_method_is_405_in_the_error_shape(api):
    response = api.as_("analyst").delete(f"{API}/reports")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_openapi_document_lists_the_api(api):
    response = api.http.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        f"{API}/auth/token",
        f"{API}/reports",
        f"{API}/reports/{{report_id}}/verification",
        f"{API}/incidents/merge",
        f"{API}/incidents/merge-suggestions",
        f"{API}/units/{{unit_id}}/aor",
        f"{API}/users",
        f"{API}/devices",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    geojson = paths[f"{API}/reports"]["get"]["responses"]["200"]["content"]
    assert "application/geo+json" in geojson


def test_readyz_does_not_wait_behind_an_open_write(own_engine_http, engine):
    """A long write (an import) must not make the node look dead to its orchestrator."""
    import time

    with engine.connect() as writer:
        writer.begin()
        writer.exec_driver_sql("SELECT 1")  # on SQLite this holds the write lock
        started = time.perf_counter()
        response = own_engine_http.get("/readyz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert elapsed < 5  # far below the 30 s busy timeout it would otherwise wait out


def test_logs_never_carry_narratives_or_tokens(api):
    """Structured logs hold routes, statuses and ids — never bodies (SECURITY.md L5)."""
    import io
    import logging
    import uuid

    from server.logs import JsonFormatter
    from tests.api._builders import report_body

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("vigil")
    logger.addHandler(handler)
    canary = f"CANARY-{uuid.uuid4().hex}"
    try:
        officer = api.as_("officer_a")
        created = officer.post(f"{API}/reports", json=report_body(narrative=canary))
        assert created.status_code == 201
        report_id = created.json()["id"]
        assert officer.get(f"{API}/reports/{report_id}").status_code == 200
        assert officer.get(f"{API}/reports").status_code == 200
        too_long = officer.post(f"{API}/reports", json=report_body(narrative=canary * 2000))
        assert too_long.status_code == 422
        assert canary not in too_long.text
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert '"route": "/api/v1/reports/{report_id}"' in logged
    assert canary not in logged
    token = officer.auth["Authorization"].split()[1]
    assert token not in logged


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_the_internet(api, page):
    """Mission intranets have no internet: every script and stylesheet is served by Vigil."""
    import re

    html = api.http.get(page)
    assert html.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assets = [s for s in sources if s.endswith((".js", ".css", ".png"))]
    assert assets
    for url in assets:
        assert url.startswith("/static/docs/"), url
        assert api.http.get(url).status_code == 200, url
    assert "cdn." not in html.text and "googleapis" not in html.text
