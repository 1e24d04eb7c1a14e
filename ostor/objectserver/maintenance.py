"""Background maintenance of an object server: garbage collection, defragmentation, checks.

GC frees *dirty* blocks (deleted objects) that no reader pins. Defragmentation
moves live blocks from a pool file's tail into its lowest holes and truncates
the file; it finds the owner of a block from the block header alone (as the
seed asks: no name server involved), then checks the index. A move is
crash-safe: copy data, write the new header and used bit, fdatasync, then
switch the index and clear the old bit. Recovery keeps one of two blocks with
the same (object, piece) if a crash falls in between.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from ostor.objectserver.types import Damage, PoolUsage, VerifyReport

if TYPE_CHECKING:
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from ostor.objectserver.direct import AlignedBuffers
    from ostor.objectserver.flush import GroupCommit
    from ostor.objectserver.index import Entry
    from ostor.objectserver.pool import BlockHeader, Pool
    from ostor.objectserver.types import ObjectServerConfig


class MaintenanceMixin:
    """GC, defragmentation, verify and usage for :class:`ObjectServer`."""

    config: ObjectServerConfig
    flusher: GroupCommit
    _pools: list[Pool]
    _index: dict[bytes, Entry]
    _pins: Counter[tuple[int, int]]
    _io: ThreadPoolExecutor
    _buffers: AlignedBuffers

    def _begin(self) -> None: ...  # provided by ObjectServer

    def _end(self) -> None: ...

    def _release_when_done(self, pool: Pool, block: int, cfut: object) -> None: ...

    # ----- garbage collection ---------------------------------------------------------

    async def collect_garbage(self) -> int:
        """One GC pass: free every dirty block nobody pins; returns how many were freed."""
        self._begin()
        try:
            freed = 0
            fds = set()
            for pi, pool in enumerate(self._pools):
                punch = 0 < self.config.punch_holes_from <= pool.block_size
                for block in sorted(pool.dirty_blocks):
                    if (pi, block) in self._pins:
                        continue  # a reader still streams this deleted object
                    pool.release(block)
                    if punch:
                        pool.punch_hole(block)
                    freed += 1
                    fds.add(pool.fd)
                pool.truncate_tail()
            if fds:
                # Not needed for safety (a lost free is redone after restart),
                # but it keeps the on-disk state close to memory.
                await self.flusher.commit(fds)
            return freed
        finally:
            self._end()

    async def _gc_step(self) -> bool:
        await self.collect_garbage()
        self._buffers.release_idle()  # the direct-write buffers of a finished upload burst
        return False  # one pass frees everything that can be freed now

    # ----- defragmentation ------------------------------------------------------------

    async def defragment(self, max_moves: int | None = None) -> int:
        """Move tail blocks into holes in every pool, then truncate; returns blocks moved."""
        moved = 0
        for pi in range(len(self._pools)):
            budget = None if max_moves is None else max_moves - moved
            if budget is not None and budget <= 0:
                break
            moved += await self._defragment_pool(pi, budget)
        return moved

    async def _defrag_step(self) -> bool:
        moved = 0
        for pi, pool in enumerate(self._pools):
            holes = pool.free_in_file()
            span = pool.last_used() + 1
            if holes >= self.config.defrag_min_free and holes > self.config.defrag_threshold * span:
                moved += await self._defragment_pool(pi, self.config.defrag_batch)
        return moved > 0

    async def _defragment_pool(self, pi: int, budget: int | None) -> int:
        pool = self._pools[pi]
        moved = 0
        candidate = pool.last_used()
        while budget is None or moved < budget:
            hole = pool.lowest_free()
            if hole is None:
                break
            found = None
            while candidate > hole:
                found = self._movable(pi, candidate)
                if found is not None:
                    break
                candidate -= 1
            if found is None:
                break
            if await self._move(pi, candidate, *found):
                moved += 1
            candidate -= 1
        pool.truncate_tail()
        return moved

    def _movable(self, pi: int, block: int) -> tuple[BlockHeader, Entry] | None:
        """The header and live entry owning ``block`` if it may be moved now."""
        pool = self._pools[pi]
        if not pool.is_used(block) or pool.is_dirty(block):
            return None
        header = pool.read_header(block)
        if header is None:
            return None  # reserved by a create in progress (header not written yet)
        entry = self._index.get(header.object_id)
        if entry is None or entry.pins or header.piece_index >= len(entry.pieces):
            return None
        piece = entry.pieces[header.piece_index]
        if piece.pool != pi or piece.block != block:
            return None  # a stale header in a block reserved by someone else
        return header, entry

    async def _move(self, pi: int, old: int, header: BlockHeader, entry: Entry) -> bool:
        pool = self._pools[pi]
        self._begin()
        try:
            new = pool.allocate()
            wfut = None
            try:
                loop = asyncio.get_running_loop()
                big = header.used >= self.config.thread_io_from
                data = (await loop.run_in_executor(self._io, pool.read_data, old, header.used)
                        if big else pool.read_data(old, header.used))
                if pool.data_crc(data) != header.data_crc:
                    pool.release(new)
                    return False  # damaged: leave it where verify() can report it
                if big:
                    wfut = self._io.submit(pool.write_data, new, data)
                    await asyncio.wrap_future(wfut)
                else:
                    pool.write_data(new, data)
                pool.write_header(new, header)
                pool.set_used(new, True)
                await self.flusher.commit([pool.fd])
            except BaseException:
                self._release_when_done(pool, new, wfut)
                raise
            piece = entry.pieces[header.piece_index]
            if (self._index.get(entry.object_id) is not entry or entry.pins
                    or piece.block != old):
                pool.release(new)  # deleted or pinned meanwhile: keep the old copy
                return False
            piece.block = new
            pool.release(old)
            return True
        finally:
            self._end()

    # ----- checks and accounting ------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Read every live object's blocks and compare them with their headers."""
        report = VerifyReport()
        for entry in list(self._index.values()):
            report.objects_checked += 1
            for idx, p in enumerate(entry.pieces):
                pool = self._pools[p.pool]
                where = f"piece {idx} ({pool.block_size}-byte pool, block {p.block})"
                header = pool.read_header(p.block)
                reason = None
                if header is None:
                    reason = f"{where}: invalid header record"
                elif header.object_id != entry.object_id:
                    reason = f"{where}: header names object {header.object_id.hex()}"
                elif (header.piece_index, header.piece_count, header.used, header.total_size) != (
                        idx, len(entry.pieces), p.used, entry.size):
                    reason = f"{where}: header does not match the block map"
                elif pool.data_crc(pool.read_data(p.block, p.used)) != header.data_crc:
                    reason = f"{where}: data crc mismatch"
                if reason is not None:
                    report.damaged.append(Damage(entry.object_id, reason))
                    break
                report.blocks_checked += 1
        report.pools = self._pool_usage()
        return report

    def _pool_usage(self) -> list[PoolUsage]:
        out = []
        for pool in self._pools:
            dirty = len(pool.dirty_blocks)
            out.append(PoolUsage(pool.block_size, pool.used_count - dirty, dirty,
                                 pool.free_in_file(), pool.file_size()))
        return out

    def usage(self) -> dict:
        """Per-pool block counts and file sizes, plus totals.

        ``{"pools": [{"block_size", "used", "dirty", "free", "file_bytes"}, ...],
        "used_blocks", "dirty_blocks", "free_blocks", "file_bytes", "objects",
        "used_bytes"}`` — ``used`` counts live and reserved blocks, ``free`` the
        holes inside the file, ``used_bytes`` the live objects' sizes.
        """
        pools = [dataclasses.asdict(u) for u in self._pool_usage()]
        return {
            "pools": pools,
            "used_blocks": sum(p["used"] for p in pools),
            "dirty_blocks": sum(p["dirty"] for p in pools),
            "free_blocks": sum(p["free"] for p in pools),
            "file_bytes": sum(p["file_bytes"] for p in pools),
            "objects": len(self._index),
            "used_bytes": sum(e.size for e in self._index.values()),
        }

