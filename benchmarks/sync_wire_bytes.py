"""Benchmark bytes on the wire for a minimal report op: one ``POST /sync/v1/push`` of one create.

The server as deployed (``vigil serve`` in a subprocess, own database ``vigil_bench_wire`` with
the test mission) is reached through a byte-counting TCP relay on 127.0.0.1, so every count of
the HTTP request and response is what actually crossed the socket: request line and headers as
httpx sends them (its defaults included), the body, the status line and headers the server sends
back, and the response body. The op is the smallest valid create (category, occurred_at,
location; everything else at its default) in a batch of one, compact JSON, from a provisioned
device with the headers every sync request carries. It must come back ``applied``.

The raw exchange asks for ``Accept-Encoding: identity``. A second exchange of the same shape
(a new op and batch) goes as the reference client sends it now (``mobile_sync.client``: hello
lists ``gzip`` in ``request_encodings``, so the body is gzipped by ``gzip_body`` with
``Content-Encoding: gzip``, and ``Accept-Encoding: gzip`` asks for a gzip answer), and is
measured on the socket the same way. Other codings are computed on the measured raw bodies
(gzip from the standard library at levels 6 and 9, zlib deflate, deflate with a preset
dictionary of the protocol's field names, and zstd or brotli when installed): the measured raw
headers plus ``Content-Encoding`` plus the compressed body. Then the same for a batch of 100
minimal ops and 100 varied ops (per-op amortised bytes, raw and as sent, measured). The in-run
baseline is the report payload itself (its canonical JSON): each row prints its size relative
to it. Target (issue): the minimal op's full request ≤ 1 KB compressed, as sent; printed
MET/MISSED; asserts nothing. Not counted: TCP/IP headers
(≈ 52 B a segment), TLS (22 B a record, plus the handshake on a new connection).

    .venv/bin/python benchmarks/sync_wire_bytes.py [--pg-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import random
import shutil
import socket
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sync_common as common
from sqlalchemy.engine import make_url

from mobile_sync.client.transport import GZIP_MIN_BYTES, gzip_body
from mobile_sync.protocol.models import canonical_json

TARGET_BYTES = 1024
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/vigil_bench_wire"
#: A preset dictionary both ends would ship with: the protocol's keys and common values.
DICTIONARY = (
    b'{"batch_id":"","device_id":"","device_time_ms":,"device_uptime_ms":,"boot_id":"",'
    b'"client_version":"1.0.0","ops":[{"op_id":"","device_id":"","device_seq":,"report_id":"",'
    b'"kind":"create","base_version":0,"schema_version":1,"device_time_ms":,'
    b'"device_uptime_ms":,"boot_id":"","payload":{"category":"killing_of_civilians",'
    b'"occurred_at":"2026-11-25T00:00:00Z","location":{"type":"Point","coordinates":[20.,5.]}},'
    b'"payload_sha256":""}]}'
    b'{"batch_id":"","results":[{"op_id":"","device_seq":,"status":"applied","report_id":"",'
    b'"version":1,"seq":,"server_received_at":"2026-11-25T00:00:00.000Z","quarantined":false,'
    b'"error":null,"expected_device_seq":null}],"server_time_ms":}'
)


class CountingRelay:
    """A TCP relay that counts the bytes passing each way (application bytes, exactly)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sent = 0  # client → server
        self.received = 0  # server → client
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(65536):
                with self.lock:  # counted before it is forwarded: a reply implies it is counted
                    if upward:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.sent, self.received

    def close(self) -> None:
        self.listener.close()


@dataclass
class Exchange:
    request: int  # bytes on the socket, client → server
    response: int  # bytes on the socket, server → client
    request_body: bytes  # as sent (gzipped if it was)
    response_body: bytes  # decoded
    response_wire: int  # the response body's bytes as they crossed (compressed if it was)
    response_headers: httpx.Headers
    sent_headers: httpx.Headers

    @property
    def request_headers(self) -> int:
        return self.request - len(self.request_body)

    @property
    def response_head(self) -> int:
        return self.response - self.response_wire


def exchange(
    relay: CountingRelay, http: httpx.Client, body: bytes, headers: dict[str, str]
) -> Exchange:
    sent, received = relay.counts()
    response = http.post(f"{common.SYNC}/push", content=body, headers=headers)
    sent_after, received_after = relay.counts()
    if response.status_code != 200:
        raise RuntimeError(f"push answered {response.status_code}: {response.text[:300]}")
    return Exchange(
        sent_after - sent,
        received_after - received,
        body,
        response.content,
        response.num_bytes_downloaded,
        response.headers,
        response.request.headers,
    )


def raw_exchange(
    relay: CountingRelay, http: httpx.Client, body: bytes, headers: dict[str, str]
) -> Exchange:
    """Uncompressed both ways."""
    return exchange(relay, http, body, {**headers, "Accept-Encoding": "identity"})


def client_exchange(
    relay: CountingRelay, http: httpx.Client, body: bytes, headers: dict[str, str]
) -> Exchange:
    """As the reference client sends it to a server whose hello lists gzip (sync.py)."""
    coded = {**headers, "Accept-Encoding": "gzip"}
    if len(body) >= GZIP_MIN_BYTES:
        body, coded = gzip_body(body), {**coded, "Content-Encoding": "gzip"}
    ex = exchange(relay, http, body, coded)
    if ex.response_headers.get("content-encoding") != "gzip" and len(ex.response_body) >= 256:
        raise RuntimeError("the server did not gzip its answer")
    return ex


def compressors() -> dict[str, Callable[[bytes], bytes]]:
    """Name → compress function, for what is installed (the standard library at least)."""
    out: dict[str, Callable[[bytes], bytes]] = {
        "gzip-6": lambda b: gzip.compress(b, 6, mtime=0),
        "gzip-9": lambda b: gzip.compress(b, 9, mtime=0),
        "deflate": lambda b: zlib.compress(b, 9),
    }

    def with_dictionary(data: bytes) -> bytes:
        packer = zlib.compressobj(9, zdict=DICTIONARY)
        return packer.compress(data) + packer.flush()

    out["deflate+dict*"] = with_dictionary
    try:
        import zstandard

        out["zstd-19"] = zstandard.ZstdCompressor(level=19).compress
    except ImportError:
        pass
    try:
        import brotli

        out["brotli-11"] = lambda b: brotli.compress(b, quality=11)
    except ImportError:
        pass
    return out


def content_length_delta(raw_length: int, new_length: int) -> int:
    return len(str(new_length)) - len(str(raw_length))


def compressed_request(ex: Exchange, body: bytes, name: str) -> int:
    """Full request bytes with a compressed body: measured headers, a shorter Content-Length,
    plus ``Content-Encoding: <coding>`` (the coding's registered name)."""
    coding = {"gzip": "gzip", "deflate": "deflate", "zstd": "zstd", "brotli": "br"}
    token = coding.get(name.split("-")[0].split("+")[0], "deflate")
    return (
        ex.request_headers
        + len(f"content-encoding: {token}\r\n")
        + content_length_delta(len(ex.request_body), len(body))
        + len(body)
    )


def compressed_response(ex: Exchange, body: bytes, name: str) -> int:
    coding = {"gzip": "gzip", "deflate": "deflate", "zstd": "zstd", "brotli": "br"}
    token = coding.get(name.split("-")[0].split("+")[0], "deflate")
    return (
        ex.response_head
        + len(f"content-encoding: {token}\r\n")
        + content_length_delta(len(ex.response_body), len(body))
        + len(body)
    )


def print_table(rows: list[tuple[str, list[int]]], names: list[str], baseline: int) -> None:
    width = max(len(r[0]) for r in rows)
    head = "".join(f"{n:>14}" for n in ["raw", *names])
    print(f"  {'bytes (× the raw report payload)':<{width}}{head}")
    for label, values in rows:
        cells = "".join(f"{v:>7,} ({v / baseline:3.1f}×)" if v else f"{'—':>14}" for v in values)
        print(f"  {label:<{width}}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=DEFAULT_URL, help="created and dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database and data dir")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-wire-"))
    common.recreate_postgres(args.pg_url)
    try:
        settings = common.load_settings(args.pg_url, work)
        common.prepare_database(settings)
        with common.running_server(args.pg_url, work) as server:
            run(server)
    finally:
        if not args.keep:
            common.drop_postgres(args.pg_url)
            shutil.rmtree(work, ignore_errors=True)
            print(f"\ndropped database {make_url(args.pg_url).database} and {work}")


def run(server: common.ServerProcess) -> None:
    direct = httpx.Client(base_url=server.base_url, timeout=60)
    device_id, token = common.provision_device(direct)
    device = common.Device(device_id, token)
    relay = CountingRelay((server.host, server.port))
    http = httpx.Client(base_url=f"http://127.0.0.1:{relay.port}", timeout=60)
    hello = http.get(f"{common.SYNC}/hello", headers=device.headers())
    hello.raise_for_status()
    packers = compressors()
    names = list(packers)
    print(f"Python {sys.version.split()[0]}, httpx {httpx.__version__}; HTTP/1.1, plaintext")
    print(f"compressors: {', '.join(names)} (* = preset dictionary both ends would ship)")
    missing = [m for m in ("zstandard", "brotli") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"not installed, so not measured: {', '.join(missing)}")

    # ------------------------------------------------------------------ one minimal op
    body = common.minimal_body()
    payload = {k: v for k, v in body.items() if k != "id"}
    op = device.create_op(body)
    raw_body, headers = common.push_request(device, device.batch([op]))
    one = raw_exchange(relay, http, raw_body, headers)
    result = httpx.Response(200, content=one.response_body).json()["results"][0]
    assert result["status"] == "applied", result
    assert not result.get("quarantined"), result
    canonical = canonical_json(payload)
    baseline = len(canonical)

    def packed(data: bytes) -> list[int]:
        return [len(packers[n](data)) for n in names]

    request_bodies = [packers[n](one.request_body) for n in names]
    response_bodies = [packers[n](one.response_body) for n in names]
    full_request = [
        compressed_request(one, b, n) for b, n in zip(request_bodies, names, strict=True)
    ]
    full_response = [
        compressed_response(one, b, n) for b, n in zip(response_bodies, names, strict=True)
    ]
    op_bytes = canonical_json(op)
    print("\nminimal create op (category, occurred_at, location) in a push batch of one")
    print(f"  payload: {canonical.decode()}")
    rows = [
        (
            "report payload (canonical JSON) = baseline",
            [baseline, *packed(canonical_json(payload))],
        ),
        ("op (canonical JSON)", [len(op_bytes), *packed(op_bytes)]),
        ("push body (batch envelope + op)", [len(one.request_body), *packed(one.request_body)]),
        ("HTTP request line + headers (measured)", [one.request_headers] + [0] * len(names)),
        ("full HTTP request (measured raw)", [one.request, *full_request]),
        ("HTTP response status + headers (measured)", [one.response_head] + [0] * len(names)),
        ("HTTP response body", [len(one.response_body), *[len(b) for b in response_bodies]]),
        ("full HTTP response (measured raw)", [one.response, *full_response]),
        (
            "request + response",
            [one.request + one.response]
            + [a + b for a, b in zip(full_request, full_response, strict=True)],
        ),
    ]
    print_table(rows, names, baseline)

    # ------------------------------------------------------------------ as the client sends it
    twin = device.create_op(common.minimal_body())  # the same shape, new ids: applies too
    twin_body, twin_headers = common.push_request(device, device.batch([twin]))
    sent = client_exchange(relay, http, twin_body, twin_headers)
    result = httpx.Response(200, content=sent.response_body).json()["results"][0]
    assert result["status"] == "applied", result
    print(
        f"\n  as the reference client sends it now (measured on the socket; "
        f"push body {len(twin_body):,} B → {len(sent.request_body):,} B gzip, "
        f"answer body {len(sent.response_body):,} B → {sent.response_wire:,} B "
        f"{sent.response_headers.get('content-encoding', 'identity')}):"
    )
    print(
        f"    full request {sent.request:,} B ({sent.request / baseline:.1f}× payload; raw "
        f"{one.request:,} B), full response {sent.response:,} B (raw {one.response:,} B), "
        f"request + response {sent.request + sent.response:,} B "
        f"(raw {one.request + one.response:,} B)"
    )
    best_name, best = min(zip(names, full_request, strict=True), key=lambda x: x[1])
    print(
        f"  target: full request ≤ {TARGET_BYTES:,} B compressed: as sent (gzip-6) "
        f"{sent.request:,} B {common.met(sent.request <= TARGET_BYTES)}; best computed "
        f"({best_name}) {best:,} B {common.met(best <= TARGET_BYTES)}; uncompressed "
        f"{one.request:,} B {common.met(one.request <= TARGET_BYTES)}"
    )
    print("  header lines (name: bytes incl. CRLF), raw request and response, then as sent:")
    for title, headers_seen in (
        ("request", one.sent_headers),
        ("response", one.response_headers),
        ("request as sent", sent.sent_headers),
        ("response as sent", sent.response_headers),
    ):
        lines = [f"{k}: {len(k) + len(v) + 4}" for k, v in headers_seen.items()]
        print(f"    {title}: " + ", ".join(lines))

    # ------------------------------------------------------------------ batches of 100
    print("\nbatch of 100 ops: per-op amortised bytes (full HTTP request / response ÷ 100)")

    def minimal() -> list[dict[str, Any]]:
        rng = random.Random(7)
        return [device.create_op(common.minimal_body(rng)) for _ in range(100)]

    def varied() -> list[dict[str, Any]]:
        return [device.create_op(b) for b in common.report_bodies(100, seed=11)]

    width = 34
    head = "".join(f"{n:>14}" for n in ["raw", "as sent", *names])
    print(f"  {'bytes per op':<{width}}{head}")
    print("  (minimal ops: points anywhere in the AOR, times over a week: no two payloads alike)")
    for label, make in (("minimal ops", minimal), ("varied ops (push benchmark's)", varied)):
        ops = make()
        batch_body, batch_headers = common.push_request(device, device.batch(ops))
        ex = raw_exchange(relay, http, batch_body, batch_headers)
        results = httpx.Response(200, content=ex.response_body).json()["results"]
        assert all(r["status"] == "applied" and not r.get("quarantined") for r in results)
        # The same reports under new ids (op, report), as the client sends them: applied too.
        again_body, again_headers = common.push_request(device, device.batch(make()))
        as_sent = client_exchange(relay, http, again_body, again_headers)
        again = httpx.Response(200, content=as_sent.response_body).json()["results"]
        assert all(r["status"] == "applied" and not r.get("quarantined") for r in again)
        request_row = [ex.request, as_sent.request] + [
            compressed_request(ex, packers[n](ex.request_body), n) for n in names
        ]
        response_row = [ex.response, as_sent.response] + [
            compressed_response(ex, packers[n](ex.response_body), n) for n in names
        ]
        payload_bytes = sum(len(canonical_json(o["payload"])) for o in ops)
        print(f"  {label}: payloads {payload_bytes / 100:,.0f} B/op (canonical JSON)")
        for what, row in (("  request", request_row), ("  response", response_row)):
            cells = "".join(f"{v / 100:>14,.0f}" for v in row)
            print(f"  {what:<{width}}{cells}")
        both = [a + b for a, b in zip(request_row, response_row, strict=True)]
        cells = "".join(f"{v / 100:>14,.0f}" for v in both)
        print(f"  {'  request + response':<{width}}{cells}")
    http.close()
    direct.close()
    relay.close()


if __name__ == "__main__":
    main()
