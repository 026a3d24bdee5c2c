"""HTTP for the sync protocol: request headers, retries with backoff, and the rule that only an
answer carrying ``X-Sync-Protocol`` is an answer from Vigil.

Everything else — a timeout, a reset connection, a captive portal's ``200 text/html``, a proxy's
``502``, an answer whose compression cannot be undone — is *indeterminate*: the server may or may
not have acted. The caller's ops stay pending and are resent unchanged; per-op de-duplication on
the server makes that safe (SYNC.md §4.4).

Every request asks for gzip answers (``Accept-Encoding: gzip``); :func:`gzip_body` is how a push
body is compressed when hello says the server decodes gzip (see README "On the wire").
"""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from mobile_sync.client.backoff import Backoff, parse_retry_after
from mobile_sync.client.clock import DeviceClock, Exchange
from mobile_sync.protocol.models import PROTOCOL_HEADER

__all__ = [
    "CLIENT_VERSION",
    "GZIP_MIN_BYTES",
    "IndeterminateError",
    "Reply",
    "ServerUnreachableError",
    "SyncHttp",
    "error_code",
    "gzip_body",
]

CLIENT_VERSION = "1.0.0"
T = TypeVar("T")

#: Bodies shorter than this go uncompressed. Measured on protocol JSON: gzip's 18 B frame and
#: ``Content-Encoding: gzip`` (24 B) break even near 200 B; a push body is never that small
#: (the batch envelope alone is ~240 B, a minimal create op ~800 B, which gzip cuts by ~40 %).
GZIP_MIN_BYTES = 256

#: Answers worth retrying as they are: overload and server-side failures.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class IndeterminateError(Exception):
    """No usable answer: the server may or may not have acted on the request."""


class ServerUnreachableError(Exception):
    """Retries exhausted without an answer (offline, portal, outage); try again later."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(f"{reason} (after {attempts} attempts)")
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class Reply(Generic[T]):
    """An answer from Vigil (it carried the protocol header), and its parsed body when the
    caller asked for one and the status was 2xx."""

    response: httpx.Response
    value: T | None

    @property
    def status(self) -> int:
        return self.response.status_code


def error_code(response: httpx.Response) -> str | None:
    """The ``code`` of a Vigil error body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def gzip_body(body: bytes) -> bytes:
    """``body`` gzipped, the same bytes every time (no timestamp in the header): a resend is
    byte for byte the request sent before."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def _server_ms(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


class SyncHttp:
    """One device's sync requests over an ``httpx.Client`` (the real network, or an injected
    transport in tests)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        token: Callable[[], str],
        clock: DeviceClock,
        boot_id: uuid.UUID,
        on_exchange: Callable[[Exchange], None],
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        max_attempts: int = 5,
        max_retry_after_s: float = 300.0,
        client_version: str = CLIENT_VERSION,
    ) -> None:
        self.http = http
        self._token = token
        self.clock = clock
        self.boot_id = boot_id
        self._on_exchange = on_exchange
        self.sleep = sleep
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.max_retry_after_s = max_retry_after_s
        self.client_version = client_version

    def headers(self) -> dict[str, str]:
        """Auth and clock headers, fresh for each request (SYNC.md §4.8)."""
        return {
            "Authorization": f"Bearer {self._token()}",
            "X-Device-Time-Ms": str(self.clock.wall_ms()),
            "X-Device-Uptime-Ms": str(self.clock.uptime_ms()),
            "X-Boot-Id": str(self.boot_id),
            "X-Client-Version": self.client_version,
            # Only gzip: httpx would also offer deflate (and br/zstd when installed), which
            # the server never sends, at the cost of header bytes on every request.
            "Accept-Encoding": "gzip",
        }

    def pause(self, retry_after_s: float | None = None) -> None:
        """Wait before the next attempt: full jitter, or longer if the server asked."""
        self.sleep(self.backoff.next_delay(retry_after_s))

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        parse: Callable[[httpx.Response], T] | None = None,
    ) -> Reply[T]:
        """Send until Vigil answers something other than overload, or attempts run out
        (:class:`ServerUnreachableError`). ``parse`` reads a 2xx body; it raises
        :class:`IndeterminateError` for an answer that cannot be this request's (then retried)."""
        reason = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            t0 = self.clock.wall_ms()
            try:
                response = self.http.request(
                    method,
                    url,
                    content=content,
                    params=params,
                    headers={**self.headers(), **(headers or {})},
                )
            except httpx.TimeoutException as exc:
                reason = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__})"
            except httpx.DecodingError as exc:
                # A gzip answer damaged on the way (or by a proxy): no answer at all.
                reason = f"unreadable answer ({type(exc).__name__}: {exc})"
            else:
                t3 = self.clock.wall_ms()
                outcome = self._classify(response, t0, t3, parse)
                if isinstance(outcome, Reply):
                    self.backoff.reset()
                    return outcome
                reason, retry_after = outcome
                if retry_after is not None and retry_after > self.max_retry_after_s:
                    raise ServerUnreachableError(
                        f"{reason}; the server asked to wait {retry_after:.0f} s", attempt
                    )
            if attempt < self.max_attempts:
                self.pause(retry_after)
        raise ServerUnreachableError(reason, self.max_attempts)

    def _classify(
        self,
        response: httpx.Response,
        t0: int,
        t3: int,
        parse: Callable[[httpx.Response], T] | None,
    ) -> Reply[T] | tuple[str, float | None]:
        if PROTOCOL_HEADER not in response.headers:
            kind = response.headers.get("content-type", "no content type")
            return (
                f"HTTP {response.status_code} ({kind}) without {PROTOCOL_HEADER}: not an "
                "answer from Vigil (captive portal or proxy?)",
                None,
            )
        t1 = _server_ms(response, "X-Server-Received-Ms")
        t2 = _server_ms(response, "X-Server-Time-Ms")
        if t1 is not None and t2 is not None:
            self._on_exchange(Exchange(t0, t1, t2, t3, self.boot_id))
        status = response.status_code
        if status in _RETRY_STATUSES or status >= 500:
            return f"HTTP {status} from the server", parse_retry_after(
                response.headers.get("Retry-After")
            )
        if parse is not None and 200 <= status < 300:
            try:
                return Reply(response, parse(response))
            except IndeterminateError as exc:
                return f"unusable answer: {exc}", None
        return Reply(response, None)
