"""Alert delivery against real sinks on loopback: an HTTP webhook receiver and an SMTP server.

No database: these prove the wire behaviour (signatures, retries, idempotency, permanence) of
server.alerts_inbox.notifiers, fast enough to run on both backends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from alerts.cap import CapInfo, CapMessage, parse, to_xml
from server.alerts_inbox.notifiers import (
    DeliveryOutcome,
    EmailNotifier,
    MemoryNotifier,
    Notification,
    Notifier,
    Recipient,
    WebhookNotifier,
    WebhookSignatureError,
    signed_headers,
    verify_webhook,
    webhook_body,
)
from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.webhook_receiver import DROP, Fail, WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "whsec-test-0123456789abcdef"
KEY = "alert-42:unit-banbatt-2:Alert"

CAP_MESSAGE = CapMessage(
    identifier="vigil-alert-42",
    sender="vigil@minusca.example",
    sent=datetime(2026, 12, 4, 17, 51, 39, tzinfo=UTC),
    msg_type="Alert",
    restriction="MINUSCA staff with need to know",
    infos=(
        CapInfo(
            event="Armed clash",
            urgency="Immediate",
            severity="Severe",
            certainty="Observed",
            headline="Armed clash near Bambari",
            description="Threat level raised for cell 881e0cc8a1fffff.",
        ),
    ),
)
NOTIFICATION = Notification(
    idempotency_key=KEY,
    msg_type="Alert",
    subject="[Vigil] Severe: armed clash near Bambari",
    text="Threat level raised near Bambari. Open Vigil for details.",
    payload={"alert_id": 42, "msg_type": "Alert", "headline": "Armed clash near Bambari ✓"},
    cap_documents=(("vigil-alert-42.xml", to_xml(CAP_MESSAGE)),),
)


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def webhook(sleep: RecordingSleep) -> Iterator[WebhookNotifier]:
    with WebhookNotifier(timeout_s=2.0, sleep=sleep) as notifier:
        yield notifier


def _recipient(url: str, secret: str | None = SECRET) -> Recipient:
    return Recipient(channel="webhook", address=url, unit_code="BANBATT-2", secret=secret)


def _assert_clean(outcome: DeliveryOutcome) -> None:
    body = webhook_body(NOTIFICATION).decode()
    assert SECRET not in outcome.detail
    assert body not in outcome.detail
    assert "Bambari" not in outcome.detail
    assert "127.0.0.1" not in outcome.detail  # the URL (it may carry a token) stays out too


def test_every_channel_is_a_notifier(webhook: WebhookNotifier) -> None:
    email = EmailNotifier(host="127.0.0.1", port=1, sender="vigil@example.org")
    for notifier in (MemoryNotifier(), webhook, email):
        assert isinstance(notifier, Notifier)


# ---------------------------------------------------------------------------- webhook


def test_webhook_delivered_and_signature_verifies(
    receiver: WebhookReceiver, webhook: WebhookNotifier, sleep: RecordingSleep
) -> None:
    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(True, False, 1, "HTTP 200")
    [request] = receiver.wait_for(1)
    assert request.status == 200
    assert request.signature_error is None
    assert request.body == webhook_body(NOTIFICATION)
    assert json.loads(request.body) == NOTIFICATION.payload
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == KEY
    assert request.headers["x-vigil-message-type"] == "Alert"
    assert abs(int(request.headers["x-vigil-timestamp"]) - time.time()) < 5
    verify_webhook(SECRET, request.body, request.headers, now=time.time())
    assert sleep.calls == []


def test_webhook_body_is_canonical_json() -> None:
    body = webhook_body(NOTIFICATION)
    assert body == (
        '{"alert_id":42,"headline":"Armed clash near Bambari ✓","msg_type":"Alert"}'.encode()
    )


def _signed(body: bytes, *, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    return signed_headers(secret, body, timestamp=timestamp, idempotency_key=KEY)


NOW = 1_800_000_000
BODY = webhook_body(NOTIFICATION)


def test_signed_headers_known_answer() -> None:
    headers = _signed(b'{"a":1}', timestamp=NOW)
    # The HMAC computed here, independently of the module, over "<timestamp>." + body.
    digest = hmac.new(SECRET.encode(), b'1800000000.{"a":1}', hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "X-Vigil-Timestamp": "1800000000",
        "X-Vigil-Signature": f"v1={digest}",
        "Idempotency-Key": KEY,
    }


REFUSED_SIGNATURES = {
    "tampered body": (BODY.replace(b"42", b"43"), _signed(BODY, timestamp=NOW), "does not match"),
    "wrong secret": (BODY, _signed(BODY, timestamp=NOW, secret="other"), "does not match"),
    "stale timestamp": (BODY, _signed(BODY, timestamp=NOW - 301), "outside the 300 s tolerance"),
    "future timestamp": (BODY, _signed(BODY, timestamp=NOW + 301), "outside the 300 s"),
    "timestamp changed": (
        BODY,
        {**_signed(BODY, timestamp=NOW - 10), "X-Vigil-Timestamp": str(NOW)},
        "does not match",
    ),
    "missing signature": (
        BODY,
        {k: v for k, v in _signed(BODY, timestamp=NOW).items() if k != "X-Vigil-Signature"},
        "missing X-Vigil-Signature",
    ),
    "missing timestamp": (
        BODY,
        {k: v for k, v in _signed(BODY, timestamp=NOW).items() if k != "X-Vigil-Timestamp"},
        "missing X-Vigil-Timestamp",
    ),
    "missing idempotency key": (
        BODY,
        {k: v for k, v in _signed(BODY, timestamp=NOW).items() if k != "Idempotency-Key"},
        "missing Idempotency-Key",
    ),
    "signature without version": (
        BODY,
        {**_signed(BODY, timestamp=NOW), "X-Vigil-Signature": "0" * 64},
        "not 'v1=",
    ),
    "signature not hex": (
        BODY,
        {**_signed(BODY, timestamp=NOW), "X-Vigil-Signature": "v1=" + "z" * 64},
        "not 'v1=",
    ),
    "timestamp not a number": (
        BODY,
        {**_signed(BODY, timestamp=NOW), "X-Vigil-Timestamp": "soon"},
        "not unix seconds",
    ),
}


@pytest.mark.parametrize(
    ("body", "headers", "reason"), REFUSED_SIGNATURES.values(), ids=REFUSED_SIGNATURES.keys()
)
def test_verify_webhook_refuses(body: bytes, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookSignatureError, match=reason):
        verify_webhook(SECRET, body, headers, now=NOW)


def test_verify_webhook_accepts_lowercase_headers_and_rotated_keys() -> None:
    headers = {k.lower(): v for k, v in _signed(BODY, timestamp=NOW - 299).items()}
    old = _signed(BODY, timestamp=NOW - 299, secret="old-secret")["X-Vigil-Signature"]
    headers["x-vigil-signature"] = f"{old}, {headers['x-vigil-signature']}"
    verify_webhook(SECRET, BODY, headers, now=NOW)


def test_receiver_refuses_a_request_signed_with_another_secret(
    receiver: WebhookReceiver, webhook: WebhookNotifier
) -> None:
    outcome = webhook.send(_recipient(receiver.url, secret="not-the-shared-secret"), NOTIFICATION)

    assert not outcome.delivered
    assert outcome.permanent  # 401: a wrong key will not fix itself
    assert outcome.attempts == 1
    [request] = receiver.wait_for(1)
    assert request.signature_error == "signature does not match the body"
    assert receiver.deliveries() == []


def test_503_then_success_is_retried_with_the_same_key(
    receiver: WebhookReceiver, webhook: WebhookNotifier, sleep: RecordingSleep
) -> None:
    receiver.script(Fail(503))

    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(True, False, 2, "HTTP 200")
    requests = receiver.wait_for(2)
    assert [r.status for r in requests] == [503, 200]
    assert receiver.unique_keys() == [KEY]
    assert len(receiver.deliveries()) == 1
    assert requests[0].body == requests[1].body
    assert sleep.calls == [0.2]


def test_a_repeat_send_is_a_duplicate_at_the_receiver(
    receiver: WebhookReceiver, webhook: WebhookNotifier
) -> None:
    # The job ran twice (its first answer was lost): the receiver dedups on the key.
    assert webhook.send(_recipient(receiver.url), NOTIFICATION).delivered
    assert webhook.send(_recipient(receiver.url), NOTIFICATION).delivered

    requests = receiver.wait_for(2)
    assert [r.duplicate for r in requests] == [False, True]
    assert receiver.unique_keys() == [KEY]
    assert len(receiver.deliveries()) == 1


def test_429_retry_after_is_honoured_and_capped(
    receiver: WebhookReceiver, sleep: RecordingSleep
) -> None:
    receiver.script(Fail(429, retry_after="7"), Fail(429, retry_after="3600"), Fail(408))

    with WebhookNotifier(sleep=sleep, max_retry_after_s=30.0) as webhook:
        outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(True, False, 4, "HTTP 200")
    # Retry-After, Retry-After capped, then the backoff for a third failure.
    assert sleep.calls == [7.0, 30.0, 4.0]
    assert [r.status for r in receiver.wait_for(4)] == [429, 429, 408, 200]
    assert receiver.unique_keys() == [KEY]


def test_retry_after_as_an_http_date(receiver: WebhookReceiver, sleep: RecordingSleep) -> None:
    receiver.script(Fail(503, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"))
    moment = datetime(2026, 10, 21, 7, 27, 50, tzinfo=UTC).timestamp()

    with WebhookNotifier(sleep=sleep, clock=lambda: moment, attempts=2) as webhook:
        webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert sleep.calls == [10.0]
    assert len(receiver.wait_for(2)) == 2


def test_400_is_permanent_and_not_retried(
    receiver: WebhookReceiver, webhook: WebhookNotifier, sleep: RecordingSleep
) -> None:
    receiver.script(Fail(400))

    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(False, True, 1, "HTTP 400")
    assert len(receiver.wait_for(1)) == 1
    time.sleep(0.1)
    assert len(receiver.requests) == 1
    assert sleep.calls == []
    _assert_clean(outcome)


def test_server_errors_exhaust_the_attempts_as_transient(
    receiver: WebhookReceiver, webhook: WebhookNotifier, sleep: RecordingSleep
) -> None:
    receiver.script(Fail(500), Fail(502), Fail(503), Fail(504))

    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(False, False, 4, "HTTP 504 after 4 attempts")
    assert sleep.calls == [0.2, 1.0, 4.0]
    assert len(receiver.wait_for(4)) == 4
    _assert_clean(outcome)


def test_dropped_connection_is_retried(receiver: WebhookReceiver, webhook: WebhookNotifier) -> None:
    receiver.script(DROP)

    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome.delivered
    assert outcome.attempts == 2
    assert [r.status for r in receiver.wait_for(2)] == [None, 200]


def test_connection_refused_is_not_delivered_and_not_permanent(
    webhook: WebhookNotifier, sleep: RecordingSleep
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/vigil?token=s3cr3t-in-url"

    outcome = webhook.send(_recipient(url), NOTIFICATION)

    assert outcome == DeliveryOutcome(False, False, 4, "ConnectError after 4 attempts")
    assert len(sleep.calls) == 3
    _assert_clean(outcome)
    assert "s3cr3t-in-url" not in outcome.detail


def test_read_timeout_is_transient(receiver: WebhookReceiver, sleep: RecordingSleep) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(slow)) as client,
        WebhookNotifier(client=client, attempts=2, sleep=sleep) as webhook,
    ):
        outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)

    assert outcome == DeliveryOutcome(False, False, 2, "ReadTimeout after 2 attempts")


@pytest.mark.parametrize(
    ("recipient", "detail"),
    [
        (_recipient("http://127.0.0.1:9/x", secret=None), "no webhook secret configured"),
        (_recipient("ftp://127.0.0.1/x"), "address is not an http(s) URL"),
        (_recipient("not a url"), "address is not an http(s) URL"),
    ],
    ids=["no secret", "ftp", "not a url"],
)
def test_misconfigured_webhook_is_permanent_without_a_request(
    webhook: WebhookNotifier, recipient: Recipient, detail: str
) -> None:
    assert webhook.send(recipient, NOTIFICATION) == DeliveryOutcome(False, True, 0, detail)


def test_redirects_are_not_followed(receiver: WebhookReceiver, webhook: WebhookNotifier) -> None:
    receiver.script(Fail(307))
    outcome = webhook.send(_recipient(receiver.url), NOTIFICATION)
    assert outcome == DeliveryOutcome(False, True, 1, "HTTP 307")


def test_each_attempt_is_signed_afresh(receiver: WebhookReceiver, sleep: RecordingSleep) -> None:
    # A long backoff must not leave the retry outside the receiver's replay window.
    readings = [time.time() - 200]

    def clock() -> float:  # 200 s ago for the first attempt, now for everything after
        return readings.pop() if readings else time.time()

    receiver.script(Fail(503))
    with WebhookNotifier(sleep=sleep, clock=clock) as webhook:
        assert webhook.send(_recipient(receiver.url), NOTIFICATION).delivered
    first, second = receiver.wait_for(2)
    assert first.headers["x-vigil-signature"] != second.headers["x-vigil-signature"]
    assert int(second.headers["x-vigil-timestamp"]) > int(first.headers["x-vigil-timestamp"])


# ---------------------------------------------------------------------------- memory twin


def test_memory_notifier_records_and_fails_on_request() -> None:
    notifier = MemoryNotifier()
    recipient = Recipient(channel="memory", address="joc", unit_code="JOC")
    notifier.fail(2)

    outcomes = [notifier.send(recipient, NOTIFICATION) for _ in range(3)]

    assert [o.delivered for o in outcomes] == [False, False, True]
    assert not any(o.permanent for o in outcomes)
    assert notifier.sent == [(recipient, NOTIFICATION)]
    assert notifier.calls == 3
    notifier.fail(1, permanent=True)
    assert notifier.send(recipient, NOTIFICATION).permanent
    assert notifier.keys() == [KEY]


# ---------------------------------------------------------------------------- e-mail


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def _email(sink: SmtpSink, sleep: RecordingSleep, **options: object) -> EmailNotifier:
    return EmailNotifier(
        host=sink.host,
        port=sink.port,
        sender="vigil@minusca.example",
        timeout_s=5.0,
        sleep=sleep,
        **options,  # type: ignore[arg-type]
    )


MAILBOX = Recipient(channel="email", address="ops@banbatt2.example", unit_code="BANBATT-2")
EXPECTED_ID = f"<{hashlib.sha256(KEY.encode()).hexdigest()[:32]}@vigil>"


def test_email_arrives_with_cap_attachment_and_stable_message_id(
    sink: SmtpSink, sleep: RecordingSleep
) -> None:
    outcome = _email(sink, sleep).send(MAILBOX, NOTIFICATION)

    assert outcome == DeliveryOutcome(True, False, 1, "SMTP accepted")
    [message] = sink.wait_for(1)
    assert sink.envelopes == [("vigil@minusca.example", ["ops@banbatt2.example"])]
    assert message["Subject"] == NOTIFICATION.subject
    assert message["From"] == "vigil@minusca.example"
    assert message["To"] == "ops@banbatt2.example"
    assert message["Date"] is not None
    assert message["Message-ID"] == EXPECTED_ID
    assert message["X-Vigil-Idempotency-Key"] == KEY
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().strip() == NOTIFICATION.text
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/cap+xml"
    assert attachment.get_filename() == "vigil-alert-42.xml"
    document = attachment.get_content()
    assert isinstance(document, bytes)  # non-text MIME types come back as bytes
    assert parse(document) == CAP_MESSAGE


def test_sending_twice_gives_the_same_message_id(sink: SmtpSink, sleep: RecordingSleep) -> None:
    notifier = _email(sink, sleep)
    assert notifier.send(MAILBOX, NOTIFICATION).delivered
    assert notifier.send(MAILBOX, NOTIFICATION).delivered

    first, second = sink.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"] == EXPECTED_ID
    other = Notification(**{**NOTIFICATION.__dict__, "idempotency_key": "alert-43:x:Alert"})
    assert notifier.build(MAILBOX, other)["Message-ID"] != EXPECTED_ID


def test_email_4xx_is_retried(sink: SmtpSink, sleep: RecordingSleep) -> None:
    sink.fail_data(1)

    outcome = _email(sink, sleep).send(MAILBOX, NOTIFICATION)

    assert outcome == DeliveryOutcome(True, False, 2, "SMTP accepted")
    assert sleep.calls == [0.5]
    assert len(sink.wait_for(1)) == 1


def test_email_recipient_refused_is_permanent(sink: SmtpSink, sleep: RecordingSleep) -> None:
    sink.refuse(MAILBOX.address)

    outcome = _email(sink, sleep).send(MAILBOX, NOTIFICATION)

    assert outcome == DeliveryOutcome(False, True, 1, "SMTP 550 recipient refused")
    assert sleep.calls == []
    assert sink.messages == []


def test_email_recipient_deferred_exhausts_as_transient(
    sink: SmtpSink, sleep: RecordingSleep
) -> None:
    sink.refuse(MAILBOX.address, "450 4.2.1 mailbox busy")

    outcome = _email(sink, sleep).send(MAILBOX, NOTIFICATION)

    assert outcome == DeliveryOutcome(
        False, False, 3, "SMTP 450 recipient refused after 3 attempts"
    )
    assert sleep.calls == [0.5, 2.0]


def test_email_server_down_is_transient(sleep: RecordingSleep) -> None:
    notifier = EmailNotifier(
        host="127.0.0.1", port=free_port(), sender="vigil@example.org", password="pw", sleep=sleep
    )

    outcome = notifier.send(MAILBOX, NOTIFICATION)

    assert outcome == DeliveryOutcome(False, False, 3, "ConnectionRefusedError after 3 attempts")
    assert "pw" not in outcome.detail


@pytest.mark.parametrize(
    "address", ["not-an-address", "ops@banbatt2.example\r\nBcc: all@x", "@x", "a b@x"]
)
def test_bad_email_address_is_permanent(
    sink: SmtpSink, sleep: RecordingSleep, address: str
) -> None:
    recipient = Recipient(channel="email", address=address, unit_code="X")
    outcome = _email(sink, sleep).send(recipient, NOTIFICATION)
    assert outcome == DeliveryOutcome(False, True, 0, "not an e-mail address")


def test_header_injection_in_subject_is_permanent(sink: SmtpSink, sleep: RecordingSleep) -> None:
    bad = Notification(**{**NOTIFICATION.__dict__, "subject": "hi\r\nBcc: all@example.org"})
    outcome = _email(sink, sleep).send(MAILBOX, bad)
    assert not outcome.delivered
    assert outcome.permanent
    assert sink.messages == []
