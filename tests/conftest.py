"""Test fixtures: a real database (SQLite file, or PostgreSQL/PostGIS when
``VIGIL_TEST_DATABASE_URL`` is set), schema made by the migrations, a seeded mission, and each
test inside a transaction that is rolled back.

The suite runs once per backend (``scripts/test`` does both); the seed — a small mission around
Bambari with AORs, one user per role — is committed once per run and shared.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from server.access.policy import Actor, actor_for
from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, transaction
from server.settings import AuthSettings, HotspotSettings, Settings
from tests import seed

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("VIGIL_TEST_DATABASE_URL")
    backend = "postgresql" if url else "sqlite"
    redis = os.environ.get("VIGIL_TEST_REDIS_URL") or "none (redis tests skip)"
    return f"vigil test backend: {backend}; redis: {redis}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_sqlite = not os.environ.get("VIGIL_TEST_DATABASE_URL")
    no_redis = not os.environ.get("VIGIL_TEST_REDIS_URL")
    for item in items:
        if on_sqlite and item.get_closest_marker("postgres_only"):
            item.add_marker(
                pytest.mark.skip(reason="PostgreSQL-only behaviour; this run is SQLite")
            )
        if no_redis and item.get_closest_marker("redis"):
            item.add_marker(
                pytest.mark.skip(
                    reason="needs a Redis server: set VIGIL_TEST_REDIS_URL "
                    "(scripts/test starts one)"
                )
            )


def _fast_auth() -> AuthSettings:
    # argon2 at its minimum cost so hundreds of test users hash quickly; the production
    # profile is asserted separately (tests/unit/test_passwords.py).
    return AuthSettings(
        secret_key="test-secret-key-with-enough-entropy-0123456789",  # type: ignore[arg-type]
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("vigil-data")
    url = os.environ.get("VIGIL_TEST_DATABASE_URL") or f"sqlite:///{data_dir / 'test.sqlite3'}"
    # One stored window and no background recompute thread: tests call the jobs themselves.
    hotspots = HotspotSettings(windows_days=[30], background=False)
    return Settings.load(
        data_dir=data_dir, database={"url": url}, auth=_fast_auth(), hotspots=hotspots
    )


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings)
    if engine.dialect.name == "postgresql":
        _reset_postgres(engine)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def passwords(settings: Settings) -> PasswordService:
    return PasswordService(settings.auth)


@pytest.fixture(scope="session")
def mission(engine: Engine, settings: Settings, passwords: PasswordService) -> seed.Mission:
    """The committed seed: units with AORs and one user per role (see tests/seed.py)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with transaction(factory) as session:
        return seed.build(session, settings, passwords)


@pytest.fixture
def connection(engine: Engine, mission: seed.Mission) -> Iterator[Connection]:
    """A connection whose outer transaction is rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Every session's commit becomes a SAVEPOINT release inside the test's transaction.
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    try:
        yield session
    finally:
        session.close()


@dataclass
class ApiClient:
    """A TestClient plus sign-in helpers."""

    http: Any
    tokens: Any
    mission: seed.Mission

    def headers(self, username: str) -> dict[str, str]:
        user = self.mission.users[username]
        token = self.tokens.issue(user_id=user.id, token_version=user.token_version)
        return {"Authorization": f"Bearer {token.token}"}

    def as_(self, username: str) -> _As:
        return _As(self.http, self.headers(username))


@dataclass
class _As:
    http: Any
    auth: dict[str, str]

    def _merge(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs["headers"] = {**self.auth, **kwargs.get("headers", {})}
        return kwargs

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, **self._merge(kwargs))

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.http.post(url, **self._merge(kwargs))

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.http.patch(url, **self._merge(kwargs))

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.http.put(url, **self._merge(kwargs))

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.http.delete(url, **self._merge(kwargs))


@pytest.fixture(scope="session")
def api_session_factory() -> sessionmaker[Session]:
    """The app's session factory, re-bound to each test's connection by ``api``.

    One app serves the whole run: building a FastAPI app costs more than most API tests.
    """
    return sessionmaker(join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture(scope="session")
def app(settings: Settings, engine: Engine, api_session_factory: sessionmaker[Session]) -> Any:
    from server.app import create_app
    from server.worker.queue import InProcessQueue

    return create_app(
        settings, session_factory=api_session_factory, engine=engine, queue=InProcessQueue()
    )


@pytest.fixture(scope="session")
def http(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api(
    app: Any,
    http: Any,
    settings: Settings,
    connection: Connection,
    api_session_factory: sessionmaker[Session],
    mission: seed.Mission,
) -> Iterator[ApiClient]:
    from server.worker import context as job_context

    api_session_factory.configure(bind=connection)
    # Other tests may have pointed in-process jobs elsewhere; jobs run on this test's connection.
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=api_session_factory)
    )
    http.cookies.clear()
    yield ApiClient(http=http, tokens=app.state.tokens, mission=mission)
    api_session_factory.configure(bind=None)


@pytest.fixture
def actor_of(session: Session, mission: seed.Mission) -> Any:
    """``actor_of("analyst")`` → the seeded user's Actor, for calling services directly."""

    def make(username: str) -> Actor:
        from server.users.models import User

        user = session.get(User, mission.users[username].id)
        assert user is not None
        return actor_for(session, user)

    return make


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (run from a checkout beside shared/)")
    return SHARED_DATA


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vigil-test-") as path:
        yield Path(path)
