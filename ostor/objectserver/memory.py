"""An in-memory twin of :class:`ObjectServer` for fast tests of the layers above.

Same public methods and error types (create/stat/read/open_read/delete/
collect_garbage/defragment/objects/usage), no files and no durability.
Block maps are computed with the real layout so ``stat()`` looks the same;
block numbers are simply allocation counters per pool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path

from ostor.common.errors import ObjectNotFoundError, ServiceStoppedError, TruncatedStreamError
from ostor.common.frames import FRAME_SIZE, Frame
from ostor.common.ids import object_id_bytes
from ostor.common.worker import Worker
from ostor.objectserver.index import expected_layout
from ostor.objectserver.layout import BLOCK_SIZES
from ostor.objectserver.lock import ObjectExistsError
from ostor.objectserver.types import (CreateResult, Extent, ObjectServerConfig, ObjectStat,
                                      PieceLocation, VerifyReport)


class MemoryReadHandle:
    """A pinned range of an in-memory object; ``extents`` is always empty."""

    def __init__(self, server: MemoryObjectServer, object_id: bytes, data: bytes,
                 offset: int, length: int) -> None:
        self.object_id = object_id
        self.size = len(data)
        self.offset = offset
        self.length = length
        self.extents: list[Extent] = []
        self._server = server
        self._data = data
        self._open = True
        server._pins[object_id] += 1

    def read(self) -> bytes:
        """The pinned range's bytes."""
        if not self._open:
            raise ValueError("read handle is closed")
        return self._data[self.offset:self.offset + self.length]

    def close(self) -> None:
        """Unpin (idempotent)."""
        if self._open:
            self._open = False
            self._server._pins[self.object_id] -= 1
            if self._server._pins[self.object_id] <= 0:
                del self._server._pins[self.object_id]

    def __enter__(self) -> MemoryReadHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryObjectServer:
    """Object server semantics kept in a dict: live objects, and deleted ones awaiting GC."""

    def __init__(self, service_id: int = 0x10 << 56, directory: Path | None = None,
                 config: ObjectServerConfig | None = None) -> None:
        self.service_id = service_id
        self.directory = directory or Path("/nonexistent/memory-object-server")
        self.config = config or ObjectServerConfig(fsync=False)
        self._objects: dict[bytes, tuple[bytes, tuple[PieceLocation, ...]]] = {}
        self._dirty: dict[bytes, bytes] = {}  # deleted, awaiting GC
        self._pending: set[bytes] = set()
        self._pins: Counter[bytes] = Counter()
        self._next_block = [0] * len(BLOCK_SIZES)
        self._closed = False
        self.gc_worker = Worker("memory-os-gc", self._gc_step, self.config.gc_interval)
        self.defrag_worker = Worker("memory-os-defrag", self._idle_step,
                                    self.config.defrag_interval)

    @classmethod
    async def open(cls, directory: Path | None = None, service_id: int = 0x10 << 56,
                   config: ObjectServerConfig | None = None) -> MemoryObjectServer:
        """Return a new, empty in-memory server (signature mirrors ObjectServer.open)."""
        return cls(service_id, directory, config)

    async def start(self) -> None:
        """Start the (in-memory) GC worker."""
        self.gc_worker.start()
        self.defrag_worker.start()

    async def close(self) -> None:
        """Stop the workers; later calls raise ServiceStoppedError."""
        self._closed = True
        await self.gc_worker.stop()
        await self.defrag_worker.stop()

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceStoppedError("memory object server is closed")

    async def create(self, object_id: bytes, frames: AsyncIterable[Frame], *,
                     defer_sync: bool = False) -> CreateResult:
        """Collect the frames; TruncatedStreamError if the stream lacks end-of-data.

        Memory is never synced: ``defer_sync`` changes nothing (``unsynced`` stays empty).
        """
        oid = object_id_bytes(object_id)
        self._check_open()
        if oid in self._objects or oid in self._pending:
            raise ObjectExistsError(oid)
        self._pending.add(oid)
        try:
            parts = []
            eod = False
            async for frame in frames:
                parts.append(bytes(frame.data))
                if frame.eod:
                    eod = True
                    break
            if not eod:
                raise TruncatedStreamError(f"object {oid.hex()}: stream ended without end-of-data")
            data = b"".join(parts)
            pieces = []
            for offset, block_size, used in expected_layout(len(data)):
                pool = BLOCK_SIZES.index(block_size)
                pieces.append(PieceLocation(block_size, self._next_block[pool], used, offset))
                self._next_block[pool] += 1
            self._objects[oid] = (data, tuple(pieces))
            return CreateResult(oid, len(data))
        finally:
            self._pending.discard(oid)

    def _get(self, object_id: bytes) -> tuple[bytes, tuple[PieceLocation, ...]]:
        found = self._objects.get(bytes(object_id))
        if found is None:
            raise ObjectNotFoundError(bytes(object_id))
        return found

    def stat(self, object_id: bytes) -> ObjectStat:
        """Size and block map; ObjectNotFoundError if unknown."""
        data, pieces = self._get(object_id)
        return ObjectStat(bytes(object_id), len(data), pieces)

    def __contains__(self, object_id: object) -> bool:
        return isinstance(object_id, (bytes, bytearray)) and bytes(object_id) in self._objects

    def objects(self) -> Iterator[ObjectStat]:
        """All live objects."""
        for oid, (data, pieces) in list(self._objects.items()):
            yield ObjectStat(oid, len(data), pieces)

    def open_read(self, object_id: bytes, offset: int = 0,
                  length: int | None = None) -> MemoryReadHandle:
        """Pin an object's range; ``.read()`` returns its bytes."""
        self._check_open()
        data, _ = self._get(object_id)
        if length is None:
            length = len(data) - offset
        if offset < 0 or length < 0 or offset + length > len(data):
            raise ValueError(f"range {offset}+{length} outside object of {len(data)} bytes")
        return MemoryReadHandle(self, bytes(object_id), data, offset, length)

    async def read(self, object_id: bytes, offset: int = 0,
                   length: int | None = None) -> AsyncIterator[Frame]:
        """Yield the range as frames of at most FRAME_SIZE bytes, the last with eod=True."""
        with self.open_read(object_id, offset, length) as handle:
            data = handle.read()
        if not data:
            yield Frame(b"", True)
            return
        for pos in range(0, len(data), FRAME_SIZE):
            yield Frame(data[pos:pos + FRAME_SIZE], pos + FRAME_SIZE >= len(data))

    async def delete(self, object_ids: Iterable[bytes]) -> int:
        """Drop objects from the live set (they wait for GC); returns how many existed."""
        self._check_open()
        found = 0
        for object_id in object_ids:
            entry = self._objects.pop(bytes(object_id), None)
            if entry is not None:
                found += 1
                self._dirty[bytes(object_id)] = entry[0]
        return found

    async def collect_garbage(self) -> int:
        """Forget deleted objects nobody pins; returns how many 'blocks' that freed."""
        freed = 0
        for oid in list(self._dirty):
            if self._pins.get(oid):
                continue
            freed += len(expected_layout(len(self._dirty.pop(oid))))
        return freed

    async def defragment(self, max_moves: int | None = None) -> int:
        """Nothing to compact in memory; returns 0."""
        return 0

    async def _gc_step(self) -> bool:
        await self.collect_garbage()
        return False

    async def _idle_step(self) -> bool:
        return False

    def verify(self) -> VerifyReport:
        """Counts only: memory cannot be damaged."""
        return VerifyReport(objects_checked=len(self._objects))

    def usage(self) -> dict:
        """Totals in the same shape as ObjectServer.usage() (no per-pool files)."""
        used = sum(len(p) for _, p in self._objects.values())
        dirty = sum(len(expected_layout(len(d))) for d in self._dirty.values())
        return {"pools": [], "used_blocks": used, "dirty_blocks": dirty, "free_blocks": 0,
                "file_bytes": 0, "objects": len(self._objects),
                "used_bytes": sum(len(d) for d, _ in self._objects.values())}
