"""Test kit for the reference field client (no tests here): a fault-injecting httpx transport
around the in-process app, a controllable device clock, and a signed-in client factory.

The server is never mocked: every request that is not faulted reaches the real app on the test's
database. Faults are the ones SYNC.md §5.1 lists (lost responses, captive portal, 5xx/429,
damaged chunks, …), each consumed once unless told otherwise.
"""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobile_sync.client import FieldClient
from server.reports.models import Report
from server.sync.models import SyncOp
from tests.api._builders import report_body
from tests.seed import PASSWORD

BASE = "http://testserver"

Fault = Callable[[httpx.Request, httpx.BaseTransport], httpx.Response]


@dataclass
class Sent:
    method: str
    path: str
    headers: httpx.Headers
    #: The body as the server reads it: decoded if it was sent gzipped (``wire`` as sent).
    content: bytes
    wire: bytes = b""


@dataclass
class _Armed:
    method: str
    path_prefix: str
    fault: Fault
    times: int
    skip: int


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the app unless an armed fault matches; logs every request it sees."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.armed: list[_Armed] = []
        self.sent: list[Sent] = []

    def arm(
        self, method: str, path_prefix: str, fault: Fault, *, times: int = 1, skip: int = 0
    ) -> None:
        """Apply ``fault`` to the next ``times`` matching requests, after letting ``skip``
        matching ones through."""
        self.armed.append(_Armed(method, path_prefix, fault, times, skip))

    def disarm(self) -> None:
        self.armed.clear()

    def requests(self, method: str, path_prefix: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method and s.path.startswith(path_prefix)]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        wire = bytes(request.content)
        coded = request.headers.get("Content-Encoding", "").lower() == "gzip"
        content = gzip.decompress(wire) if coded else wire
        self.sent.append(Sent(request.method, request.url.path, request.headers, content, wire))
        for armed in self.armed:
            if armed.times <= 0 or request.method != armed.method:
                continue
            if not request.url.path.startswith(armed.path_prefix):
                continue
            if armed.skip > 0:
                armed.skip -= 1
                continue
            armed.times -= 1
            return armed.fault(request, self.inner)
        return self.inner.handle_request(request)


# ---------------------------------------------------------------------------- faults


def lose_response(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    """The server commits, the answer never arrives (the ambiguous ack)."""
    response = inner.handle_request(request)
    response.read()
    raise httpx.ReadTimeout("response lost on the way back", request=request)


def drop_request(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    raise httpx.ConnectError("no route to host", request=request)


def time_out_unsent(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    raise httpx.WriteTimeout("the link stalled mid-request", request=request)


def captive_portal(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"Content-Type": "text/html; charset=utf-8"},
        content=b"<html><body>Welcome to CampNet. Log in to continue.</body></html>",
        request=request,
    )


def answer(status: int, *, headers: dict[str, str] | None = None, code: str = "x") -> Fault:
    """A synthetic answer *from Vigil* (it carries the protocol header), server not reached."""

    def fault(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        return httpx.Response(
            status,
            headers={"X-Sync-Protocol": "1", **(headers or {})},
            json={"code": code, "message": f"synthetic {status}", "errors": []},
            request=request,
        )

    return fault


def rewrite_json(change: Callable[[Any], Any]) -> Fault:
    """Forward, then alter the JSON body of the answer (a confused proxy, a wrong batch)."""

    def fault(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        response = inner.handle_request(request)
        response.read()
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-encoding")  # rewritten plain
        }
        return httpx.Response(
            response.status_code, headers=headers, json=change(response.json()), request=request
        )

    return fault


def corrupt_body(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
    """Flip one byte of the body (a damaged chunk); its Upload-Checksum stays as sent."""
    damaged = bytearray(request.content)
    damaged[len(damaged) // 2] ^= 0xFF
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    forged = httpx.Request(request.method, request.url, headers=headers, content=bytes(damaged))
    return inner.handle_request(forged)


def before(action: Callable[[], None]) -> Fault:
    """Run ``action`` (e.g. change the server's database), then forward the request."""

    def fault(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        action()
        return inner.handle_request(request)

    return fault


# ---------------------------------------------------------------------------- clock


@dataclass
class FakeClock:
    """A device clock off the real one by ``skew_ms`` (it still ticks, so round trips measure
    as positive); uptime counts from a made-up boot."""

    skew_ms: int = 0
    boot: uuid.UUID | None = None
    started_ns: int = field(default_factory=time.monotonic_ns)

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms

    def uptime_ms(self) -> int:
        return 5_000_000 + (time.monotonic_ns() - self.started_ns) // 1_000_000

    def system_boot_id(self) -> uuid.UUID | None:
        return self.boot


# ---------------------------------------------------------------------------- devices


def username(api: Any, who: str) -> str:
    return str(api.mission.users[who].username)


@dataclass
class Device:
    """A field client on a store file, talking to the in-process app through ``faults``."""

    client: FieldClient
    faults: FaultyTransport
    sleeps: list[float] = field(default_factory=list)

    def reopen(self, **kwargs: Any) -> Device:
        """A fresh client object on the same store file (what a restarted app does)."""
        path = self.client.store.path
        self.client.close()
        return open_device_at(path, self.faults, self.sleeps, **kwargs)


def open_device_at(
    path: Path, faults: FaultyTransport, sleeps: list[float], **kwargs: Any
) -> Device:
    http = httpx.Client(transport=faults, base_url=BASE)
    kwargs.setdefault("clock", FakeClock())
    kwargs.setdefault("random", lambda: 0.5)
    client = FieldClient(path, http=http, sleep=sleeps.append, **kwargs)
    return Device(client, faults, sleeps)


def signed_in(api: Any, store: Path, who: str = "officer_a", **kwargs: Any) -> Device:
    faults = FaultyTransport(api.http._transport)
    device = open_device_at(store, faults, [], **kwargs)
    device.client.sign_in(BASE, username(api, who), PASSWORD)
    return device


def report_fields(**overrides: Any) -> dict[str, Any]:
    body = report_body(**overrides)
    body.pop("id")
    return body


# ---------------------------------------------------------------------------- server state


def server_reports(session: Session, report_id: uuid.UUID | str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Report).where(Report.id == uuid.UUID(str(report_id)))
        )
        or 0
    )


def server_ops(session: Session, op_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(SyncOp).where(SyncOp.op_id == uuid.UUID(op_id))
        )
        or 0
    )
