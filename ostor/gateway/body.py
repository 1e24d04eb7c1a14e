"""Request bodies: de-framing aws-chunked, verifying payload hash, Content-MD5 and flexible checksums.

The verified stream raises *before it ends* when anything does not match, so
the engine sees an aborted stream and discards the data: nothing is stored.
Uploads (PutObject, UploadPart) leave Content-MD5 to the engine, which checks it
against the MD5 it computes for the ETag anyway (``stream(check_md5=False)``):
the body is MD5-hashed once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from aiohttp import web

from ostor.common.errors import (
    BadDigest, EntityTooLarge, IncompleteBody, InvalidArgument, InvalidRequest, MissingContentLength,
)
from ostor.gateway import bodyreceiver, checksums
from ostor.gateway.auth.chunked import ChunkedDecoder
from ostor.gateway.auth.sigv4 import (
    STREAMING_MODES, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, UNSIGNED, AuthResult,
)
from ostor.common.errors import XAmzContentSHA256Mismatch
from ostor.common.hashing import HASH_BATCH_BYTES, DigestPipe

MAX_OBJECT_SIZE = 5 * 1024 ** 3


class RequestBody:
    """The payload of one request, decoded and verified as it streams."""

    def __init__(self, request: web.BaseRequest, auth: AuthResult, hash_executor: Executor | None = None) -> None:
        self.request = request
        self.auth = auth
        self.hash_executor = hash_executor
        headers = request.headers
        encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",") if e.strip()]
        self.chunked = "aws-chunked" in encodings or auth.payload_hash in STREAMING_MODES
        #: Content-Encoding as the object should keep it (aws-chunked is transport framing only).
        self.content_encoding = ", ".join(e for e in encodings if e != "aws-chunked") or None
        self.checksum = checksums.requested(headers)
        self.md5 = checksums.content_md5(headers)
        #: Checksums computed and verified; filled when the stream ends.
        self.computed: dict[str, str] = {}

    def declared_length(self) -> int | None:
        """The payload length the client announced (decoded length for aws-chunked), if any."""
        headers = self.request.headers
        text = headers.get("x-amz-decoded-content-length") if self.chunked else headers.get("content-length")
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise InvalidArgument("The content length is not a number.") from None
        if value < 0:
            raise InvalidArgument("The content length must not be negative.")
        return value

    def check_size(self, require_length: bool, max_size: int = MAX_OBJECT_SIZE) -> None:
        """MissingContentLength / EntityTooLarge before anything is read."""
        length = self.declared_length()
        if length is None and require_length and not self.chunked \
                and "chunked" not in self.request.headers.get("transfer-encoding", "").lower():
            raise MissingContentLength()
        if length is not None and length > max_size:
            raise EntityTooLarge(ProposedSize=str(length), MaxSizeAllowed=str(max_size))

    async def _raw(self) -> AsyncIterator[bytes | memoryview]:
        length = self.declared_length()
        if length is not None and bodyreceiver.direct_candidate(self.request, length):
            async for chunk in bodyreceiver.receive(self.request, length):
                yield chunk
            return
        # readchunk, not readany: readany joins every buffered socket read into one new
        # bytes object, a copy of the whole body that readchunk does not make.
        # An empty chunk is either a chunked-encoding boundary or the end; at_eof() tells
        # which (aiohttp's shared empty payload answers every call with a boundary).
        content = self.request.content
        while True:
            chunk, _ = await content.readchunk()
            if chunk:
                yield chunk
            elif content.at_eof():
                return

    def default_checksum(self) -> checksums.ChecksumSpec:
        """The checksum an upload is stored with: the one the request names, else S3's default
        (CRC64NVME, computed while streaming and recorded in ``computed``)."""
        self.checksum = checksums.for_upload(self.checksum, self.request.headers)
        return self.checksum

    async def stream(self, check_md5: bool = True) -> AsyncIterator[bytes | memoryview]:
        """The payload's bytes, verified; raises (BadDigest, XAmzContentSHA256Mismatch, ...) before ending.

        ``check_md5=False``: the caller verifies Content-MD5 itself (the engine, given ``self.md5``).
        """
        payload_hash = self.auth.payload_hash
        decoder = None
        if self.chunked:
            signed = payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
            if signed and self.auth.signing is None:
                raise InvalidRequest("A signed aws-chunked body needs a signed request.")
            decoder = ChunkedDecoder(self.request.content, self.auth.signing if signed else None)
            source = decoder.__aiter__()
        else:
            source = self._raw()
        sha256 = hashlib.sha256() if len(payload_hash) == 64 and payload_hash != UNSIGNED else None
        md5 = hashlib.md5() if self.md5 is not None and check_md5 else None
        spec = self.checksum
        hasher = checksums.Hasher(spec.algorithm) if spec else None
        digests = [d for d in (sha256, md5, hasher) if d is not None]
        pipe = DigestPipe(digests, self.hash_executor) if digests else None
        total = 0
        async for chunk in source:
            total += len(chunk)
            if pipe is not None:
                await pipe.update(chunk)
            yield chunk
        if pipe is not None:
            await pipe.finish()
        if decoder is not None:
            declared = self.declared_length()
            if declared is not None and declared != total:
                raise IncompleteBody(f"Expected {declared} decoded bytes, received {total}.")
        if sha256 is not None and not hmac.compare_digest(sha256.hexdigest(), payload_hash):
            raise XAmzContentSHA256Mismatch(ClientComputedContentSHA256=payload_hash,
                                            S3ComputedContentSHA256=sha256.hexdigest())
        if md5 is not None and md5.digest() != self.md5:
            raise BadDigest()
        if hasher is not None and spec is not None:
            actual = hasher.b64()
            expected = spec.expected
            if spec.from_trailer:
                expected = (decoder.trailers if decoder else {}).get(checksums.header_name(spec.algorithm))
                if expected is None:
                    raise InvalidRequest(f"The trailer {checksums.header_name(spec.algorithm)} is missing.")
            if expected is not None and expected != actual:
                raise BadDigest(f"The {spec.algorithm} you specified did not match the calculated checksum.")
            self.computed[spec.algorithm] = actual

    async def upload_payload(self) -> bytes | AsyncIterator[bytes | memoryview]:
        """An upload's verified payload, Content-MD5 left to the engine: in memory when small, else streamed.

        A body announced smaller than the engine's inline-hashing size is read whole, so
        the engine stores it in one step (hashed at once and checked before any write)
        instead of through its streaming pipeline, which costs more than such a body.
        """
        length = self.declared_length()
        if length is not None and length < HASH_BATCH_BYTES:
            return await self.read(HASH_BATCH_BYTES, check_md5=False)
        return self.stream(check_md5=False)

    async def read(self, limit: int = 2 * 1024 * 1024, check_md5: bool = True) -> bytes:
        """The whole (small) payload in memory, verified; InvalidRequest past ``limit`` bytes."""
        parts = []
        size = 0
        async for chunk in self.stream(check_md5):
            size += len(chunk)
            if size > limit:
                raise InvalidRequest(f"The request body exceeds {limit} bytes.")
            parts.append(chunk)
        return b"".join(parts)
