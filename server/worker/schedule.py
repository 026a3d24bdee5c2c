"""The periodic jobs and who runs them.

With Redis, ``vigil worker`` enqueues them on rq at their intervals (fixed job ids, so a slow
run is never stacked behind copies of itself). Without Redis, ``vigil serve`` runs the same
functions in a background thread. Either way the work is the job functions in ``tasks``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from server.settings import Settings
from server.worker import tasks
from server.worker.queue import ALERTS, RETRY_INTERVALS_S

__all__ = ["Periodic", "Ticker", "periodic_jobs"]

log = logging.getLogger("vigil.jobs")


@dataclass(frozen=True)
class Periodic:
    job_id: str
    func: Callable[[], object]
    every_s: float


def periodic_jobs(settings: Settings) -> list[Periodic]:
    return [
        Periodic(
            "vigil-recompute-dirty-hotspots",
            tasks.recompute_dirty_hotspots,
            float(settings.hotspots.dirty_poll_seconds),
        ),
        Periodic(
            "vigil-refresh-hotspots",
            tasks.refresh_hotspots,
            float(settings.hotspots.refresh_minutes * 60),
        ),
        Periodic(
            "vigil-recompute-dirty-coverage",
            tasks.recompute_dirty_coverage,
            float(settings.coverage.dirty_poll_seconds),
        ),
        Periodic("vigil-sync-housekeeping", tasks.sync_housekeeping, 6 * 3600.0),
        Periodic("vigil-alerts-tick", tasks.alerts_tick, float(settings.alerts.tick_seconds)),
        Periodic("vigil-alerts-coverage-gaps", tasks.evaluate_coverage_gaps, 15 * 60.0),
    ]


class Ticker:
    """Runs each periodic job at its interval, in one background thread, until stopped.

    ``run`` is how each job is started: the function itself in-process, or an rq enqueue.
    """

    def __init__(self, jobs: list[Periodic], run: Callable[[Periodic], None]) -> None:
        self._jobs = jobs
        self._run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vigil-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        # Each job first runs one interval after start, except the cheap dirty poll, which
        # runs at once (a server restarting after a crash picks up what was left dirty).
        due = {job.job_id: (0.0 if "dirty" in job.job_id else job.every_s) for job in self._jobs}
        elapsed = 0.0
        tick = max(1.0, min(job.every_s for job in self._jobs) / 4) if self._jobs else 60.0
        while not self._stop.wait(tick if elapsed else 0.0):
            for job in self._jobs:
                if elapsed >= due[job.job_id]:
                    try:
                        self._run(job)
                    except Exception:  # a failed run is logged and retried at the next tick
                        log.exception("periodic job failed", extra={"job": job.job_id})
                    due[job.job_id] = elapsed + job.every_s
            elapsed += tick


def run_in_process(job: Periodic) -> None:
    job.func()


def enqueue_on(queue: object, alerts_queue: object | None = None) -> Callable[[Periodic], None]:
    """A runner that puts each periodic job on an rq queue under its fixed id (the alert
    path's jobs on ``alerts_queue`` when given)."""
    from rq import Retry
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    waiting = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

    def enqueue(job: Periodic) -> None:
        target = (
            alerts_queue
            if alerts_queue is not None and getattr(job.func, "vigil_queue", None) == ALERTS
            else queue
        )
        try:
            existing = Job.fetch(job.job_id, connection=target.connection)  # type: ignore[attr-defined]
            if existing.get_status() in waiting:
                return  # the previous run has not finished: do not stack another behind it
        except NoSuchJobError:
            pass
        target.enqueue(  # type: ignore[attr-defined]
            job.func,
            job_id=job.job_id,
            retry=Retry(max=len(RETRY_INTERVALS_S), interval=list(RETRY_INTERVALS_S)),
        )

    return enqueue
