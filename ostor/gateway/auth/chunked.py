"""Decoding aws-chunked request bodies, verifying chunk and trailer signatures.

Format: ``hex-size[;chunk-signature=sig]\\r\\n data \\r\\n`` … ``0[;chunk-signature=sig]\\r\\n``
then trailer lines ``name:value\\r\\n`` and an empty line. Only the data is
yielded; framing and trailers never reach the object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Protocol

from ostor.common.errors import IncompleteBody, InvalidRequest
from ostor.gateway.auth.sigv4 import EMPTY_SHA256, SigningContext, sign
from ostor.common.errors import SignatureDoesNotMatch

MAX_CHUNK = 64 * 1024 * 1024
PIECE = 1024 * 1024
MAX_LINE = 4096


class Stream(Protocol):
    """What the decoder reads from (aiohttp's and asyncio's StreamReader both fit)."""

    async def readuntil(self, separator: bytes = ...) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...


class ChunkedDecoder:
    """Iterate the decoded data of an aws-chunked body; ``trailers`` is filled once it ends.

    ``signing`` set means every chunk (and the trailer, when present) carries a
    signature chained from the seed signature of the Authorization header.
    """

    def __init__(self, stream: Stream, signing: SigningContext | None = None) -> None:
        self._stream = stream
        self._signing = signing
        self._previous = signing.seed_signature if signing else ""
        self.trailers: dict[str, str] = {}
        self.decoded_length = 0

    async def _line(self) -> bytes:
        try:
            line = await self._stream.readuntil(b"\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            raise IncompleteBody("The aws-chunked body ended inside a chunk header.") from None
        if not line.endswith(b"\n") or len(line) > MAX_LINE:
            raise IncompleteBody("The aws-chunked body ended inside a chunk header.")
        return line.rstrip(b"\r\n")

    async def _exactly(self, n: int) -> bytes:
        try:
            return await self._stream.readexactly(n)
        except asyncio.IncompleteReadError:
            raise IncompleteBody("The aws-chunked body ended inside a chunk.") from None

    def _check_chunk(self, signature: str | None, digest: str) -> None:
        if self._signing is None:
            return
        if signature is None:
            raise SignatureDoesNotMatch("A chunk of a signed aws-chunked body carries no signature.")
        ctx = self._signing
        expected = sign(ctx.key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", ctx.amz_date, ctx.scope,
                                            self._previous, EMPTY_SHA256, digest]))
        if not hmac.compare_digest(expected, signature):
            raise SignatureDoesNotMatch("The chunk signature does not match.")
        self._previous = signature

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            header = (await self._line()).decode("latin-1")
            size_text, _, extension = header.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise IncompleteBody(f"Malformed aws-chunked chunk header {header[:64]!r}.") from None
            if size > MAX_CHUNK:
                raise InvalidRequest(f"aws-chunked chunks are limited to {MAX_CHUNK} bytes.")
            signature = None
            if extension.strip().startswith("chunk-signature="):
                signature = extension.strip()[len("chunk-signature="):]
            digest = hashlib.sha256() if self._signing else None
            remaining = size
            while remaining:
                piece = await self._exactly(min(remaining, PIECE))
                remaining -= len(piece)
                if digest is not None:
                    digest.update(piece)
                self.decoded_length += len(piece)
                yield piece
            self._check_chunk(signature, digest.hexdigest() if digest else EMPTY_SHA256)
            if size == 0:
                break
            if await self._exactly(2) != b"\r\n":
                raise IncompleteBody("An aws-chunked chunk is not followed by CRLF.")
        await self._read_trailers()

    async def _read_trailers(self) -> None:
        canonical = []
        signature = None
        while True:
            try:
                line = await self._line()
            except IncompleteBody:
                if not self.trailers and signature is None:
                    return  # some clients end right after the last chunk
                raise
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                signature = value
            else:
                self.trailers[name] = value
                canonical.append(f"{name}:{value}\n")
        if self._signing is not None and canonical:
            ctx = self._signing
            expected = sign(ctx.key, "\n".join(["AWS4-HMAC-SHA256-TRAILER", ctx.amz_date, ctx.scope,
                                                self._previous,
                                                hashlib.sha256("".join(canonical).encode()).hexdigest()]))
            if signature is None or not hmac.compare_digest(expected, signature):
                raise SignatureDoesNotMatch("The trailer signature does not match.")
