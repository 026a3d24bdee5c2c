"""The sync middleware's admission control: beyond the limit, requests wait without a thread,
and past the wait they get 503 + Retry-After with the protocol header (so the device knows the
answer came from Vigil and backs off), never a hang or a 500."""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.middleware import SyncProtocolMiddleware


def _app(release: threading.Event, entered: threading.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/sync/v1/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return {"ok": "yes"}

    @app.get("/api/v1/other")
    async def other() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(
        SyncProtocolMiddleware, protocol_version=1, max_concurrent=1, admission_wait_s=0.2
    )
    return app


def test_requests_beyond_the_limit_get_503_with_retry_after() -> None:
    release, entered = threading.Event(), threading.Event()
    with TestClient(_app(release, entered)) as client:
        first: list[int] = []
        holder = threading.Thread(
            target=lambda: first.append(client.get("/sync/v1/slow").status_code)
        )
        holder.start()
        assert entered.wait(5)
        busy = client.get("/sync/v1/slow")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "5"
        assert busy.headers["X-Sync-Protocol"] == "1"
        assert busy.json()["code"] == "server_busy"
        assert client.get("/api/v1/other").status_code == 200  # REST is not held back
        release.set()
        holder.join(5)
        assert first == [200]
        assert client.get("/sync/v1/slow").status_code == 200  # the slot was given back
