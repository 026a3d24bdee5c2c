"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts, parsed.

    with SmtpSink() as sink:
        notifier = EmailNotifier(host=sink.host, port=sink.port, sender="vigil@example.org")
        ...
        [message] = sink.wait_for(1)

``refuse(address, "550 ...")`` answers RCPT for that address with the given reply (a 5xx for a
permanent refusal, a 4xx for "try later"); ``fail_data(n)`` answers the next ``n`` DATA commands
with ``451``.
"""

from __future__ import annotations

import email
import socket
import threading
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["SmtpSink", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Handler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refusals: dict[str, str] = {}
        self.data_failures = 0
        self.changed = threading.Condition()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.changed:
            refusal = self.refusals.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.changed:
            if self.data_failures > 0:
                self.data_failures -= 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.changed.notify_all()
        return "250 Message accepted"


class SmtpSink:
    """aiosmtpd's ``Controller`` on ``127.0.0.1`` and a free port; a context manager."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._handler.changed:
            return list(self._handler.messages)

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """``(MAIL FROM, RCPT TOs)`` of each accepted message."""
        with self._handler.changed:
            return list(self._handler.envelopes)

    def refuse(self, address: str, reply: str = "550 5.1.1 no such mailbox") -> None:
        with self._handler.changed:
            self._handler.refusals[address] = reply

    def fail_data(self, times: int) -> None:
        with self._handler.changed:
            self._handler.data_failures = times

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; AssertionError after ``timeout``."""
        handler = self._handler
        with handler.changed:
            if not handler.changed.wait_for(lambda: len(handler.messages) >= count, timeout):
                raise AssertionError(
                    f"SMTP sink got {len(handler.messages)} messages, expected {count}"
                )
            return list(handler.messages)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
