"""Engines and sessions. Built from settings at start-up, never at import time.

The request (or the job) owns the transaction: services only ``flush()``; ``transaction()``
commits or rolls back around a unit of work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.settings import Settings

__all__ = [
    "READ_ONLY",
    "create_engine_for",
    "create_session_factory",
    "is_sqlite",
    "read_only",
    "transaction",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a transaction that will only read.
READ_ONLY = "vigil_read_only"


def is_sqlite(bind: Engine | Session | Any) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return bool(engine.dialect.name == "sqlite")


def create_engine_for(settings: Settings) -> Engine:
    """An engine for the configured database, with the per-backend settings Vigil relies on."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url.database)
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported database {url.get_backend_name()!r}: use PostgreSQL or SQLite"
        )
    timeout_ms = int(settings.database.statement_timeout_s * 1000)
    return create_engine(
        url,
        pool_pre_ping=True,
        echo=settings.database.echo,
        connect_args={"options": f"-c statement_timeout={timeout_ms} -c timezone=UTC"},
    )


def _sqlite_engine(settings: Settings, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url,
        echo=settings.database.echo,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: an acknowledged report survives a power cut, not only a crash (ack ⇒ durable).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: two transactions that read then write can
        # then never deadlock into SQLITE_BUSY_SNAPSHOT; they queue on busy_timeout instead.
        # Autocommit connections (health probes) read without taking it.
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        # Read-only work (a job's analysis phase) reads a WAL snapshot without the write lock,
        # so it neither waits for writers nor makes them wait.
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for work that only reads; on SQLite it takes no write lock. Rolled back."""
    session = factory()
    try:
        session.connection(execution_options={READ_ONLY: True})
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
