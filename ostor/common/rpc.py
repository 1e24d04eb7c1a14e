"""The message protocol over Unix sockets: a server for a ServiceEndpoint, a Transport for clients.

Wire format (both directions): ``kind`` (1 byte) and ``length`` (4 bytes,
big-endian), then ``length`` bytes. A call on one connection is::

    client: REQUEST | REQUEST_DATA, then (REQUEST_DATA only) DATA* END
    server: REPLY | REPLY_DATA,     then (REPLY_DATA only)   DATA* END

The request and reply bytes are exactly what :class:`ServiceClient` and
:class:`ServiceEndpoint` exchange through a loopback, and each DATA message is
one encoded data frame; END closes a stream whether or not its last frame
carried end-of-data, so a caller whose own stream broke still leaves the
connection in a known state (the service sees a truncated stream). One call
runs on a connection at a time; :class:`SocketTransport` keeps a pool so that
concurrent calls do not serialise. A connection that breaks fails its call
with :class:`~ostor.common.errors.ServiceUnavailableError` and is dropped; the
next call opens a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path

from ostor.common.errors import ServiceUnavailableError
from ostor.common.messages import ServiceEndpoint
from ostor.common.unixsocket import bind_unix

log = logging.getLogger(__name__)

REQUEST, REQUEST_DATA, REPLY, REPLY_DATA, DATA, END = range(1, 7)
_HEADER = struct.Struct(">BI")
_MAX_MESSAGE = 64 << 20  # a frame is 1 MiB; anything far larger is a corrupt stream
_STREAM_LIMIT = 4 << 20  # reader buffer: a few frames ahead, then back-pressure
_SMALL = 64 << 10        # below this header and payload go out as one buffer


class ProtocolError(ValueError):
    """The peer sent something that is not this protocol (the connection is dropped)."""


async def read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One message: ``(kind, payload)``; IncompleteReadError when the peer closed."""
    kind, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > _MAX_MESSAGE or not REQUEST <= kind <= END:
        raise ProtocolError(f"bad message header: kind {kind}, {length} bytes")
    return kind, (await reader.readexactly(length) if length else b"")


def write_message(writer: asyncio.StreamWriter, kind: int, payload: bytes = b"") -> None:
    """Queue one message (the caller drains)."""
    if len(payload) < _SMALL:
        writer.write(_HEADER.pack(kind, len(payload)) + payload)
    else:  # no copy of a big payload just to prepend five bytes
        writer.write(_HEADER.pack(kind, len(payload)))
        writer.write(payload)


class RpcServer:
    """Serves one ServiceEndpoint on a Unix socket; each connection runs its calls in order."""

    def __init__(self, endpoint: ServiceEndpoint, path: Path) -> None:
        self.endpoint = endpoint
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Bind the socket (mode 0600) and start accepting."""
        sock = bind_unix(self.path, 0o600)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=_STREAM_LIMIT)

    async def stop(self) -> None:
        """Stop accepting, cut open connections, remove the socket file."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                try:
                    kind, request = await read_message(reader)
                except asyncio.IncompleteReadError:
                    return  # the client closed between calls
                if kind not in (REQUEST, REQUEST_DATA):
                    raise ProtocolError(f"expected a request, got message kind {kind}")
                await self._call(kind, request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as exc:
            log.debug("rpc connection on %s ended: %r", self.path, exc)
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _call(self, kind: int, request: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        inbound = _Inbound(reader) if kind == REQUEST_DATA else None
        reply, outbound = await self.endpoint.handle(request, inbound)
        if inbound is not None:
            await inbound.drain()  # the service may stop reading early (an error): skip the rest
        if outbound is None:
            write_message(writer, REPLY, reply)
            await writer.drain()
            return
        write_message(writer, REPLY_DATA, reply)
        try:
            async for message in outbound:
                write_message(writer, DATA, message)
                await writer.drain()
            write_message(writer, END)
            await writer.drain()
        finally:
            # The client went away mid-stream: close the generator now so pins are released.
            await outbound.aclose()


class _Inbound:
    """The DATA messages of one streaming request, until END."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._ended = False

    def __aiter__(self) -> "_Inbound":
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        kind, payload = await read_message(self._reader)
        if kind == END:
            self._ended = True
            raise StopAsyncIteration
        if kind != DATA:
            raise ProtocolError(f"expected data, got message kind {kind}")
        return payload

    async def drain(self) -> None:
        async for _ in self:
            pass


class SocketTransport:
    """A Transport (see :mod:`ostor.common.messages`) to a service on a Unix socket, with a connection pool.

    ``max_connections`` bounds concurrent calls (more wait for a free
    connection); up to ``max_idle`` connections stay open between calls.
    """

    def __init__(self, path: Path, max_connections: int = 64, max_idle: int = 16) -> None:
        self.path = str(path)
        self.max_idle = max_idle
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def __call__(self, request: bytes,
                       inbound: AsyncIterator[bytes] | None) -> tuple[bytes, AsyncIterator[bytes] | None]:
        """Send one request (and its data), return the reply (and a stream of reply data)."""
        await self._slots.acquire()
        conn = None
        try:
            conn = await self._connect()
            reader, writer = conn
            write_message(writer, REQUEST if inbound is None else REQUEST_DATA, request)
            if inbound is not None:
                async for message in inbound:
                    write_message(writer, DATA, message)
                    await writer.drain()
                write_message(writer, END)
            await writer.drain()
            kind, reply = await read_message(reader)
        except BaseException as exc:
            self._discard(conn)
            if isinstance(exc, (OSError, asyncio.IncompleteReadError, ProtocolError)):
                raise ServiceUnavailableError(f"service at {self.path}: {type(exc).__name__}: {exc}") from exc
            raise
        if kind == REPLY:
            self._release(conn)
            return reply, None
        if kind != REPLY_DATA:
            self._discard(conn)
            raise ServiceUnavailableError(f"service at {self.path}: unexpected message kind {kind}")
        return reply, self._reply_data(conn)

    async def _reply_data(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> AsyncIterator[bytes]:
        finished = False
        try:
            while True:
                try:
                    kind, payload = await read_message(conn[0])
                except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    raise ServiceUnavailableError(
                        f"service at {self.path}: stream broke: {type(exc).__name__}: {exc}") from exc
                if kind == END:
                    finished = True
                    return
                if kind != DATA:
                    raise ServiceUnavailableError(f"service at {self.path}: unexpected message kind {kind}")
                yield payload
        finally:
            # A stream the caller abandoned leaves unread messages: that connection cannot be reused.
            if finished:
                self._release(conn)
            else:
                self._discard(conn)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._closed:
            raise ServiceUnavailableError(f"transport to {self.path} is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn[1].is_closing() and not conn[0].at_eof():
                return conn
            conn[1].close()
        return await asyncio.open_unix_connection(self.path, limit=_STREAM_LIMIT)

    def _release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        """The call is over and the connection is in sync: keep it for the next call."""
        self._slots.release()
        if self._closed or len(self._idle) >= self.max_idle or conn[1].is_closing():
            conn[1].close()
        else:
            self._idle.append(conn)

    def _discard(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        """The call is over but the connection may be mid-message: close it."""
        self._slots.release()
        if conn is not None:
            conn[1].close()

    async def close(self) -> None:
        """Close the idle connections; calls still running close theirs when they finish."""
        self._closed = True
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
