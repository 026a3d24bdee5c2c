"""``vigil serve --workers N`` shares one listening socket between uvicorn processes; the
connections it accepts must get TCP_NODELAY, as single-process serving does. Without it every
keep-alive request after the first waits ~40 ms for the client's delayed ACK (uvicorn #3149)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from server.cli import tcp_listener


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY on the socket asyncio accepts from ``listener`` (as uvicorn serves it)."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(accepted, timeout=10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def _config() -> uvicorn.Config:
    return uvicorn.Config("server.app:app_from_environment", host="127.0.0.1", port=0)


def test_the_shared_listener_gives_accepted_connections_tcp_nodelay() -> None:
    listener = tcp_listener(_config())
    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(_nodelay_of_accepted(listener)) == 1


def test_uvicorns_own_shared_listener_does_not_which_is_why_vigil_makes_its_own() -> None:
    # The control: if uvicorn fixes bind_socket, this fails and tcp_listener can go.
    listener = _config().bind_socket()
    if listener.proto == socket.IPPROTO_TCP:
        pytest.fail("uvicorn now binds with IPPROTO_TCP (issue #3149 fixed): drop tcp_listener")
    assert asyncio.run(_nodelay_of_accepted(listener)) == 0
