"""Data frames: object data travels in fixed-size messages, the last one flagged.

The seed's create and read operations send "fixed-size messages containing the
object's data; the last message includes an end-of-data flag". In the embedded
mode frames are passed as Python objects; a socket transport encodes them with
:func:`ostor.common.messages.encode_frame`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import NamedTuple

FRAME_SIZE = 1 << 20  # 1 MiB: big enough to amortise per-message cost, small enough to stream


class Frame(NamedTuple):
    """One data message: up to FRAME_SIZE bytes and the end-of-data flag."""

    data: bytes | memoryview
    eod: bool


async def frames_from_chunks(
    chunks: AsyncIterable[bytes] | Iterable[bytes], frame_size: int = FRAME_SIZE
) -> AsyncIterator[Frame]:
    """Re-cut arbitrary chunks into fixed-size frames, flagging the last one.

    A source that ends normally yields a final frame with ``eod=True`` (possibly
    empty). The consumer treats a stream that stops without that flag as
    truncated.
    """
    buf = bytearray()
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:  # type: ignore[union-attr]
            buf += chunk
            while len(buf) > frame_size:
                yield Frame(bytes(buf[:frame_size]), False)
                del buf[:frame_size]
    else:
        for chunk in chunks:  # type: ignore[union-attr]
            buf += chunk
            while len(buf) > frame_size:
                yield Frame(bytes(buf[:frame_size]), False)
                del buf[:frame_size]
    yield Frame(bytes(buf), True)


class OneFrame:
    """An in-memory payload of at most one frame, as a frame stream.

    A plain async iterator, not an async generator: nothing to close when the
    consumer stops at the end-of-data frame, and no generator bookkeeping in the
    event loop, for the one frame a small PUT sends.
    """

    __slots__ = ("_frame",)

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) > FRAME_SIZE:
            raise ValueError(f"{len(data)} bytes do not fit one frame")
        self._frame: Frame | None = Frame(memoryview(data), True)

    def __aiter__(self) -> "OneFrame":
        return self

    async def __anext__(self) -> Frame:
        frame, self._frame = self._frame, None
        if frame is None:
            raise StopAsyncIteration
        return frame


async def frames_from_bytes(data: bytes, frame_size: int = FRAME_SIZE) -> AsyncIterator[Frame]:
    """Frames for an in-memory payload (tests, small internal objects)."""
    view = memoryview(data)
    if not view:
        yield Frame(b"", True)
        return
    for start in range(0, len(view), frame_size):
        end = start + frame_size
        yield Frame(view[start:end], end >= len(view))
