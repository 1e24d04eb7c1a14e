"""Sending object bytes from pool files to the client socket with os.sendfile (no copy through Python).

uvloop has no ``loop.sendfile`` for transports, so this does what asyncio's
native path does: flush what aiohttp buffered (the status line and headers),
then call ``os.sendfile`` on the socket until every extent is sent, waiting
for writability between calls. It works on a ``dup`` of the socket: if the
client goes away and the transport closes its descriptor meanwhile, the
number cannot be reused under us for another file. TLS transports (and
anything without a real socket) keep the framed path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from ostor.engine.reader import read_ahead

#: Below this size the framed path is as fast and needs no descriptor juggling.
SENDFILE_MIN_BYTES = 256 * 1024
#: Bodies from this size get a SEND_BUFFER_BYTES socket send buffer.
BIG_SEND_BYTES = 16 << 20
SEND_BUFFER_BYTES = 4 << 20


@contextlib.asynccontextmanager
async def pinned_extents(reader: Any) -> AsyncIterator[list | None]:
    """The reader's file extents, pinned until the context exits; None when zero-copy is impossible.

    Object servers in this process pin with ``open_read`` (no message at all);
    object servers in the storage process (``--workers``) hand out read leases
    on their pool files (``lease_extents``).
    """
    slices = reader.slices
    servers = [reader.object_server(piece.segment.os_id) for piece in slices]
    if all(hasattr(server, "open_read") for server in servers):
        with reader.open_extents() as extents:
            yield extents
        return
    if not all(hasattr(server, "lease_extents") for server in servers):
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        extents: list = []
        for piece, server in zip(slices, servers):
            extents += await stack.enter_async_context(
                server.lease_extents(piece.segment.object_id, piece.offset, piece.length))
        yield extents


def plain_socket(request: web.BaseRequest) -> Any | None:
    """The request's socket when zero-copy is possible (plain TCP/Unix, no TLS), else None."""
    transport = request.transport
    if transport is None or transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(sock, "fileno"):
        return None
    return sock


async def _flush(request: web.BaseRequest, writer: Any) -> None:
    """Wait until aiohttp's and the transport's buffers are empty (headers on the wire)."""
    transport = request.transport
    if hasattr(writer, "send_headers"):
        writer.send_headers()
    if not transport.get_write_buffer_size():
        return
    # With a high-water mark of 0 the protocol pauses on any buffered byte and resumes
    # only once the buffer is empty; aiohttp's drain() waits for exactly that.
    high_low = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        await writer.drain()
        while transport.get_write_buffer_size() and not transport.is_closing():
            await asyncio.sleep(0.001)  # a loop that did not pause the protocol: poll briefly
    finally:
        transport.set_write_buffer_limits(high=high_low[1], low=high_low[0])


async def send_extents(request: web.BaseRequest, writer: Any, extents: Sequence[Any]) -> int:
    """sendfile every extent (``fd``, ``file_offset``, ``length``) to the client; returns bytes sent.

    Raises ConnectionResetError when the client goes away.
    """
    transport = request.transport
    sock = plain_socket(request)
    if sock is None:
        raise ConnectionResetError("the connection closed before the body was sent")
    await _flush(request, writer)
    loop = asyncio.get_running_loop()
    out = os.dup(sock.fileno())
    sent = 0
    if sum(e.length for e in extents) >= BIG_SEND_BYTES:
        # A larger send buffer means fewer wake-ups (sendfile calls) per GiB for a fast reader.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    try:
        for index, extent in enumerate(extents):
            # The next piece is read from disk while this one goes out (a cold page cache).
            read_ahead(extents[index:index + 2] if index == 0 else extents[index + 1:index + 2])
            offset, remaining = extent.file_offset, extent.length
            while remaining:
                if transport.is_closing():
                    raise ConnectionResetError("the client closed the connection")
                try:
                    n = os.sendfile(out, extent.fd, offset, remaining)
                except BlockingIOError:
                    await _writable(loop, out)
                    continue
                if n == 0:
                    raise ConnectionResetError("sendfile made no progress")
                offset += n
                remaining -= n
                sent += n
    finally:
        os.close(out)
        # Keep aiohttp's byte counters (access log, statistics) true to what was sent.
        for counter in ("buffer_size", "output_size"):
            if hasattr(writer, counter):
                setattr(writer, counter, getattr(writer, counter) + sent)
    return sent


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    future = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_writer(fd, ready)
    try:
        await future
    finally:
        loop.remove_writer(fd)
