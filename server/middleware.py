"""ASGI middleware: request ids and access logs, and the request-body size limit."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import FieldError, error_body, unexpected_error_response

__all__ = [
    "BodySizeLimitMiddleware",
    "RequestContextMiddleware",
    "SyncProtocolMiddleware",
    "UnexpectedErrorMiddleware",
]

log = logging.getLogger("vigil.http")


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-Id``) and logs one structured line for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    # The route template, never the raw path: ids in paths stay out of logs.
                    "route": route_template(scope),
                    "status": status_holder.get("status", 500),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": scope.get("state", {}).get("user_id"),
                },
            )


class SyncProtocolMiddleware:
    """Stamps every ``/sync/`` response, errors included, with ``X-Sync-Protocol`` and the
    server clock: when the request arrived (``X-Server-Received-Ms``) and when the answer left
    (``X-Server-Time-Ms``). A device treats an answer without the protocol header (a captive
    portal's 200 page) as no answer at all, and uses the two stamps for its clock offset.

    It also admits at most ``max_concurrent`` sync requests at once; the rest wait here, on the
    event loop, holding no thread and no connection, and after ``admission_wait_s`` get 503 with
    Retry-After (the device backs off and resends unchanged). Without it a burst of devices
    starves the thread pool: requests holding a row lock cannot get the thread they need to
    commit it while every thread waits on that lock.
    """

    def __init__(
        self,
        app: ASGIApp,
        protocol_version: int,
        max_concurrent: int = 8,
        admission_wait_s: float = 20.0,
    ) -> None:
        self.app = app
        self.protocol = str(protocol_version).encode()
        self.admission = asyncio.Semaphore(max_concurrent)
        self.admission_wait_s = admission_wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/sync/"):
            await self.app(scope, receive, send)
            return
        received_ms = str(time.time_ns() // 1_000_000).encode()

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-sync-protocol", self.protocol),
                    (b"x-server-received-ms", received_ms),
                    (b"x-server-time-ms", str(time.time_ns() // 1_000_000).encode()),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        try:
            await asyncio.wait_for(self.admission.acquire(), timeout=self.admission_wait_s)
        except TimeoutError:
            request_id = scope.get("state", {}).get("request_id")
            busy = JSONResponse(
                error_body(
                    "server_busy",
                    "The server is busy with other devices. Nothing was lost: your app will "
                    "send again shortly.",
                    request_id=request_id,
                ),
                status_code=503,
                headers={"Retry-After": "5"},
            )
            await busy(scope, receive, send_stamped)
            return
        try:
            await self.app(scope, receive, send_stamped)
        finally:
            self.admission.release()


def route_template(scope: Scope) -> str:
    """The matched route as a template with its mount prefix (``/api/v1/reports/{report_id}``).

    Routers included with a prefix match on the path's tail, so the route alone knows only
    ``/reports/{report_id}``: the prefix is whatever precedes the rendered tail.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not template:
        return "unmatched"
    path = scope.get("path", "")
    try:
        tail = template.format(**{k: str(v) for k, v in scope.get("path_params", {}).items()})
    except (KeyError, IndexError, ValueError):
        return str(template)
    return path[: len(path) - len(tail)] + template if path.endswith(tail) else str(template)


class BodySizeLimitMiddleware:
    """Refuses bodies above ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(
        self, scope: Scope, send: Send, *, status: int, code: str, message: str
    ) -> None:
        body = json.dumps(
            error_body(
                code,
                message,
                (FieldError("body", message),),
                scope.get("state", {}).get("request_id"),
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(
                        scope,
                        send,
                        status=400,
                        code="bad_request",
                        message="the Content-Length header is not a number",
                    )
                    return
                if declared > self.max_bytes:
                    await self._reject(
                        scope,
                        send,
                        status=413,
                        code="payload_too_large",
                        message=_too_large_message(self.max_bytes),
                    )
                    return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing unchanged and is
                    # answered by the one error mapping in server.errors.
                    raise HTTPException(413, detail=_too_large_message(limit))
            return message

        await self.app(scope, limited_receive, send)


def _too_large_message(limit: int) -> str:
    return (
        f"The request body is larger than {limit} bytes. Send fewer items per request, or "
        "attachments through the upload endpoint."
    )


class UnexpectedErrorMiddleware:
    """Answers any exception the error mapping did not handle with a generic 500 and a
    sanitised log line, and stops it there: re-raised, the server would log the full traceback
    and message, which may carry a narrative or SQL parameters (SECURITY.md rule 10)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            request_id = scope.get("state", {}).get("request_id")
            response = unexpected_error_response(exc, request_id)
            if not started:
                await response(scope, receive, send)
