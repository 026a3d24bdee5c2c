"""A Vigil server on its own database whose transactions really commit.

The rest of the suite runs each test inside a rolled-back transaction on one connection, which
cannot show what concurrent connections do: blocking on a unique index, an advisory lock held
until COMMIT, two transactions committing out of order. Tests of those use this instead: a fresh
database (PostgreSQL: ``<test db>_commits``; SQLite: a new file), migrated and seeded, served by
a real app with an ordinary session factory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, transaction
from server.settings import Settings
from tests import seed
from tests.conftest import ApiClient


@dataclass
class CommittedServer:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    #: Signed-in clients on the app bound to this database (as the ``api`` fixture gives).
    api: ApiClient


def _fresh_postgres(url: str) -> str:
    base = make_url(url)
    name = f"{base.database}_commits"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    fresh = base.set(database=name)
    engine = create_engine(fresh)
    with engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    return fresh.render_as_string(hide_password=False)


@contextmanager
def committed_server(base: Settings, data_dir: Path) -> Iterator[CommittedServer]:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.worker.queue import InProcessQueue

    pg_url = os.environ.get("VIGIL_TEST_DATABASE_URL")
    url = _fresh_postgres(pg_url) if pg_url else f"sqlite:///{data_dir / 'commits.sqlite3'}"
    settings = Settings.load(
        data_dir=data_dir,
        database={"url": url},
        auth=base.auth,
        hotspots=base.hotspots,
    )
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with transaction(factory) as session:
        mission = seed.build(session, settings, PasswordService(settings.auth))
    app = create_app(settings, session_factory=factory, engine=engine, queue=InProcessQueue())
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            api = ApiClient(http=client, tokens=app.state.tokens, mission=mission)
            yield CommittedServer(settings, engine, factory, api)
    finally:
        engine.dispose()
