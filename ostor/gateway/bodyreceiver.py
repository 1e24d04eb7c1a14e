"""Large request bodies read from the socket straight into big buffers, past aiohttp's parser.

Through aiohttp every byte of a body is copied twice in user space before our
code sees it (uvloop's read buffer into a bytes object, then the HTTP parser's
slice of it into another), in pieces of at most 256 KiB, each one a trip
through the parser, the stream reader and the body's generators. For a 1 GiB
PUT that is most of the event loop's work, and the loop shares two cores with
the MD5 of the ETag. A :class:`BodyReceiver` takes the connection's transport
for the rest of a large, plainly framed body (Content-Length, no chunked
encoding) as an :class:`asyncio.BufferedProtocol`: the kernel copies the bytes
directly into an 8 MiB buffer, which is handed on read-only and never
written again, so the digests and the engine keep it as it is (the object
server still makes its one copy, into the aligned buffer of a direct write).

aiohttp's parser is left expecting the body it never saw, so the connection
closes after the response (``Connection: close``); clients open a new one.
Anything that arrives after the body stays unread. TLS transports and bodies
aiohttp already holds whole keep the ordinary path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

#: Bodies from this size take the direct path: below it the parser's copies cost little.
DIRECT_MIN_BYTES = 16 << 20
#: Size of each receive buffer (one object-server piece).
BUFFER_BYTES = 8 << 20
#: Request slot: set when the connection must close after the response.
CLOSE_AFTER = "ostor.close_after"


class BodyReceiver(asyncio.BufferedProtocol):
    """The transport's protocol while a body is received; forwards everything else to aiohttp's."""

    def __init__(self, transport: Any, original: Any, remaining: int) -> None:
        self._transport = transport
        self._original = original
        self._remaining = remaining        # body bytes not yet received
        self._buffer = bytearray(min(BUFFER_BYTES, remaining))
        self._filled = 0
        self._waiter: asyncio.Future | None = None
        self._closed: BaseException | None = None

    # asyncio.BufferedProtocol
    def get_buffer(self, sizehint: int) -> memoryview:
        """Room left in the current buffer, never past the end of the body."""
        end = min(len(self._buffer), self._filled + self._remaining)
        return memoryview(self._buffer)[self._filled:end]

    def buffer_updated(self, nbytes: int) -> None:
        """Count the bytes; a full buffer (or the body's end) pauses reading until taken."""
        self._filled += nbytes
        self._remaining -= nbytes
        if self._filled == len(self._buffer) or not self._remaining:
            self._transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool:
        """The client half-closed before the body ended."""
        self._closed = ConnectionResetError("the client closed the connection mid-body")
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        """Fail the reader and let aiohttp clean up as it always does."""
        self._closed = ConnectionResetError("the connection was lost mid-body")
        self._wake()
        self._original.connection_lost(exc)

    def pause_writing(self) -> None:
        """Write flow control belongs to aiohttp's protocol (it writes the response)."""
        self._original.pause_writing()

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""
        self._original.resume_writing()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def chunks(self) -> AsyncIterator[memoryview]:
        """The body's bytes as read-only views of full buffers (the last one may be shorter)."""
        while True:
            if self._filled == len(self._buffer) or (not self._remaining and self._filled):
                chunk = memoryview(self._buffer)[:self._filled].toreadonly()
                if not self._remaining:
                    yield chunk
                    return
                # A fresh buffer: the one just filled now belongs to whoever keeps the view.
                self._buffer = bytearray(min(BUFFER_BYTES, self._remaining))
                self._filled = 0
                self._transport.resume_reading()  # the next buffer fills while this one is used
                yield chunk
                continue
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None


def direct_candidate(request: web.BaseRequest, length: int) -> bool:
    """Whether a plainly framed body of ``length`` bytes can be received directly."""
    if length < DIRECT_MIN_BYTES:
        return False
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return False
    transport = request.transport
    return (transport is not None and not transport.is_closing()
            and transport.get_extra_info("sslcontext") is None and hasattr(transport, "set_protocol"))


async def receive(request: web.BaseRequest, length: int) -> AsyncIterator[bytes | memoryview]:
    """The body of ``length`` bytes: what aiohttp buffered, then the rest read directly.

    Call only when :func:`direct_candidate` said yes. Raises ConnectionResetError
    when the client goes away first.
    """
    content = request.content
    # No await until the transport is ours: aiohttp would go on reading into ``content``.
    buffered = content.read_nowait(-1)  # what arrived with the headers
    remaining = length - len(buffered)
    transport = request.transport
    if remaining <= 0:  # aiohttp had it all (its parser never passes the Content-Length)
        yield buffered
        return
    if content.is_eof() or transport is None or transport.is_closing():
        raise ConnectionResetError("the client closed the connection mid-body")
    original = transport.get_protocol()
    receiver = BodyReceiver(transport, original, remaining)
    request[CLOSE_AFTER] = True
    request.protocol.close()  # aiohttp: no further request on this connection
    transport.pause_reading()  # reading restarts with the buffered-protocol callbacks
    transport.set_protocol(receiver)
    transport.resume_reading()
    received = 0
    try:
        if buffered:
            yield buffered
        async for chunk in receiver.chunks():
            received += len(chunk)
            yield chunk
    finally:
        # Byte counters (statistics) stay true; the parser must not linger for the body.
        content.total_bytes += received
        if not transport.is_closing():
            transport.pause_reading()
            transport.set_protocol(original)
        if not content.is_eof():
            content.feed_eof()
