"""The object server: one service directory of 12 pool files, an index, and the data paths.

Creates (:mod:`ostor.objectserver.writes`) stream pieces to the pools and are
acknowledged only after a group-committed fdatasync. Reads pin the object so that GC and
defragmentation (see :mod:`ostor.objectserver.maintenance`) never free or move
the blocks under a reader. Everything except fdatasync and large piece I/O runs
on the event-loop thread, which is also what serialises access to the bitmaps.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ostor.common.errors import ObjectNotFoundError, ServiceStoppedError
from ostor.common.frames import FRAME_SIZE, Frame
from ostor.common.ids import format_id
from ostor.common.worker import Worker
from ostor.objectserver.flush import GroupCommit
from ostor.objectserver.index import Entry, RepairStats, rebuild_index
from ostor.objectserver.layout import BLOCK_SIZES, MAX_BLOCK
from ostor.objectserver.lock import ServiceMissingError, acquire_lock, release_lock
from ostor.objectserver.leases import LeaseMixin
from ostor.objectserver.maintenance import MaintenanceMixin
from ostor.objectserver.direct import AlignedBuffers
from ostor.objectserver.fileio import pread_exact, will_need
from ostor.objectserver.pool import Pool
from ostor.objectserver.types import Extent, ObjectServerConfig, ObjectStat
from ostor.objectserver.writes import CreateMixin

SERVICE_FILE = "service"
READ_AHEAD_BYTES = 8 << 20  # streamed reads from this size hint the kernel to read every piece ahead


def pool_file_name(block_size: int) -> str:
    """File name of the pool with this block size (pool-4k.dat … pool-8m.dat)."""
    if block_size >= 1 << 20:
        return f"pool-{block_size >> 20}m.dat"
    return f"pool-{block_size >> 10}k.dat"


def _stat(entry: Entry) -> ObjectStat:
    return ObjectStat(entry.object_id, entry.size, tuple(p.location() for p in entry.pieces))


class ReadHandle:
    """A pinned byte range of one object: ``extents`` for sendfile, ``read()`` for bytes.

    Use as a context manager; until it is closed GC and defragmentation leave
    the object's blocks alone, even if the object is deleted meanwhile.
    """

    def __init__(self, server: ObjectServer, entry: Entry, offset: int, length: int) -> None:
        self.object_id = entry.object_id
        self.size = entry.size
        self.offset = offset
        self.length = length
        self._server = server
        self._entry = entry
        self._keys = [(p.pool, p.block) for p in entry.pieces]
        self.extents = server._extents(entry, offset, length)
        entry.pins += 1
        pins = server._pins
        for key in self._keys:  # by hand: a sixth of the cost of Counter.update and .subtract
            pins[key] = pins.get(key, 0) + 1
        self._open = True

    def read(self) -> bytes:
        """Read the whole range (preads on the calling thread)."""
        if not self._open:
            raise ValueError("read handle is closed")
        if len(self.extents) == 1:
            e = self.extents[0]
            return pread_exact(e.fd, e.length, e.file_offset)
        return b"".join(pread_exact(e.fd, e.length, e.file_offset) for e in self.extents)

    def close(self) -> None:
        """Unpin the object (idempotent)."""
        if self._open:
            self._open = False
            self._entry.pins -= 1
            pins = self._server._pins
            for key in self._keys:
                left = pins[key] - 1
                if left > 0:
                    pins[key] = left
                else:
                    del pins[key]

    def __enter__(self) -> ReadHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ObjectServer(CreateMixin, MaintenanceMixin, LeaseMixin):
    """One object server service: pools, index, group commit, GC and defrag workers."""

    def __init__(self, directory: Path, service_id: int, config: ObjectServerConfig,
                 pools: list[Pool], lock_fd: int, index: dict[bytes, Entry],
                 repairs: RepairStats, flusher: GroupCommit | None = None) -> None:
        self.directory = directory
        self.service_id = service_id
        self.config = config
        self.repairs = repairs
        self._pools = pools
        self._lock_fd = lock_fd
        self._index = index
        self._pending: set[bytes] = set()      # object ids of creates in progress
        self._pins: Counter[tuple[int, int]] = Counter()  # (pool, block) -> readers
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        self._closed = False
        self._closing = False
        # Object servers of one process may share a flusher: one round then syncs the
        # files of all of them, so concurrent writers share even more fdatasyncs.
        self._owns_flusher = flusher is None
        self.flusher = flusher or GroupCommit(config.fsync)
        self._io = ThreadPoolExecutor(config.io_threads, thread_name_prefix="ostor-os-io")
        self._buffers = AlignedBuffers(MAX_BLOCK, keep=config.io_threads * 2)
        name = format_id(service_id)
        self.gc_worker = Worker(f"os-{name}-gc", self._gc_step, config.gc_interval)
        self.defrag_worker = Worker(f"os-{name}-defrag", self._defrag_step, config.defrag_interval)

    # ----- lifecycle ------------------------------------------------------------------

    @classmethod
    def create_service(cls, directory: Path, service_id: int) -> None:
        """Create the service directory with 12 empty pool files; FileExistsError if it exists."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=False)
        for block_size in BLOCK_SIZES:
            Pool.create_file(directory / pool_file_name(block_size), block_size)
        (directory / SERVICE_FILE).write_text(format_id(service_id) + "\n")
        (directory / "lock").touch()

    @classmethod
    async def open(cls, directory: Path, service_id: int,
                   config: ObjectServerConfig | None = None, *,
                   flusher: GroupCommit | None = None) -> ObjectServer:
        """Lock, validate and index an existing service directory (the scan runs in a thread).

        ``flusher`` lets several object servers of one process share one group commit.
        """
        return await asyncio.to_thread(cls._open_sync, Path(directory), service_id,
                                       config or ObjectServerConfig(), flusher)

    @classmethod
    def _open_sync(cls, directory: Path, service_id: int,
                   config: ObjectServerConfig, flusher: GroupCommit | None = None) -> ObjectServer:
        if not (directory / SERVICE_FILE).is_file():
            raise ServiceMissingError(directory)
        lock_fd = acquire_lock(directory)
        pools: list[Pool] = []
        try:
            recorded = (directory / SERVICE_FILE).read_text().strip()
            if recorded != format_id(service_id):
                raise ServiceMissingError(directory)
            for block_size in BLOCK_SIZES:
                pools.append(Pool.open_file(directory / pool_file_name(block_size), block_size))
            index, repairs = rebuild_index(pools)
            if repairs.changed and config.fsync:
                for pool in pools:
                    os.fdatasync(pool.fd)
        except BaseException:
            for pool in pools:
                pool.close()
            release_lock(lock_fd)
            raise
        return cls(directory, service_id, config, pools, lock_fd, index, repairs, flusher)

    async def start(self) -> None:
        """Start the GC and defragmentation workers."""
        self._check_open()
        self.gc_worker.start()
        self.defrag_worker.start()

    async def close(self) -> None:
        """Stop workers, wait for in-flight writes, close the pool files, release the lock."""
        if self._closing:
            return
        self._closing = True
        # Workers first: a step still running once requests are refused would fail, and log it.
        await self.gc_worker.stop()
        await self.defrag_worker.stop()
        self._closed = True
        self.release_all_leases()
        while self._inflight:
            self._idle = asyncio.Event()
            await self._idle.wait()
        if self._owns_flusher:
            await self.flusher.close()
        else:
            await self.flusher.drain()
        self._io.shutdown(wait=True)
        self._buffers.close()
        for pool in self._pools:
            pool.close()
        release_lock(self._lock_fd)

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceStoppedError(f"object server {format_id(self.service_id)} is closed")

    def _begin(self) -> None:
        self._check_open()
        self._inflight += 1

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._idle is not None:
            self._idle.set()

    # ----- lookups and reads ------------------------------------------------------------

    def _entry(self, object_id: bytes) -> Entry:
        entry = self._index.get(bytes(object_id))
        if entry is None:
            raise ObjectNotFoundError(bytes(object_id))
        return entry

    def stat(self, object_id: bytes) -> ObjectStat:
        """Size and block map of a live object; ObjectNotFoundError if unknown."""
        return _stat(self._entry(object_id))

    def __contains__(self, object_id: object) -> bool:
        return isinstance(object_id, (bytes, bytearray)) and bytes(object_id) in self._index

    def objects(self) -> Iterator[ObjectStat]:
        """All live (not deleted) objects."""
        for entry in list(self._index.values()):
            yield _stat(entry)

    def _extents(self, entry: Entry, offset: int, length: int) -> list[Extent]:
        end = offset + length
        pieces = entry.pieces
        out: list[Extent] = []
        i = max(0, bisect.bisect_right(pieces, offset, key=lambda p: p.offset) - 1)
        while i < len(pieces) and pieces[i].offset < end:
            p = pieces[i]
            start, stop = max(offset, p.offset), min(end, p.offset + p.used)
            if start < stop:
                pool = self._pools[p.pool]
                out.append(Extent(pool.fd, pool.data_offset(p.block) + start - p.offset,
                                  stop - start))
            i += 1
        return out

    def open_read(self, object_id: bytes, offset: int = 0, length: int | None = None) -> ReadHandle:
        """Pin an object and return the extents covering ``[offset, offset+length)``."""
        self._check_open()
        entry = self._entry(object_id)
        if length is None:
            length = entry.size - offset
        if offset < 0 or length < 0 or offset + length > entry.size:
            raise ValueError(f"range {offset}+{length} outside object of {entry.size} bytes")
        return ReadHandle(self, entry, offset, length)

    async def read(self, object_id: bytes, offset: int = 0,
                   length: int | None = None) -> AsyncIterator[Frame]:
        """Yield the range as frames of at most FRAME_SIZE bytes, the last with eod=True."""
        with self.open_read(object_id, offset, length) as handle:
            chunks = [(e.fd, e.file_offset + pos, min(FRAME_SIZE, e.length - pos))
                      for e in handle.extents for pos in range(0, e.length, FRAME_SIZE)]
            if not chunks:
                yield Frame(b"", True)
                return
            loop = asyncio.get_running_loop()
            if handle.length >= READ_AHEAD_BYTES:
                await loop.run_in_executor(self._io, will_need, handle.extents)
            last = len(chunks) - 1
            for k, (fd, off, n) in enumerate(chunks):
                if n >= self.config.thread_io_from:
                    data = await loop.run_in_executor(self._io, pread_exact, fd, n, off)
                else:
                    data = pread_exact(fd, n, off)
                yield Frame(data, k == last)

    # ----- delete -----------------------------------------------------------------------

    async def delete(self, object_ids: Iterable[bytes]) -> int:
        """Mark objects deleted (durably) and drop them from the index; returns how many existed."""
        self._begin()
        try:
            found = 0
            fds = set()
            for object_id in object_ids:
                entry = self._index.pop(bytes(object_id), None)
                if entry is None:
                    continue
                found += 1
                for p in entry.pieces:
                    pool = self._pools[p.pool]
                    pool.set_dirty(p.block, True)
                    fds.add(pool.fd)
            if fds:
                await self.flusher.commit(fds)
        finally:
            self._end()
        if found:
            self.gc_worker.wake()
        return found
