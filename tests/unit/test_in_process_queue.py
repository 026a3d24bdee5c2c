"""The embedded job queue: ordinary jobs run at once in the caller's thread; alert-path jobs run
in one background thread, in order, each waiting job queued once."""

from __future__ import annotations

import threading
import time

from server.worker.queue import ALERTS, InProcessQueue, on_alerts_queue


def test_ordinary_jobs_run_at_once_in_the_callers_thread() -> None:
    seen: list[str] = []
    InProcessQueue(background=frozenset({ALERTS})).enqueue(
        lambda: seen.append(threading.current_thread().name)
    )
    assert seen == [threading.current_thread().name]


def test_alert_jobs_run_in_the_background_in_order_and_once_while_waiting() -> None:
    gate = threading.Event()
    ran: list[tuple[str, str]] = []

    @on_alerts_queue
    def slow() -> None:
        gate.wait(5)
        ran.append(("slow", threading.current_thread().name))

    @on_alerts_queue
    def drain() -> None:
        ran.append(("drain", threading.current_thread().name))

    queue = InProcessQueue(background=frozenset({ALERTS}))
    queue.enqueue(slow)
    time.sleep(0.05)  # slow is running, blocked on the gate
    for _ in range(5):
        queue.enqueue(drain)  # the caller is not held up; one copy waits
    assert ran == []
    gate.set()
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert [name for name, _ in ran] == ["slow", "drain"]
    assert all(thread == "vigil-in-process-jobs" for _, thread in ran)


def test_a_failing_background_job_does_not_stop_the_next() -> None:
    done = threading.Event()

    @on_alerts_queue
    def fails() -> None:
        raise RuntimeError("boom")

    @on_alerts_queue
    def works() -> None:
        done.set()

    queue = InProcessQueue(background=frozenset({ALERTS}))
    queue.enqueue(fails)
    queue.enqueue(works)
    assert done.wait(5)
