"""Named crash points, so tests can stop the client exactly where a real crash would hurt.

Production code calls :func:`point` at each place below; it does nothing unless a test has set
:data:`hook` (``monkeypatch.setattr(crash, "hook", raise_at("before_send"))``). A hook that raises
aborts the client there: open transactions roll back (as SQLite's journal would after a kill) and
a fresh client on the same store file must then lose and duplicate nothing.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["POINTS", "CrashHook", "hook", "point"]

#: Every point the client announces, in the order a sync meets them.
POINTS = frozenset(
    {
        "mid_local_write",  # inside the op-creating transaction, after the outbox insert
        "after_local_write",  # the op is committed, nothing sent yet
        "before_send",  # a push batch is built and about to go out
        "after_send_before_ack",  # the server answered; its results are not stored yet
        "mid_ack",  # results (and sealed wipes) written, their transaction not committed
        "mid_pull_page",  # part of a pull page applied, the page's transaction still open
        "mid_upload",  # a chunk was accepted by the server; the local offset is not stored yet
        "mid_migration",  # inside a schema migration's transaction
    }
)

CrashHook = Callable[[str], None]

#: Set by tests only.
hook: CrashHook | None = None


def point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if hook is not None:
        hook(name)
