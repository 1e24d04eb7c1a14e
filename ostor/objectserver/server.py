"""The object server: one service directory of 12 pool files, an index, and the data paths.

Creates stream pieces to the pools as data arrives (at most one 8 MiB piece is
buffered), write headers and used bits at the end, and are acknowledged only
after a group-committed fdatasync. Reads pin the object so that GC and
defragmentation (see :mod:`ostor.objectserver.maintenance`) never free or move
the blocks under a reader. Everything except fdatasync and large piece I/O runs
on the event-loop thread, which is also what serialises access to the bitmaps.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ostor.common.errors import ObjectNotFoundError, ServiceStoppedError, TruncatedStreamError
from ostor.common.frames import FRAME_SIZE, Frame
from ostor.common.ids import OBJECT_ID_BYTES, format_id
from ostor.common.worker import Worker
from ostor.objectserver.flush import GroupCommit
from ostor.objectserver.index import Entry, Piece, RepairStats, rebuild_index
from ostor.objectserver.layout import BLOCK_SIZES, MAX_BLOCK, pool_index, split_sizes
from ostor.objectserver.lock import (ObjectExistsError, ServiceMissingError, acquire_lock,
                                     release_lock)
from ostor.objectserver.leases import LeaseMixin
from ostor.objectserver.maintenance import MaintenanceMixin
from ostor.objectserver.direct import AlignedBuffers, fill, write_direct
from ostor.objectserver.fileio import allocate_range, pread_exact, start_writeback, will_need
from ostor.objectserver.pool import BlockHeader, Pool
from ostor.objectserver.types import CreateResult, Extent, ObjectServerConfig, ObjectStat

SERVICE_FILE = "service"
_WRITES_IN_FLIGHT = 2  # 8 MiB pieces being copied while the stream goes on
READ_AHEAD_BYTES = 8 << 20  # streamed reads from this size hint the kernel to read every piece ahead
_MAX_POOL = pool_index(MAX_BLOCK)


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
        server._pins.update(self._keys)
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
            self._server._pins.subtract(self._keys)
            for key in self._keys:
                if self._server._pins[key] <= 0:
                    del self._server._pins[key]

    def __enter__(self) -> ReadHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ObjectServer(MaintenanceMixin, LeaseMixin):
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
        if self._closed:
            return
        self._closed = True
        self.release_all_leases()
        await self.gc_worker.stop()
        await self.defrag_worker.stop()
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

    # ----- create ---------------------------------------------------------------------

    async def create(self, object_id: bytes, frames: AsyncIterable[Frame]) -> CreateResult:
        """Store an object streamed as frames; returns once data and block map are durable."""
        oid = bytes(object_id)
        if len(oid) != OBJECT_ID_BYTES:
            raise ValueError(f"object id must be {OBJECT_ID_BYTES} bytes")
        self._check_open()
        if oid in self._index or oid in self._pending:
            raise ObjectExistsError(oid)
        self._begin()
        self._pending.add(oid)
        written: list[list] = []  # [pool, block, used, crc, thread future] per piece, in order
        try:
            parts: list[bytes | memoryview] = []
            buffered = 0
            eod = False
            async for frame in frames:
                data = frame.data
                if data:
                    if isinstance(data, memoryview) and not data.readonly:
                        data = bytes(data)  # the producer may reuse a writable buffer
                    parts.append(data)
                    buffered += len(data)
                    if buffered >= MAX_BLOCK:
                        parts, buffered = await self._write_full_pieces(parts, written)
                if frame.eod:
                    eod = True
                    break
            if not eod:
                raise TruncatedStreamError(f"object {oid.hex()}: stream ended without end-of-data")
            tail = parts[0] if len(parts) == 1 else b"".join(parts)
            view, pos = memoryview(tail), 0
            for block_size, used in split_sizes(len(tail)):
                await self._write_piece(pool_index(block_size), view[pos:pos + used], written)
                pos += used
            await self._settle_writes(written)
            if not written:  # an empty object keeps one zero-length 4 KiB piece on disk
                written.append([0, self._pools[0].allocate(), 0, 0, None])
            size = sum(w[2] for w in written)
            now = time.time_ns()
            fds = set()
            for idx, (pi, block, used, crc, _) in enumerate(written):
                pool = self._pools[pi]
                pool.write_header(block, BlockHeader(oid, idx, len(written), used, size, crc, now))
                pool.set_used(block, True)
                fds.add(pool.fd)
            await self.flusher.commit(fds)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                # A failed stream: let threaded piece writes finish so their blocks free now.
                for record in written:
                    if record[4] is not None and not record[4].done():
                        try:
                            await asyncio.wrap_future(record[4])
                        except Exception:
                            pass
            for pi, block, _, _, cfut in written:
                self._release_when_done(self._pools[pi], block, cfut)
            raise
        finally:
            self._pending.discard(oid)
            self._end()
        pieces, offset = [], 0
        for pi, block, used, _, _ in written:
            pieces.append(Piece(pi, block, used, offset))
            offset += used
        self._index[oid] = Entry(oid, size, pieces, now)
        return CreateResult(oid, size)

    async def _write_full_pieces(self, parts: list, written: list[list]) -> tuple[list, int]:
        pool = self._pools[_MAX_POOL]
        direct_fd = pool.direct_fd() if self.config.direct_io else None
        if direct_fd is not None:
            views = [memoryview(p) for p in parts]
            buffered = sum(len(v) for v in views)
            while buffered >= MAX_BLOCK:
                buffer = self._buffers.take()
                views = fill(buffer, views)  # the one copy of the stream's bytes
                buffered -= MAX_BLOCK
                block = pool.allocate()
                record = [_MAX_POOL, block, MAX_BLOCK, None, None]
                written.append(record)
                record[4] = self._io.submit(write_direct, direct_fd, pool.data_offset(block), buffer,
                                            self._buffers, pool.data_crc)
            await self._settle_writes(written, keep=_WRITES_IN_FLIGHT)
            return views, buffered
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        view, pos = memoryview(joined), 0
        while len(joined) - pos >= MAX_BLOCK:
            # Not awaited: the next pieces keep arriving (and being hashed upstream)
            # while this one is copied to the pool in an I/O thread.
            await self._write_piece(_MAX_POOL, view[pos:pos + MAX_BLOCK], written, wait=False)
            pos += MAX_BLOCK
        await self._settle_writes(written, keep=_WRITES_IN_FLIGHT)
        rest = joined[pos:]
        return ([rest] if rest else []), len(rest)

    @staticmethod
    async def _settle_writes(written: list[list], keep: int = 0) -> None:
        """Wait for threaded piece writes until at most ``keep`` are still running."""
        running = [record for record in written if record[4] is not None and record[3] is None]
        for record in running[: max(0, len(running) - keep)]:
            record[3] = await asyncio.wrap_future(record[4])

    def _release_when_done(self, pool: Pool, block: int, cfut: Future | None) -> None:
        """Free a reserved block, but only once no I/O thread still writes into it.

        A cancelled await does not stop a thread already running a pwrite;
        freeing the block at once could let that late write land in a block a
        new object has since been given.
        """
        if cfut is None or cfut.done():
            pool.release(block)
            return
        loop = asyncio.get_running_loop()

        def later(_: Future) -> None:
            try:
                loop.call_soon_threadsafe(pool.release, block)
            except RuntimeError:  # loop already closed: the process is exiting
                pass

        cfut.add_done_callback(later)

    async def _write_piece(self, pi: int, data: memoryview, written: list[list], wait: bool = True) -> None:
        pool = self._pools[pi]
        block = pool.allocate()
        record = [pi, block, len(data), None, None]  # crc stays None until the write is done
        written.append(record)  # before the write, so a failure releases the block
        if len(data) >= self.config.thread_io_from:
            record[4] = cfut = self._io.submit(_write_and_crc, pool, block, data)
            if wait:
                record[3] = await asyncio.wrap_future(cfut)
        else:
            pool.write_data(block, data)
            record[3] = pool.data_crc(data)

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


def _write_and_crc(pool: Pool, block: int, data: memoryview) -> int:
    # Runs in the I/O thread for big pieces: both the copy and the crc release the GIL.
    offset = pool.data_offset(block)
    # Allocating the extent in one call before writing is ~1.5x faster on ext4 than
    # letting page-by-page delayed allocation find space for a fresh 8 MiB block.
    allocate_range(pool.fd, offset, len(data))
    pool.write_data(block, data)
    start_writeback(pool.fd, offset, len(data))
    return pool.data_crc(data)
