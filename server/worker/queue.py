"""Where jobs go: rq on Redis in production, in-process in the embedded default.

Jobs are queued *after* the transaction that calls for them commits, so a job never runs
against data it cannot see yet, and a rolled-back request queues nothing. A crash between the
commit and the enqueue loses the job, never the work: alert facts wait in the transactional
outbox (``alert_outbox``) and dirty marks, which the periodic jobs poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = [
    "ALERTS",
    "InProcessQueue",
    "JobQueue",
    "RqQueue",
    "after_commit",
    "alerts_queue_name",
    "install_after_commit_hook",
    "on_alerts_queue",
]

log = logging.getLogger("vigil.jobs")

_PENDING_KEY = "vigil_jobs_after_commit"
_COMMITTED_KEY = "vigil_jobs_committed"
_QUEUE_KEY = "vigil_job_queue"

#: Retry policy for every rq job: three more tries, backing off (SECURITY.md rule 9).
RETRY_INTERVALS_S = (10, 60, 300)


#: The queue of the alert path (drain, deliver, escalate, tick): a worker takes its jobs before
#: any other, and a deployment can give it a worker of its own, so that a long hotspot
#: recompute never holds an alert back.
ALERTS = "alerts"


def on_alerts_queue(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a job function as part of the alert path (it goes on the alerts queue)."""
    func.vigil_queue = ALERTS  # type: ignore[attr-defined]
    return func


def alerts_queue_name(queue_name: str) -> str:
    return f"{queue_name}-{ALERTS}"


class JobQueue(Protocol):
    def enqueue(self, func: Callable[..., Any], *args: Any) -> None: ...

    def enqueue_at(self, when: datetime, func: Callable[..., Any], *args: Any) -> None: ...


class InProcessQueue:
    """Runs each job in this process, with the same function rq would run.

    By default at once, in the committing thread (tests rely on that). Jobs of the queues in
    ``background`` go to one background thread instead, in order: the embedded server hands it
    the alert path, so a field device's push is answered as soon as it is committed rather than
    after its alerts are raised and delivered. A job already waiting there is not queued twice
    (the drain takes everything the outbox holds). Jobs still waiting at shutdown are lost, not
    their work: the outbox keeps the facts, and the alert tick drains it after a restart.
    """

    def __init__(self, *, background: frozenset[str] = frozenset()) -> None:
        self._background = background
        self._waiting: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def enqueue(self, func: Callable[..., Any], *args: Any) -> None:
        if getattr(func, "vigil_queue", None) in self._background:
            self._hand_over(func, args)
            return
        self._run(func, args)

    def enqueue_at(self, when: datetime, func: Callable[..., Any], *args: Any) -> None:
        # No timers in-process: the periodic alert tick runs what falls due (escalations).
        return None

    @staticmethod
    def _run(func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            func(*args)
        except Exception:
            # In-process jobs must not fail the request that already committed; log and carry on
            # (the periodic jobs catch up).
            log.exception("in-process job failed", extra={"job": func.__name__})

    def _hand_over(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._changed:
            if self._closing:
                return
            if (func, args) not in self._waiting:
                self._waiting.append((func, args))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="vigil-in-process-jobs", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closing:
                    self._changed.wait()
                if self._closing:
                    return
                func, args = self._waiting.pop(0)
            self._run(func, args)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background thread after the job in hand (at shutdown, before the engine
        goes): waiting jobs are dropped, their facts stay in the outbox for the next start."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


class RqQueue:
    """Puts jobs on an rq queue with an explicit retry policy."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        from redis import Redis
        from rq import Queue

        connection = Redis.from_url(redis_url)
        self._queue = Queue(queue_name, connection=connection)
        self._alerts = Queue(alerts_queue_name(queue_name), connection=connection)

    @property
    def rq_queue(self) -> Any:
        return self._queue

    @property
    def alerts_rq_queue(self) -> Any:
        return self._alerts

    def queue_for(self, func: Callable[..., Any]) -> Any:
        return self._alerts if getattr(func, "vigil_queue", None) == ALERTS else self._queue

    def enqueue(self, func: Callable[..., Any], *args: Any) -> None:
        from rq import Retry

        self.queue_for(func).enqueue(
            func, *args, retry=Retry(max=len(RETRY_INTERVALS_S), interval=list(RETRY_INTERVALS_S))
        )

    def enqueue_at(self, when: datetime, func: Callable[..., Any], *args: Any) -> None:
        """A timer on rq's scheduler (workers run with ``with_scheduler=True``)."""
        from rq import Retry

        self.queue_for(func).enqueue_at(
            when,
            func,
            *args,
            retry=Retry(max=len(RETRY_INTERVALS_S), interval=list(RETRY_INTERVALS_S)),
        )


def after_commit(session: Session, func: Callable[..., Any], *args: Any) -> None:
    """Queue ``func(*args)`` once the session's transaction commits (deduplicated)."""
    if not session.in_transaction():
        # Tie the job to a transaction, so that rolling it back discards the job.
        session.begin()
    pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = session.info.setdefault(
        _PENDING_KEY, []
    )
    if (func, args) not in pending:
        pending.append((func, args))


def install_after_commit_hook(session_factory: Any, queue: JobQueue) -> None:
    """Make sessions from ``session_factory`` hand their pending jobs to ``queue`` on commit."""

    @event.listens_for(session_factory, "after_commit")
    def _committed(session: Session) -> None:
        # SQLAlchemy fires after_commit for a savepoint's release too: jobs queued inside one
        # stay pending until the outermost transaction commits (or are dropped if it rolls
        # back); moving them at the release would let the outer commit overwrite them.
        if session.in_nested_transaction():
            return
        session.info[_COMMITTED_KEY] = session.info.pop(_PENDING_KEY, [])

    @event.listens_for(session_factory, "after_transaction_end")
    def _dispatch(session: Session, transaction: Any) -> None:
        # Only once the committed transaction has given its connection back: an in-process
        # job opens its own, and a request must never hold one connection while waiting for
        # a second (under load every request would, and the pool would starve).
        if transaction.parent is not None:
            return
        for func, args in session.info.pop(_COMMITTED_KEY, []):
            queue.enqueue(func, *args)

    @event.listens_for(session_factory, "after_soft_rollback")
    def _discard(session: Session, previous_transaction: Any) -> None:
        # Every rollback of the outermost transaction (even of one that never reached the
        # database) discards its jobs; a savepoint rolling back leaves the outer jobs alone.
        if not previous_transaction.nested:
            session.info.pop(_PENDING_KEY, None)
