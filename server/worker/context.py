"""What a job needs to open its own session: set once per process, never at import time.

The API process sets it at start-up (in-process jobs share its engine); an rq worker sets it in
``vigil worker`` from its own settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.db.session import transaction
from server.settings import Settings

__all__ = ["JobContext", "configure", "current", "job_session"]


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    #: Where jobs put follow-up jobs (deliveries after a drain, escalation timers); a
    #: ``server.worker.queue.JobQueue``. None: follow-ups wait for the periodic tick.
    queue: Any = None


_context: JobContext | None = None


def configure(context: JobContext) -> None:
    global _context
    _context = context


def current() -> JobContext:
    if _context is None:
        raise RuntimeError("jobs are not configured in this process (start via vigil serve/worker)")
    return _context


@contextmanager
def job_session() -> Iterator[Session]:
    """The job's own transaction: committed when the job returns, rolled back if it raises."""
    with transaction(current().session_factory) as session:
        yield session
