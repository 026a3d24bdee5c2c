"""A real HTTP webhook receiver on loopback, for the notifier and alert tests.

It records every request, checks Vigil's signature when given the secret, treats a repeated
``Idempotency-Key`` as a duplicate (answering 200 without counting a second delivery, as a
careful partner system would), and can be scripted to misbehave for the first requests:
answer 503, 429 with ``Retry-After``, 400, or drop the connection without answering.

    with WebhookReceiver(secret="k") as receiver:
        receiver.script(Fail(503), Fail(429, retry_after="2"), DROP)
        ... send to receiver.url ...
        receiver.wait_for(4)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from server.alerts_inbox.notifiers import WebhookSignatureError, verify_webhook

__all__ = ["DROP", "HOLD", "Fail", "ReceivedRequest", "WebhookReceiver"]


@dataclass(frozen=True)
class Fail:
    """Answer one request with ``status`` (and ``Retry-After`` when given)."""

    status: int
    retry_after: str | None = None


#: Read the request, then close the connection without a response.
DROP = "drop"
#: Accept the request (it counts as received), but answer only after ``release()``: the sender
#: is left waiting mid-request, where a test can kill it.
HOLD = "hold"


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()
    received_wall: float  # time.time()
    status: int | None = None  # what the receiver answered; None when it dropped the connection
    signature_error: str | None = None  # why verify_webhook refused it, if it did
    duplicate: bool = False

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _State:
    secret: str | None
    tolerance_s: float
    script: list[Fail | str] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    accepted: dict[str, ReceivedRequest] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    released: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        request = ReceivedRequest(
            method="POST",
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
            received_wall=time.time(),
        )
        state = self.server.state
        with state.changed:
            action = state.script.pop(0) if state.script else None
            status, extra = self._decide(state, request, action)
            request.status = status
            state.requests.append(request)
            state.changed.notify_all()
        if status is None:
            self.close_connection = True
            return
        if action == HOLD:
            state.released.wait(timeout=60)
        reply = b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}'
        try:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except OSError:
            self.close_connection = True  # the sender is gone (a held request whose sender died)

    @staticmethod
    def _decide(
        state: _State, request: ReceivedRequest, action: Fail | str | None
    ) -> tuple[int | None, dict[str, str]]:
        if action == DROP:
            return None, {}
        # HOLD falls through: verified and accepted like any request, answered later.
        if isinstance(action, Fail):
            extra = {"Retry-After": action.retry_after} if action.retry_after else {}
            return action.status, extra
        if state.secret is not None:
            try:
                verify_webhook(
                    state.secret,
                    request.body,
                    request.headers,
                    now=request.received_wall,
                    tolerance_s=state.tolerance_s,
                )
            except WebhookSignatureError as error:
                request.signature_error = str(error)
                return 401, {}
        key = request.idempotency_key or ""
        if key in state.accepted:
            request.duplicate = True
        else:
            state.accepted[key] = request
        return 200, {}

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows the test's own output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class WebhookReceiver:
    """An HTTP server on ``127.0.0.1`` (a free port) in a background thread; a context manager."""

    def __init__(self, *, secret: str | None = None, tolerance_s: float = 300) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(secret=secret, tolerance_s=tolerance_s)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/vigil"

    def release(self) -> None:
        """Let held requests be answered."""
        self._server.state.released.set()

    def script(self, *actions: Fail | str) -> None:
        """Answer the next requests with these actions (``Fail(...)`` or ``DROP``), in order."""
        with self._server.state.changed:
            self._server.state.script.extend(actions)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._server.state.changed:
            return list(self._server.state.requests)

    def unique_keys(self) -> list[str]:
        """Distinct ``Idempotency-Key`` values seen, in order of first arrival."""
        keys = (request.idempotency_key for request in self.requests)
        return list(dict.fromkeys(key for key in keys if key is not None))

    def deliveries(self) -> list[ReceivedRequest]:
        """Requests accepted as new deliveries (verified, not a duplicate), one per key."""
        with self._server.state.changed:
            return list(self._server.state.accepted.values())

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived; AssertionError after ``timeout``."""
        state = self._server.state
        with state.changed:
            if not state.changed.wait_for(lambda: len(state.requests) >= count, timeout):
                raise AssertionError(
                    f"webhook receiver got {len(state.requests)} requests, expected {count}"
                )
            return list(state.requests)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
