"""Messages between services: an op code and its fields, then data frames.

Seed, "Operations on Objects": a gateway sends a name or object server "a
request with a create (or read, guard, delete) operation code", and object data
travels in "fixed-size messages … the last message includes an end-of-data
flag". This module is that shape, independent of any transport:

- :class:`Codec` turns requests, replies, records, enums and errors into bytes
  (msgpack) and back; each service registers its record and error types.
- :class:`ServiceEndpoint` sits in front of a service: it decodes a request,
  runs the operation its op code names and encodes the reply (or the error).
- :class:`ServiceClient` offers the service's operations as async methods and
  sends each call as a request message through a *transport*, a coroutine
  that carries bytes to an endpoint. The embedded mode's transport is a
  loopback; a socket transport carries the very same bytes between processes.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgpack

from ostor.common.frames import Frame

_EXT_RECORD = 1
_EXT_ERROR = 2
_EXT_ENUM = 3


class Codec:
    """msgpack encoding of requests, replies and the registered record, enum and error types.

    Arrays decode as tuples (records hold tuples), and a registered type is
    sent by its position in the registry, so both ends must register the same
    types in the same order (:func:`ostor.engine.transport.service_codec`).
    """

    def __init__(self, types: Sequence[type], fallback_error: type[BaseException] | None = None) -> None:
        #: Sent in place of an error whose type is not registered (its text is kept).
        self._fallback = fallback_error
        extra = (fallback_error,) if fallback_error and fallback_error not in types else ()
        self._types = tuple(types) + extra
        self._index = {cls: i for i, cls in enumerate(self._types)}
        if len(self._index) != len(self._types):
            raise ValueError("a type is registered twice")

    def encode(self, value: Any) -> bytes:
        """Bytes for ``value``."""
        # strict_types: subclasses of str (enums) reach _default instead of passing as plain str.
        return msgpack.packb(value, default=self._default, use_bin_type=True, strict_types=True)

    def decode(self, data: bytes) -> Any:
        """The value ``data`` encodes."""
        return msgpack.unpackb(data, ext_hook=self._ext, raw=False, use_list=False,
                               strict_map_key=False)

    def _default(self, obj: Any) -> Any:
        if type(obj) is tuple:  # strict_types leaves tuples to us; they travel as arrays
            return list(obj)
        index = self._index.get(type(obj))
        if index is None and isinstance(obj, BaseException) and self._fallback is not None:
            obj, index = self._fallback(f"{type(obj).__name__}: {obj}"), self._index[self._fallback]
        if index is None:
            raise TypeError(f"cannot encode {type(obj).__name__}: not a registered message type")
        if isinstance(obj, BaseException):
            state = {k: v for k, v in vars(obj).items() if not k.startswith("__")}
            return msgpack.ExtType(_EXT_ERROR, self.encode((index, obj.args, state)))
        if isinstance(obj, enum.Enum):
            return msgpack.ExtType(_EXT_ENUM, self.encode((index, obj.value)))
        values = tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))
        return msgpack.ExtType(_EXT_RECORD, self.encode((index, values)))

    def _ext(self, code: int, data: bytes) -> Any:
        index, payload, *rest = self.decode(data)
        cls = self._types[index]
        if code == _EXT_RECORD:
            return cls(*payload)
        if code == _EXT_ENUM:
            return cls(payload)
        if code == _EXT_ERROR:
            # Rebuild without calling __init__: error classes take different arguments.
            error = cls.__new__(cls)
            error.args = tuple(payload)
            vars(error).update(rest[0])
            return error
        raise ValueError(f"unknown message extension {code}")


#: How a service's operations are described: op code -> (method name, how data flows).
#: ``streams`` is "in" (the call sends data frames), "out" (the reply is data frames) or "".
@dataclasses.dataclass(frozen=True)
class Operation:
    """One operation of a service: its op code, method and data direction."""

    code: int
    method: str
    streams: str = ""


Transport = Callable[[bytes, "AsyncIterator[bytes] | None"], Awaitable[tuple[bytes, "AsyncIterator[bytes] | None"]]]


class ServiceEndpoint:
    """The service side of the message protocol: request bytes in, reply bytes out."""

    def __init__(self, service: Any, operations: Sequence[Operation], codec: Codec) -> None:
        self.service = service
        self.codec = codec
        self._by_code = {op.code: op for op in operations}

    async def handle(self, request: bytes,
                     inbound: AsyncIterator[bytes] | None = None) -> tuple[bytes, AsyncIterator[bytes] | None]:
        """Run one request; the reply is ``(True, value)`` or ``(False, error)``, plus outbound frames."""
        code, args, kwargs = self.codec.decode(request)
        op = self._by_code.get(code)
        if op is None:
            return self.codec.encode((False, ValueError(f"unknown op code {code}"))), None
        method = getattr(self.service, op.method)
        try:
            if op.streams == "in":
                assert inbound is not None, "a streaming operation needs its data frames"
                value = await method(*args, self._frames_in(inbound), **kwargs)
            elif op.streams == "out":
                return self.codec.encode((True, None)), self._frames_out(method(*args, **kwargs))
            else:
                value = await method(*args, **kwargs)
        except Exception as exc:  # the caller gets the same error type back
            return self.codec.encode((False, exc)), None
        return self.codec.encode((True, value)), None

    async def _frames_in(self, inbound: AsyncIterator[bytes]) -> AsyncIterator[Frame]:
        async for message in inbound:
            data, eod = self.codec.decode(message)
            yield Frame(data, eod)

    async def _frames_out(self, frames: AsyncIterable[Frame]) -> AsyncIterator[bytes]:
        try:
            async for frame in frames:
                yield self.codec.encode((True, bytes(frame.data), frame.eod))
        except Exception as exc:  # an error mid-stream ends the stream with the error
            yield self.codec.encode((False, exc, True))


class ServiceClient:
    """A service's operations as async methods, each sent as a request message."""

    def __init__(self, transport: Transport, operations: Sequence[Operation], codec: Codec,
                 attributes: Mapping[str, Any] | None = None) -> None:
        self._transport = transport
        self._codec = codec
        self._by_method = {op.method: op for op in operations}
        #: Plain attributes the caller may read (e.g. service_id).
        for name, value in (attributes or {}).items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = self._by_method.get(name)
        if op is None:
            raise AttributeError(name)
        if op.streams == "out":
            return lambda *args, **kwargs: self._stream_out(op, args, kwargs)
        return lambda *args, **kwargs: self._call(op, args, kwargs)

    async def _call(self, op: Operation, args: tuple, kwargs: dict) -> Any:
        inbound = None
        failed: list[BaseException] = []
        if op.streams == "in":
            *args, frames = args
            inbound = self._frames_to_messages(frames, failed)
        reply, _ = await self._transport(self._codec.encode((op.code, tuple(args), kwargs)), inbound)
        if failed:
            # The caller's own stream broke: the service only saw a truncated stream,
            # and the caller gets its own error back, as it would over a socket.
            raise failed[0]
        ok, value = self._codec.decode(reply)
        if not ok:
            raise value
        return value

    async def _stream_out(self, op: Operation, args: tuple, kwargs: dict) -> AsyncIterator[Frame]:
        reply, outbound = await self._transport(self._codec.encode((op.code, args, kwargs)), None)
        ok, value = self._codec.decode(reply)
        if not ok:
            raise value
        assert outbound is not None
        async for message in outbound:
            ok, *rest = self._codec.decode(message)
            if not ok:
                raise rest[0]
            data, eod = rest
            yield Frame(data, eod)

    async def _frames_to_messages(self, frames: AsyncIterable[Frame],
                                  failed: list[BaseException]) -> AsyncIterator[bytes]:
        try:
            async for frame in frames:
                yield self._codec.encode((bytes(frame.data), frame.eod))
        except Exception as exc:  # end the stream without end-of-data; keep the error here
            failed.append(exc)


def loopback(endpoint: ServiceEndpoint) -> Transport:
    """A transport that hands the bytes straight to an endpoint in this process."""
    return endpoint.handle
