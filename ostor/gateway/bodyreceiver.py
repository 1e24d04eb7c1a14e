"""Large request bodies read from the socket straight into big buffers, past aiohttp's parser.

Through aiohttp every byte of a body is copied twice in user space before our
code sees it (uvloop's read buffer into a bytes object, then the HTTP parser's
slice of it into another), in pieces of at most 256 KiB, each one a trip
through the parser, the stream reader and the body's generators. For a 1 GiB
PUT that is most of the event loop's work, and the loop shares two cores with
the MD5 of the ETag. A :class:`BodyReceiver` takes the connection's transport
for the rest of a large, plainly framed body (Content-Length, no chunked
encoding) as an :class:`asyncio.BufferedProtocol`: the kernel copies the bytes
directly into an 8 MiB buffer, which is handed on as read-only views and
written again only once none of them is left (:class:`ReceiveBuffers`), so
the digests and the engine keep it as it is (the object server still makes
its one copy, into the aligned buffer of a direct write).

aiohttp's parser is left expecting the body it never saw, so the connection
closes after the response (``Connection: close``); clients open a new one.
Anything that arrives after the body stays unread. TLS transports and bodies
aiohttp already holds whole keep the ordinary path.
"""

from __future__ import annotations

import asyncio
import mmap
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ostor.gateway.zerocopy import plain_socket

#: Bodies from this size take the direct path: below it the parser's copies cost little.
DIRECT_MIN_BYTES = 16 << 20
#: Size of each receive buffer (one object-server piece).
BUFFER_BYTES = 8 << 20
#: Request slot: set when the connection must close after the response.
CLOSE_AFTER = web.RequestKey("ostor.close_after", bool)


class ReceiveBuffers:
    """Page-aligned receive buffers (anonymous mmaps), reused once no view of them is left.

    A full buffer goes downstream as read-only views, and the digests, the engine and
    the object server keep them as long as they need. Whether any view is still alive
    is exactly what ``mmap.resize`` checks (BufferError while buffers are exported), so
    a handed-over buffer is taken again only once resizing it to its own size succeeds.
    Reuse matters: the pages of a fresh mapping fault in one by one, 262,144 times per
    GiB, which cost 8 parallel 128 MiB uploads about 10% of their speed. At most
    ``keep`` buffers are remembered, and they are unmapped once unused for ``idle``
    seconds. Thread-safe (a test may run gateways on several loops in one process).
    """

    def __init__(self, size: int = BUFFER_BYTES, keep: int = 32, idle: float = 30.0) -> None:
        self.size = size
        self.keep = keep
        self.idle = idle
        self._handed: list[mmap.mmap] = []   # given downstream; reusable once unexported
        self._lock = threading.Lock()
        self._last_take = 0.0
        self._trim_loop: asyncio.AbstractEventLoop | None = None  # the loop a trim is due on

    def take(self) -> mmap.mmap:
        """A buffer no one else reads or writes: a reusable one, or a new one."""
        with self._lock:
            self._last_take = time.monotonic()
            for index, buffer in enumerate(self._handed):
                if _unexported(buffer):
                    del self._handed[index]
                    return buffer
        # Populated up front: one call instead of a page fault per 4 KiB as the socket fills it.
        return mmap.mmap(-1, self.size, flags=_NEW_MAP_FLAGS)

    def hand_over(self, buffer: mmap.mmap) -> None:
        """``buffer`` now lives on in the views made of it (or in none); reuse it after them."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if len(self._handed) >= self.keep:
                return  # unmapped once its last view is gone
            self._handed.append(buffer)
            if self._trim_loop is loop:
                return
            self._trim_loop = loop
        loop.call_later(self.idle, self._release_idle, loop)

    def _release_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if time.monotonic() - self._last_take >= self.idle:
                # Unexported ones are unmapped now; ones still viewed go with their views.
                self._handed.clear()
            elif self._trim_loop is loop:
                loop.call_later(self.idle, self._release_idle, loop)
                return
            if self._trim_loop is loop:
                self._trim_loop = None


_NEW_MAP_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)


def _unexported(buffer: mmap.mmap) -> bool:
    try:
        buffer.resize(len(buffer))
    except BufferError:
        return False
    return True


#: The process's receive buffers (one event loop per gateway process).
BUFFERS = ReceiveBuffers()


class BodyReceiver(asyncio.BufferedProtocol):
    """The transport's protocol while a body is received; forwards everything else to aiohttp's."""

    def __init__(self, transport: Any, original: Any, remaining: int) -> None:
        self._transport = transport
        self._original = original
        self._remaining = remaining        # body bytes not yet received
        self._buffer: Any = BUFFERS.take()  # None once the body is complete
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
        try:
            while True:
                if self._filled == len(self._buffer) or (not self._remaining and self._filled):
                    chunk = memoryview(self._buffer)[:self._filled].toreadonly()
                    # The filled buffer now belongs to whoever keeps the view.
                    BUFFERS.hand_over(self._buffer)
                    if not self._remaining:
                        self._buffer = None
                        yield chunk
                        return
                    self._buffer = BUFFERS.take()
                    self._filled = 0
                    self._transport.resume_reading()  # the next buffer fills while this one is used
                    yield chunk
                    continue
                if self._closed is not None:
                    raise self._closed
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
                self._waiter = None
        finally:
            if self._buffer is not None:  # a body that ended early: nothing views this one
                BUFFERS.hand_over(self._buffer)
                self._buffer = None


def direct_candidate(request: web.BaseRequest, length: int) -> bool:
    """Whether a plainly framed body of ``length`` bytes can be received directly."""
    if length < DIRECT_MIN_BYTES:
        return False
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return False
    # The same connections as zero-copy GETs: plain TCP, not TLS, not closing.
    return plain_socket(request) is not None and hasattr(request.transport, "set_protocol")


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
    chunks = receiver.chunks()
    try:
        if buffered:
            yield buffered
        async for chunk in chunks:
            received += len(chunk)
            yield chunk
    finally:
        if not transport.is_closing():
            transport.pause_reading()  # before the buffer goes back: nothing may read into it
            transport.set_protocol(original)
        await chunks.aclose()  # its buffer goes back to the pool now
        # Byte counters (statistics) stay true; the parser must not linger for the body.
        content.total_bytes += received
        if not content.is_eof():
            content.feed_eof()
