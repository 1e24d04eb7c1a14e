"""The in-memory object index and its rebuild (with crash repair) from the pool files.

The pools are the only truth: at open every used block's header record is read
and the index ``object_id -> Entry`` is rebuilt from them. Repair rules for the
states a crash can leave behind:

* used bit set but header record invalid (torn, never written) → block freed;
* valid header but used bit clear → free (nothing to do: only used blocks are read);
* header inconsistent with the object's layout (wrong pool or used length) → freed;
* an object missing some of its pieces → it was never acknowledged, all its blocks freed;
* two blocks with the same (object id, piece index) → defrag crashed mid-move:
  keep the one whose data matches its crc (the lower block on a tie), free the other;
* some but not all pieces dirty → a delete was in flight: the whole object is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ostor.objectserver.layout import BLOCK_SIZES, MIN_BLOCK, piece_offsets
from ostor.objectserver.pool import BITMAP_BYTES, BLOCKS_PER_REGION, HEADER_SIZE, BlockHeader, Pool
from ostor.objectserver.types import PieceLocation


class Piece:
    """One piece of a live object: its pool (index), block, used bytes and object offset."""

    __slots__ = ("pool", "block", "used", "offset")

    def __init__(self, pool: int, block: int, used: int, offset: int) -> None:
        self.pool = pool
        self.block = block
        self.used = used
        self.offset = offset

    def location(self) -> PieceLocation:
        """The public, immutable view of this piece."""
        return PieceLocation(BLOCK_SIZES[self.pool], self.block, self.used, self.offset)


class Entry:
    """One live object: size, ordered pieces, creation time, and how many readers pin it."""

    __slots__ = ("object_id", "size", "pieces", "created_ns", "pins")

    def __init__(self, object_id: bytes, size: int, pieces: list[Piece], created_ns: int) -> None:
        self.object_id = object_id
        self.size = size
        self.pieces = pieces
        self.created_ns = created_ns
        self.pins = 0


def expected_layout(size: int) -> list[tuple[int, int, int]]:
    """``(object_offset, block_size, used)`` per piece as stored; an empty object keeps
    one 4 KiB block with used=0 so that it survives a restart."""
    return piece_offsets(size) if size else [(0, MIN_BLOCK, 0)]


@dataclass
class RepairStats:
    """What the rebuild had to repair."""

    invalid_headers: int = 0
    bad_layout: int = 0
    incomplete_objects: int = 0
    duplicate_blocks: int = 0
    half_deleted_objects: int = 0
    stray_dirty_bits: int = 0
    freed_blocks: int = 0

    @property
    def changed(self) -> bool:
        """True when anything was written back to the pools."""
        return bool(self.freed_blocks or self.stray_dirty_bits or self.half_deleted_objects)


def _data_ok(pool: Pool, block: int, header: BlockHeader) -> bool:
    return pool.data_crc(pool.read_data(block, header.used)) == header.data_crc


def rebuild_index(pools: list[Pool]) -> tuple[dict[bytes, Entry], RepairStats]:
    """Scan every pool's bitmaps and headers; repair crash leftovers; return the index."""
    stats = RepairStats()
    # object id -> piece index -> [(pool, block, header, dirty)]
    found: dict[bytes, dict[int, list[tuple[int, int, BlockHeader, bool]]]] = defaultdict(
        lambda: defaultdict(list))
    for pi, pool in enumerate(pools):
        for r in range(len(pool.used) // BITMAP_BYTES):
            lo, hi = r * BITMAP_BYTES, (r + 1) * BITMAP_BYTES
            # A dirty bit without its used bit means nothing; clear it.
            for byte_no in range(lo, hi):
                stray = pool.dirty[byte_no] & ~pool.used[byte_no] & 0xFF
                for bit in range(8):
                    if stray & (1 << bit):
                        pool.set_dirty((byte_no << 3) + bit, False)
                        stats.stray_dirty_bits += 1
            if not any(pool.used[lo:hi]):
                continue  # skip reading headers of empty regions
            records = pool.read_region_headers(r)
            for i in range(BLOCKS_PER_REGION):
                block = r * BLOCKS_PER_REGION + i
                if not pool.is_used(block):
                    continue
                header = BlockHeader.decode(records[i * HEADER_SIZE:(i + 1) * HEADER_SIZE])
                if header is None:
                    stats.invalid_headers += 1
                    _free(pool, block, stats)
                    continue
                layout = expected_layout(header.total_size)
                if (header.piece_count != len(layout)
                        or layout[header.piece_index][1:] != (pool.block_size, header.used)):
                    stats.bad_layout += 1
                    _free(pool, block, stats)
                    continue
                if pool.is_dirty(block):
                    pool.dirty_blocks.add(block)
                found[header.object_id][header.piece_index].append(
                    (pi, block, header, pool.is_dirty(block)))

    index: dict[bytes, Entry] = {}
    for oid, by_piece in found.items():
        count = next(iter(by_piece.values()))[0][2].piece_count
        chosen: dict[int, tuple[int, int, BlockHeader, bool]] = {}
        for idx, candidates in by_piece.items():
            if len(candidates) > 1:
                candidates.sort(key=lambda c: (not _data_ok(pools[c[0]], c[1], c[2]), c[1]))
                for pi, block, _, _ in candidates[1:]:
                    stats.duplicate_blocks += 1
                    _free(pools[pi], block, stats)
            chosen[idx] = candidates[0]
        sizes = {c[2].total_size for c in chosen.values()}
        if len(chosen) != count or len(sizes) != 1:
            stats.incomplete_objects += 1
            for pi, block, _, _ in chosen.values():
                _free(pools[pi], block, stats)
            continue
        if any(c[3] for c in chosen.values()):
            if not all(c[3] for c in chosen.values()):
                stats.half_deleted_objects += 1
                for pi, block, _, dirty in chosen.values():
                    if not dirty:
                        pools[pi].set_dirty(block, True)
            continue  # deleted: its blocks wait for GC
        size = sizes.pop()
        pieces = [Piece(chosen[i][0], chosen[i][1], chosen[i][2].used, off)
                  for i, (off, _, _) in enumerate(expected_layout(size))]
        index[oid] = Entry(oid, size, pieces, chosen[0][2].created_ns)
    for pool in pools:
        pool.rebuild_free()
    return index, stats


def _free(pool: Pool, block: int, stats: RepairStats) -> None:
    pool.set_used(block, False)  # used bit first, as in Pool.release
    if pool.is_dirty(block):
        pool.set_dirty(block, False)
    stats.freed_blocks += 1
