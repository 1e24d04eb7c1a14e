"""Reading an object's bytes: the segments covering a range, streamed or as extents.

An object is a tuple of segments (one per multipart part, or one for a plain
object), each an object on some object server. A read asks each covered
object server for just the covered bytes (seed, "Gateway": "only the requested
data is transferred").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Callable

from ostor.nameserver.records import ObjectRecord, Segment
from ostor.objectserver.fileio import will_need as read_ahead

__all__ = ["ObjectReader", "SegmentSlice", "covering_slices", "read_ahead"]


@dataclass(frozen=True)
class SegmentSlice:
    """The part of one segment a read covers."""

    segment: Segment
    offset: int
    length: int


def covering_slices(link: tuple[Segment, ...], start: int, length: int) -> list[SegmentSlice]:
    """The slices of ``link``'s segments that hold bytes ``start`` … ``start+length-1``."""
    slices = []
    position = 0
    end = start + length
    for segment in link:
        seg_end = position + segment.size
        if seg_end > start and position < end and segment.size:
            first = max(start, position) - position
            last = min(end, seg_end) - position
            slices.append(SegmentSlice(segment, first, last - first))
        position = seg_end
        if position >= end:
            break
    return slices


@dataclass
class ObjectReader:
    """An object (or a range of it) ready to be read.

    ``start``/``length`` are the resolved range; ``partial`` says a Range was
    applied (HTTP 206).
    """

    record: ObjectRecord
    start: int
    length: int
    partial: bool
    object_server: Callable[[int], Any]

    @property
    def slices(self) -> list[SegmentSlice]:
        """The segment slices this read touches."""
        return covering_slices(self.record.link, self.start, self.length)

    async def frames(self) -> AsyncIterator[bytes]:
        """Stream the bytes of the range, frame by frame."""
        for piece in self.slices:
            server = self.object_server(piece.segment.os_id)
            async for frame in server.read(piece.segment.object_id, piece.offset, piece.length):
                if frame.data:
                    yield frame.data

    async def read(self) -> bytes:
        """The whole range in memory (small objects, tests)."""
        if self.length == 0:
            return b""
        slices = self.slices
        if len(slices) == 1:
            piece = slices[0]
            server = self.object_server(piece.segment.os_id)
            if hasattr(server, "open_read"):  # a service in this process: one pinned pread
                with server.open_read(piece.segment.object_id, piece.offset, piece.length) as handle:
                    return handle.read()
        return b"".join([bytes(chunk) async for chunk in self.frames()])

    @property
    def supports_extents(self) -> bool:
        """Whether every covered object server is in this process (so open_extents works)."""
        return all(hasattr(self.object_server(p.segment.os_id), "open_read") for p in self.slices)

    @contextlib.contextmanager
    def open_extents(self) -> Iterator[list]:
        """Pin every covered segment and yield the file extents for zero-copy sends.

        The blocks stay where they are (no GC, no defragmentation) until the
        context exits.
        """
        with contextlib.ExitStack() as stack:
            extents: list = []
            for piece in self.slices:
                server = self.object_server(piece.segment.os_id)
                handle = stack.enter_context(
                    server.open_read(piece.segment.object_id, piece.offset, piece.length))
                extents.extend(handle.extents)
            yield extents
