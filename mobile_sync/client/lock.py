"""Single-flight: at most one sync per store, across threads and across processes.

Threads of one process share an in-process lock per store file; processes share an advisory
lock on ``<store>.lock`` (``fcntl.flock``; the kernel drops it when the holder dies, so a crashed
sync never leaves the store locked). Both are tried without waiting: a second caller is told a
sync is already running rather than queued behind it (offline-editor-js#406).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SyncLock", "lock_path_for"]

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def lock_path_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".lock")


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def _try_lock_file(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - the field laptops that run Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class SyncLock:
    """``with SyncLock(path).held() as acquired:`` — ``acquired`` is False if another thread or
    process holds it."""

    def __init__(self, store_path: Path) -> None:
        self.path = lock_path_for(store_path.resolve())
        self._thread_lock = _process_lock(str(self.path))

    @contextmanager
    def held(self) -> Iterator[bool]:
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if not _try_lock_file(fd):
                    yield False
                    return
                # Who holds it, for a human looking at a stuck phone; the lock is the flock.
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                yield True
            finally:
                os.close(fd)  # closing the descriptor releases the flock
        finally:
            self._thread_lock.release()
