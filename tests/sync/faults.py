"""A fault-injecting httpx transport between the reference client and the in-process server
(SYNC.md §5.1), driven by a seeded random schedule so a failing run can be replayed.

Faults, each decided per request:

- ``drop_request``: the server never sees it; the client gets a connection error.
- ``drop_response``: the server handles it (and commits), the answer is lost: the ambiguous
  ack that makes idempotency necessary.
- ``timeout``: as ``drop_response``, reported as a read timeout (the server was slow).
- ``duplicate``: delivered twice (a proxy's retry); the client sees the second answer.
- ``reorder``: a push is held back (the client sees a timeout) and delivered only after the
  next request has gone through: batch k arrives after batch k+1.
- ``truncate``: an upload chunk arrives cut short (the server answers 460); any other request
  dies mid-body (connection error, the server sees nothing).
- ``captive_portal``: a 200 text/html login page, never reaching the server.
- ``server_error``: a 502 from a proxy, never reaching the server.
- ``rate_limited``: 429 with Retry-After, never reaching the server.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import httpx


class Fault(StrEnum):
    NONE = "none"
    DROP_REQUEST = "drop_request"
    DROP_RESPONSE = "drop_response"
    TIMEOUT = "timeout"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    TRUNCATE = "truncate"
    CAPTIVE_PORTAL = "captive_portal"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"


FAULTS = [f for f in Fault if f is not Fault.NONE]

CAPTIVE_PAGE = b"<html><body><h1>Welcome to FreeWiFi</h1>Log in to continue.</body></html>"


def _copy(request: httpx.Request, body: bytes | None = None) -> httpx.Request:
    content = request.content if body is None else body
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return httpx.Request(request.method, request.url, headers=headers, content=content)


@dataclass
class FaultyTransport(httpx.BaseTransport):
    inner: httpx.BaseTransport
    rng: random.Random
    #: Probability that a request meets a fault (chosen uniformly from ``faults``).
    rate: float = 0.3
    faults: list[Fault] = field(default_factory=lambda: list(FAULTS))
    enabled: bool = True
    #: Only requests whose path contains one of these meet faults (all, by default).
    paths: tuple[str, ...] = ("/",)
    injected: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    _held: list[httpx.Request] = field(default_factory=list)

    def choose(self, request: httpx.Request) -> Fault:
        if not self.enabled or not any(p in request.url.path for p in self.paths):
            return Fault.NONE
        if self.rng.random() >= self.rate:
            return Fault.NONE
        fault = self.rng.choice(self.faults)
        if fault is Fault.REORDER and not request.url.path.endswith("/push"):
            return Fault.NONE
        return fault

    def _deliver(self, request: httpx.Request) -> httpx.Response:
        self.delivered += 1
        response = self.inner.handle_request(_copy(request))
        response.read()
        return response

    def release_held(self) -> None:
        """Deliver what ``reorder`` held back (also called when faults are switched off)."""
        held, self._held = self._held, []
        for request in held:
            self._deliver(request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        fault = self.choose(request)
        self.injected[fault.value] += 1
        try:
            return self._handle(request, fault)
        finally:
            if fault is not Fault.REORDER:
                self.release_held()  # batch k, held back, arrives after this one (k + 1)

    def _handle(self, request: httpx.Request, fault: Fault) -> httpx.Response:
        if fault is Fault.DROP_REQUEST:
            raise httpx.ConnectError("injected: request dropped", request=request)
        if fault is Fault.CAPTIVE_PORTAL:
            return httpx.Response(
                200, headers={"Content-Type": "text/html"}, content=CAPTIVE_PAGE, request=request
            )
        if fault is Fault.SERVER_ERROR:
            return httpx.Response(502, text="Bad Gateway", request=request)
        if fault is Fault.RATE_LIMITED:
            return httpx.Response(
                429, headers={"Retry-After": "2"}, text="Too Many Requests", request=request
            )
        if fault is Fault.REORDER:
            self._held.append(_copy(request))
            raise httpx.ReadTimeout("injected: held back", request=request)
        if fault is Fault.TRUNCATE:
            if request.method == "PATCH" and len(request.content) > 1:
                cut = request.content[: len(request.content) // 2]
                self.delivered += 1
                response = self.inner.handle_request(_copy(request, cut))
                response.read()
                return response
            raise httpx.RemoteProtocolError("injected: connection cut mid-body", request=request)
        response = self._deliver(request)
        if fault is Fault.DROP_RESPONSE:
            raise httpx.RemoteProtocolError("injected: response lost", request=request)
        if fault is Fault.TIMEOUT:
            raise httpx.ReadTimeout("injected: response too late", request=request)
        if fault is Fault.DUPLICATE:
            return self._deliver(request)
        return response
