"""Content codings on the sync wire: gzip push bodies, decoded under a hard cap on the *decoded*
size, and gzip answers for the sync routes that carry JSON (hello, push, pull).

On 2G every byte is airtime: a minimal create op is ~0.8 KB of JSON, half of it UUIDs and keys
that gzip shrinks by a third or more. The rules (advertised by ``hello.request_encodings``):

- a request body may be sent ``Content-Encoding: gzip`` (or ``identity``, or none); any other
  coding is refused with 415 and ``Accept-Encoding: gzip`` (RFC 7694), before anything is read;
- the decoded body is held to the same limit as a plain one (``max_batch_bytes``): 413, as for
  any oversized batch, as soon as decoding passes it, so a 50 KB "bomb" of 50 MB of zeros costs
  the server 512 KiB, not 50 MB;
- a damaged or cut-short gzip stream is 400, with a sentence the field app can show;
- the decoded bytes are the batch: the Idempotency-Key fingerprint is taken over them, so a
  batch sent plain and resent gzipped (or the reverse) is the same batch;
- answers are gzipped when the request says ``Accept-Encoding: gzip`` and the body is at least
  :data:`RESPONSE_MIN_BYTES` (below that the coding's headers cost more than it saves).

The tus upload routes take no coding: their chunks are hashed as sent, against the manifest.
"""

from __future__ import annotations

import zlib

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedContentEncodingError,
)

__all__ = [
    "COMPRESS_LEVEL",
    "REQUEST_ENCODINGS",
    "RESPONSE_MIN_BYTES",
    "CappedGunzip",
    "SyncCompressionMiddleware",
    "batch_too_large",
    "request_coding",
]

#: Codings the server decodes in request bodies (``hello.request_encodings``).
REQUEST_ENCODINGS: tuple[str, ...] = ("gzip",)
#: Measured on protocol JSON: gzip's 18 B frame plus ``Content-Encoding: gzip`` and
#: ``Vary: Accept-Encoding`` (47 B of headers) break even near 200 B; a one-op push answer
#: (~360 B) and hello (~370 B) already gain ~50 B each.
RESPONSE_MIN_BYTES = 256
#: zlib's default: within a few bytes of level 9 on these bodies, at a fraction of the CPU.
COMPRESS_LEVEL = 6

#: The JSON routes answered compressed; the tus routes carry no body worth it, or bytes.
_COMPRESSED_ROUTES = frozenset(
    {("GET", "/sync/v1/hello"), ("POST", "/sync/v1/push"), ("GET", "/sync/v1/pull")}
)
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not a bare zlib stream


def batch_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"A push batch may be at most {limit} bytes (decoded, if sent compressed); split it "
        "(hello says max_batch_bytes)."
    )


def request_coding(content_encoding: str | None) -> str | None:
    """``"gzip"`` if the body is gzipped, ``None`` if it is sent as is.

    Raises :class:`UnsupportedContentEncodingError` for any other coding, or a stack of
    codings (``gzip, gzip``): nobody needs one, and each layer would multiply the work.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return "gzip"
    raise UnsupportedContentEncodingError(
        f"This server cannot read a request body sent as Content-Encoding: {content_encoding}. "
        "Send it as gzip, or uncompressed.",
        accepted=REQUEST_ENCODINGS,
    )


class CappedGunzip:
    """Decodes a gzip body fed in pieces, never holding more than ``limit`` decoded bytes.

    Several gzip members one after the other are one body (RFC 1952 §2.2), as ``gzip`` reads
    them. Raises :class:`PayloadTooLargeError` (413) as soon as the decoded size passes
    ``limit``, :class:`MalformedRequestError` (400) for a damaged stream; :meth:`finish` raises
    it too for a stream cut short.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder = zlib.decompressobj(_GZIP_WBITS)
        self._member_started = False  # bytes of the current member seen

    def feed(self, data: bytes) -> None:
        while data:
            if self._decoder.eof:
                # Another member follows the one just finished.
                self._decoder = zlib.decompressobj(_GZIP_WBITS)
                self._member_started = False
            self._member_started = True
            try:
                # At most one byte past the limit: enough to know it is too large.
                out = self._decoder.decompress(data, self.limit - self._size + 1)
            except zlib.error as exc:
                raise _damaged(str(exc)) from None
            self._take(out)
            # Input left over is the next member's (the output cap was not reached: _take
            # would have raised); none left means the member goes on in the next piece.
            data = self._decoder.unused_data if self._decoder.eof else b""

    def finish(self) -> bytes:
        """The whole decoded body; 400 if the stream stopped before its gzip trailer."""
        if not self._member_started:
            raise _damaged("the body is empty")
        if not self._decoder.eof:
            raise _damaged("it ends before its gzip trailer: cut short on the way?")
        return b"".join(self._parts)

    def _take(self, out: bytes) -> None:
        self._size += len(out)
        if self._size > self.limit:
            raise batch_too_large(self.limit)
        self._parts.append(out)


def _damaged(why: str) -> MalformedRequestError:
    return MalformedRequestError.on(
        "header:Content-Encoding",
        f"the body is not a readable gzip stream ({why}). Nothing was stored; send the batch "
        "again.",
    )


class SyncCompressionMiddleware:
    """Starlette's gzip answers, only for the sync JSON routes (hello, push, pull).

    Kept off the rest of the app on purpose: the tus routes answer with headers only, the map
    pages and exports have their own caching, and a body held back for compression would delay
    a streamed answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = RESPONSE_MIN_BYTES,
        compresslevel: int = COMPRESS_LEVEL,
    ) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in _COMPRESSED_ROUTES:
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
