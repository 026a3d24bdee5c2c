"""Alert delivery channels behind one small interface: signed webhooks, e-mail, an in-memory twin.

Each channel implements :class:`Notifier`: ``send(recipient, notification)`` tries to hand one
notification to one recipient, retrying transient failures itself with backoff, and returns a
:class:`DeliveryOutcome`. It does not raise for a delivery problem; the outcome says what
happened, so the caller (an rq job, safe to run twice) decides what to record and whether to
enqueue a later retry:

==========================  ==========================================================
``delivered``               the sink accepted it (HTTP 2xx, SMTP 250)
not delivered, permanent    retrying cannot fix it: HTTP 4xx other than 408/429, a
                            redirect, SMTP 5xx, a malformed address, no webhook secret
not delivered, transient    every attempt failed on something that may pass (connection
                            refused or reset, timeout, HTTP 5xx/408/429, SMTP 4xx); retry
                            later with the same notification
==========================  ==========================================================

Retries reuse ``notification.idempotency_key`` (the ``Idempotency-Key`` header, and the stable
e-mail ``Message-ID``), so a sink that saw an attempt whose answer was lost can drop the repeat.
``DeliveryOutcome.detail`` and the logs carry the status or error type only: never the webhook
secret, the body, the URL (it may embed a token) or the SMTP password.

Webhook requests are signed: ``X-Vigil-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}." +
body)>`` with ``X-Vigil-Timestamp`` in unix seconds; receivers check them with
:func:`verify_webhook`, which refuses stale timestamps so a captured request cannot be replayed.

Exceptions::

    ValueError
    └── WebhookSignatureError    verify_webhook refused a request (missing or malformed header,
                                 timestamp outside the tolerance, wrong signature)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr, parsedate_to_datetime
from types import TracebackType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

__all__ = [
    "DeliveryOutcome",
    "EmailNotifier",
    "MemoryNotifier",
    "Notification",
    "Notifier",
    "Recipient",
    "WebhookNotifier",
    "WebhookSignatureError",
    "message_id",
    "signed_headers",
    "verify_webhook",
    "webhook_body",
]

log = logging.getLogger("vigil.alerts")

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
MESSAGE_TYPE_HEADER = "X-Vigil-Message-Type"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EMAIL_IDEMPOTENCY_HEADER = "X-Vigil-Idempotency-Key"


@dataclass(frozen=True)
class Recipient:
    """Where one unit receives alerts on one channel. ``secret`` is the webhook's HMAC key."""

    channel: str
    address: str
    unit_code: str
    secret: str | None = None


@dataclass(frozen=True)
class Notification:
    """One message to deliver, the same on every channel and every retry.

    ``text`` is the plain-text body (the caller keeps narratives out of it), ``payload`` the
    webhook's JSON body, ``cap_documents`` ``(filename, CAP XML)`` pairs attached to e-mails.
    """

    idempotency_key: str
    msg_type: str
    subject: str
    text: str
    payload: dict[str, Any]
    cap_documents: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one ``send`` achieved (see the module docstring for the three cases)."""

    delivered: bool
    permanent: bool
    attempts: int
    detail: str


@runtime_checkable
class Notifier(Protocol):
    channel: str

    def send(self, recipient: Recipient, notification: Notification) -> DeliveryOutcome: ...


def _delay(backoff_s: tuple[float, ...], failed_attempts: int) -> float:
    """Backoff before the next attempt; the last value repeats if there are more attempts."""
    if not backoff_s:
        return 0.0
    return backoff_s[min(failed_attempts - 1, len(backoff_s) - 1)]


# ---------------------------------------------------------------------------- in-memory twin


class MemoryNotifier:
    """The in-memory twin for tests and the demo: records what was sent in ``.sent``.

    ``fail(n)`` makes the next ``n`` sends fail (transiently, or permanently) without recording;
    every call is counted in ``.calls``.
    """

    channel = "memory"

    def __init__(self) -> None:
        self.sent: list[tuple[Recipient, Notification]] = []
        self.calls = 0
        self._failures = 0
        self._permanent = False

    def fail(self, times: int, *, permanent: bool = False) -> None:
        self._failures = times
        self._permanent = permanent

    def send(self, recipient: Recipient, notification: Notification) -> DeliveryOutcome:
        self.calls += 1
        if self._failures > 0:
            self._failures -= 1
            kind = "permanent" if self._permanent else "transient"
            return DeliveryOutcome(False, self._permanent, 1, f"scripted {kind} failure")
        self.sent.append((recipient, notification))
        return DeliveryOutcome(True, False, 1, "recorded")

    def keys(self) -> list[str]:
        """Idempotency keys sent, in order (repeats included)."""
        return [notification.idempotency_key for _, notification in self.sent]


# ---------------------------------------------------------------------------- webhook


class WebhookSignatureError(ValueError):
    """A webhook request whose signature headers do not prove it came from Vigil, now."""


def webhook_body(notification: Notification) -> bytes:
    """The canonical JSON body: sorted keys, no spaces, UTF-8 (the bytes that are signed)."""
    return json.dumps(
        notification.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _signature(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, *, timestamp: int, idempotency_key: str
) -> dict[str, str]:
    """Headers for one webhook attempt: content type, timestamp, signature, idempotency key."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"v1={_signature(secret, body, timestamp)}",
        IDEMPOTENCY_HEADER: idempotency_key,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # http.server and httpx headers are case-insensitive already; a plain dict is not.
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_V1 = re.compile(r"v1=([0-9a-f]{64})", re.ASCII)


def verify_webhook(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance_s: float = 300,
) -> None:
    """Check that a webhook request was signed with ``secret`` within ``tolerance_s`` of ``now``.

    ``X-Vigil-Signature`` may list several comma-separated ``v1=`` values (a sender rotating its
    key); one must match. Comparisons are constant-time.

    Raises
    ------
    WebhookSignatureError
        A header is missing or malformed, the timestamp is outside the tolerance (a replay or a
        badly wrong clock), or no signature matches the body.
    """
    for name in (TIMESTAMP_HEADER, SIGNATURE_HEADER, IDEMPOTENCY_HEADER):
        if not _header(headers, name):
            raise WebhookSignatureError(f"missing {name} header")
    stamp = _header(headers, TIMESTAMP_HEADER) or ""
    if not _TIMESTAMP.fullmatch(stamp.strip()):
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not unix seconds")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance_s:
        raise WebhookSignatureError(
            f"{TIMESTAMP_HEADER} is {now - timestamp:+.0f} s from now, outside the "
            f"{tolerance_s:g} s tolerance (replayed or clock wrong)"
        )
    offered = []
    for part in (_header(headers, SIGNATURE_HEADER) or "").split(","):
        match = _V1.fullmatch(part.strip())
        if match is None:
            raise WebhookSignatureError(f"{SIGNATURE_HEADER} is not 'v1=<64 hex digits>'")
        offered.append(match[1])
    expected = _signature(secret, body, timestamp)
    # Check every offered value, so timing does not tell which position matched.
    matched = [hmac.compare_digest(expected, candidate) for candidate in offered]
    if not any(matched):
        raise WebhookSignatureError("signature does not match the body")


def _retry_after(response: httpx.Response, now: float) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


class WebhookNotifier:
    """POSTs the notification's JSON payload to ``recipient.address``, signed with its secret.

    Up to ``attempts`` tries; between them it sleeps ``backoff_s`` (the last value repeating),
    or the server's ``Retry-After`` on a 429/503, capped at ``max_retry_after_s``. Each attempt
    is signed afresh (a new timestamp, so a long backoff does not make the receiver see a stale
    request) with the same ``Idempotency-Key``. Redirects are not followed: the signed alert
    goes only where it was configured to go.
    """

    channel = "webhook"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: tuple[float, ...] = (0.2, 1.0, 4.0),
        max_retry_after_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP client if this notifier made it (a passed-in one is the caller's)."""
        if self._own_client:
            self._client.close()

    def __enter__(self) -> WebhookNotifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, recipient: Recipient, notification: Notification) -> DeliveryOutcome:
        if not recipient.secret:
            return self._give_up(recipient, True, 0, "no webhook secret configured")
        url = urlsplit(recipient.address)
        if url.scheme not in ("http", "https") or not url.hostname:
            return self._give_up(recipient, True, 0, "address is not an http(s) URL")
        body = webhook_body(notification)
        detail = ""
        for attempt in range(1, self._attempts + 1):
            headers = signed_headers(
                recipient.secret,
                body,
                timestamp=int(self._clock()),
                idempotency_key=notification.idempotency_key,
            )
            headers[MESSAGE_TYPE_HEADER] = notification.msg_type
            wait: float | None = None
            try:
                response = self._client.post(
                    recipient.address, content=body, headers=headers, timeout=self._timeout_s
                )
            except httpx.TransportError as error:
                # Connect/read/write errors, timeouts, a dropped connection: the type name says
                # which; the message could quote the URL, so it is left out.
                detail = f"{type(error).__name__}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return DeliveryOutcome(True, False, attempt, f"HTTP {status}")
                if status not in (408, 429) and status < 500:
                    return self._give_up(recipient, True, attempt, f"HTTP {status}")
                detail = f"HTTP {status}"
                wait = _retry_after(response, self._clock())
            if attempt < self._attempts:
                if wait is None:
                    wait = _delay(self._backoff_s, attempt)
                self._sleep(min(wait, self._max_retry_after_s))
        return self._give_up(
            recipient, False, self._attempts, f"{detail} after {self._attempts} attempts"
        )

    @staticmethod
    def _give_up(
        recipient: Recipient, permanent: bool, attempts: int, detail: str
    ) -> DeliveryOutcome:
        log.warning(
            "webhook delivery to unit %s failed (%s): %s",
            recipient.unit_code,
            "permanent" if permanent else "transient",
            detail,
        )
        return DeliveryOutcome(False, permanent, attempts, detail)


# ---------------------------------------------------------------------------- e-mail


def message_id(idempotency_key: str) -> str:
    """The e-mail ``Message-ID`` for a notification: the same on every retry, so a duplicate
    is recognisable by any mail client or archive."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@vigil>"


def _plain_address(address: str) -> str | None:
    if any(character in address for character in "\r\n\0"):
        return None
    _name, plain = parseaddr(address)
    local, at, domain = plain.rpartition("@")
    if not (at and local and domain) or any(c.isspace() for c in plain):
        return None
    return plain


class EmailNotifier:
    """Sends the notification as a plain-text e-mail, each CAP document attached as
    ``application/cap+xml``, through one SMTP server (smtplib).

    Retries SMTP 4xx answers and connection failures (``attempts`` tries, ``backoff_s`` between
    them); a 5xx answer (recipient or sender refused, message rejected, authentication failed)
    is permanent.
    """

    channel = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: tuple[float, ...] = (0.5, 2.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._sleep = sleep

    def build(self, recipient: Recipient, notification: Notification) -> EmailMessage:
        """The message ``send`` delivers (public so a preview or test can look at it)."""
        message = EmailMessage()
        message["Subject"] = notification.subject
        message["From"] = self._sender
        message["To"] = recipient.address
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id(notification.idempotency_key)
        message[EMAIL_IDEMPOTENCY_HEADER] = notification.idempotency_key
        message[MESSAGE_TYPE_HEADER] = notification.msg_type
        message.set_content(notification.text)
        for filename, document in notification.cap_documents:
            message.add_attachment(
                document.encode("utf-8"),
                maintype="application",
                subtype="cap+xml",
                filename=filename,
            )
        return message

    def send(self, recipient: Recipient, notification: Notification) -> DeliveryOutcome:
        to = _plain_address(recipient.address)
        if to is None:
            return self._give_up(recipient, True, 0, "not an e-mail address")
        try:
            message = self.build(recipient, notification)
        except (ValueError, TypeError) as error:
            # e.g. a line break in the subject: the header would be refused on every attempt.
            return self._give_up(
                recipient, True, 0, f"message not buildable: {type(error).__name__}"
            )
        detail = ""
        for attempt in range(1, self._attempts + 1):
            try:
                self._deliver(message, to)
            except smtplib.SMTPRecipientsRefused as error:
                codes = [code for code, _text in error.recipients.values()]
                code = max(codes) if codes else 550
                detail = f"SMTP {code} recipient refused"
                if code >= 500:
                    return self._give_up(recipient, True, attempt, detail)
            except smtplib.SMTPNotSupportedError:
                return self._give_up(recipient, True, attempt, "SMTP server lacks STARTTLS/AUTH")
            except ssl.SSLCertVerificationError:
                return self._give_up(recipient, True, attempt, "TLS certificate not trusted")
            except smtplib.SMTPResponseException as error:
                # Sender refused, data refused, auth failed, connect refused with a code.
                detail = f"SMTP {error.smtp_code} {type(error).__name__}"
                if error.smtp_code >= 500:
                    return self._give_up(recipient, True, attempt, detail)
            except (smtplib.SMTPException, OSError) as error:
                # Disconnected, refused, timed out, DNS: worth another try.
                detail = type(error).__name__
            else:
                return DeliveryOutcome(True, False, attempt, "SMTP accepted")
            if attempt < self._attempts:
                self._sleep(_delay(self._backoff_s, attempt))
        return self._give_up(
            recipient, False, self._attempts, f"{detail} after {self._attempts} attempts"
        )

    def _deliver(self, message: EmailMessage, to: str) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username is not None:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message, from_addr=self._sender, to_addrs=[to])

    @staticmethod
    def _give_up(
        recipient: Recipient, permanent: bool, attempts: int, detail: str
    ) -> DeliveryOutcome:
        log.warning(
            "e-mail delivery to unit %s failed (%s): %s",
            recipient.unit_code,
            "permanent" if permanent else "transient",
            detail,
        )
        return DeliveryOutcome(False, permanent, attempts, detail)
