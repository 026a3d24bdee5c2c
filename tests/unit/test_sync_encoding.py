"""The sync wire's content codings as pure helpers: which ``Content-Encoding`` a push may use,
gzip decoded under a hard cap in whatever pieces it arrives, and the client's gzip."""

from __future__ import annotations

import gzip
import os
import tracemalloc

import pytest

from mobile_sync.client.transport import GZIP_MIN_BYTES, gzip_body
from server.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedContentEncodingError,
)
from server.sync.encoding import RESPONSE_MIN_BYTES, CappedGunzip, request_coding

BODY = b'{"batch_id":"0192f3c1","ops":[' + b",".join([b'{"kind":"create"}'] * 300) + b"]}"


@pytest.mark.parametrize(
    ("header", "coding"),
    [(None, None), ("", None), ("identity", None), ("gzip", "gzip"), (" GZip ", "gzip"),
     ("x-gzip", "gzip"), ("identity, gzip", "gzip")],
)  # fmt: skip
def test_the_codings_a_push_may_use(header: str | None, coding: str | None) -> None:
    assert request_coding(header) == coding


@pytest.mark.parametrize("header", ["br", "deflate", "zstd", "gzip, gzip", "gzip, br", "*"])
def test_any_other_coding_is_refused_naming_gzip(header: str) -> None:
    with pytest.raises(UnsupportedContentEncodingError) as caught:
        request_coding(header)
    assert caught.value.status_code == 415
    assert caught.value.headers() == {"Accept-Encoding": "gzip"}


def _decode(pieces: list[bytes], limit: int) -> bytes:
    decoder = CappedGunzip(limit)
    for piece in pieces:
        decoder.feed(piece)
    return decoder.finish()


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20], ids=lambda n: f"{n}B-pieces")
def test_gzip_decodes_the_same_in_any_pieces(piece: int) -> None:
    packed = gzip.compress(BODY)
    pieces = [packed[i : i + piece] for i in range(0, len(packed), piece)]
    assert _decode(pieces, limit=len(BODY)) == BODY


def test_members_one_after_another_are_one_body() -> None:
    half = len(BODY) // 2
    packed = gzip.compress(BODY[:half]) + gzip.compress(BODY[half:])
    assert _decode([packed], limit=len(BODY)) == gzip.decompress(packed) == BODY
    assert _decode([packed[:10], packed[10:-3], packed[-3:]], limit=len(BODY)) == BODY


def test_the_limit_is_on_the_decoded_size_exactly() -> None:
    packed = gzip.compress(BODY)
    assert _decode([packed], limit=len(BODY)) == BODY
    with pytest.raises(PayloadTooLargeError) as caught:
        _decode([packed], limit=len(BODY) - 1)
    assert str(len(BODY) - 1) in caught.value.message


def test_a_bomb_is_stopped_without_being_inflated() -> None:
    """50 MB of zeros in ~50 KB of gzip, limit 512 KiB: refused, and memory stays near the
    limit (not the 50 MB the bomb would become)."""
    bomb = gzip.compress(bytes(50 * 1024 * 1024), 9)
    limit = 512 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError):
            _decode([bomb[i : i + 65536] for i in range(0, len(bomb), 65536)], limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        ([gzip.compress(BODY)[:-8]], "cut short"),
        ([gzip.compress(BODY)[:5]], "cut short"),
        ([], "empty"),
        ([b""], "empty"),
        ([BODY], "header"),
        ([gzip.compress(BODY) + b"\x00junk"], "header"),
        ([gzip.compress(BODY)[:-4] + b"\xde\xad\xbe\xef"], "length"),  # wrong ISIZE trailer
    ],
    ids=["no-trailer", "header-only", "nothing", "empty-piece", "plain", "junk-after", "isize"],
)
def test_a_damaged_stream_is_400_saying_what(pieces: list[bytes], why: str) -> None:
    with pytest.raises(MalformedRequestError) as caught:
        _decode(pieces, limit=1 << 20)
    assert caught.value.status_code == 400
    assert why in caught.value.message
    assert caught.value.errors[0].field == "header:Content-Encoding"


def test_a_flipped_byte_is_caught_by_the_crc_if_not_before() -> None:
    rng_body = BODY + os.urandom(64).hex().encode()
    packed = bytearray(gzip.compress(rng_body))
    for index in range(10, len(packed) - 8, max(1, len(packed) // 40)):
        damaged = bytearray(packed)
        damaged[index] ^= 0x01
        with pytest.raises(MalformedRequestError):
            _decode([bytes(damaged)], limit=1 << 20)


def test_the_client_gzip_is_deterministic_and_worth_it_above_its_threshold() -> None:
    assert gzip_body(BODY) == gzip_body(BODY)  # no timestamp: a resend is the same bytes
    assert gzip.decompress(gzip_body(BODY)) == BODY
    envelope = (
        b'{"batch_id":"0192f3c1-6b5e-7a2c-9c3d-0e4f5a6b7c8d","device_id":"5b1e8f2a-3c4d-4e5f-'
        b'8a9b-0c1d2e3f4a5b","device_time_ms":1764070000000,"device_uptime_ms":123456789,'
        b'"boot_id":"9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d","client_version":"1.0.0","ops":[]}'
    )
    header = len("content-encoding: gzip\r\n")
    # Just under the threshold a batch with no op already gains; far under it, gzip loses.
    assert 200 <= len(envelope) < GZIP_MIN_BYTES
    assert len(gzip_body(envelope)) + header < len(envelope)
    assert len(gzip_body(envelope[:100])) + header > 100
    assert RESPONSE_MIN_BYTES == GZIP_MIN_BYTES
