"""Creating objects on an object server: pieces streamed to the pools, then headers, bits, one fsync.

A create streams pieces to the pools as data arrives (at most one 8 MiB piece
is buffered, two more may be in flight), then writes the block headers and
used bits and is acknowledged only after a group-committed fdatasync. With
``defer_sync`` it is acknowledged at once, and the fdatasync of the pools it
wrote is left to the caller (``CreateResult.unsynced``): the embedded engine
has the name server run it in its commit thread right before the commit that
names the data, so a PUT waits for one durability stage instead of two. Full
8 MiB pieces go out with O_DIRECT from reused aligned buffers where the
filesystem allows it (:mod:`ostor.objectserver.direct`); smaller ones are
buffered writes, in an I/O thread from ``thread_io_from`` bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ostor.common.errors import TruncatedStreamError
from ostor.common.frames import Frame
from ostor.common.ids import object_id_bytes
from ostor.objectserver.direct import fill, write_direct
from ostor.objectserver.fileio import allocate_range, start_writeback
from ostor.objectserver.index import Entry, Piece
from ostor.objectserver.layout import MAX_BLOCK, pool_index, split_sizes
from ostor.objectserver.lock import ObjectExistsError
from ostor.objectserver.pool import BlockHeader, Pool
from ostor.objectserver.types import CreateResult

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ostor.objectserver.direct import AlignedBuffers
    from ostor.objectserver.flush import GroupCommit
    from ostor.objectserver.types import ObjectServerConfig

_WRITES_IN_FLIGHT = 2  # 8 MiB pieces being copied while the stream goes on
_MAX_POOL = pool_index(MAX_BLOCK)


class CreateMixin:
    """The create path of :class:`ObjectServer`."""

    config: ObjectServerConfig
    flusher: GroupCommit
    _pools: list[Pool]
    _index: dict[bytes, Entry]
    _pending: set[bytes]
    _io: ThreadPoolExecutor
    _buffers: AlignedBuffers

    def _check_open(self) -> None: ...  # provided by ObjectServer

    def _begin(self) -> None: ...

    def _end(self) -> None: ...

    async def create(self, object_id: bytes, frames: AsyncIterable[Frame], *,
                     defer_sync: bool = False) -> CreateResult:
        """Store an object streamed as frames; returns once data and block map are durable.

        ``defer_sync``: return once written instead; the result's ``unsynced`` calls
        make it durable, and nothing may name the data before they all returned.
        """
        oid = object_id_bytes(object_id)
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
            pools: dict[int, Pool] = {}
            for idx, (pi, block, used, crc, _) in enumerate(written):
                pool = pools[pi] = self._pools[pi]
                pool.write_header(block, BlockHeader(oid, idx, len(written), used, size, crc, now))
                pool.set_used(block, True)
            if defer_sync and self.flusher.fsync:
                unsynced = tuple(pool.owed_sync() for pool in pools.values())
            else:
                unsynced = ()
                await self.flusher.commit(pool.fd for pool in pools.values())
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
        return CreateResult(oid, size, unsynced)

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
                record[4] = self._io.submit(write_direct, pool, direct_fd, pool.data_offset(block), buffer,
                                            self._buffers)
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


def _write_and_crc(pool: Pool, block: int, data: memoryview) -> int:
    # Runs in the I/O thread for big pieces: both the copy and the crc release the GIL.
    offset = pool.data_offset(block)
    # Allocating the extent in one call before writing is ~1.5x faster on ext4 than
    # letting page-by-page delayed allocation find space for a fresh 8 MiB block.
    allocate_range(pool.fd, offset, len(data))
    pool.write_data(block, data)
    start_writeback(pool.fd, offset, len(data))
    return pool.data_crc(data)
