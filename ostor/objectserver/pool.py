"""One pool file: a system block, then fixed-size regions of equal-sized blocks.

On-disk format, version 2 (all integers little-endian):

* **System block** at offset 0, ``sys_size`` bytes (4 KiB rounded up to the
  block size so data stays aligned): ``SYS_FORMAT`` = magic ``OSTORPL1``,
  format version, block size, blocks per region, header record size, region
  header area size, crc32 of the preceding fields.
* **Region** ``r`` starts at ``sys_size + r * region_size``. Its header area
  (``region_hdr`` bytes, rounded up to the block size) holds the *used* bitmap
  at +0, the *dirty* bitmap at +``N/8`` and, from +4096, one ``HEADER_SIZE``
  record per block. ``N`` data blocks follow, so block ``i`` of the region is
  at ``region_start + region_hdr + i * block_size`` — a multiple of the block
  size.
* **Block header record** (``REC_FORMAT``): magic ``OBLK``, object id (16
  bytes), piece index, piece count, used length, object total size, checksum
  of the used data, creation time (ns), crc32 of the record.

Version 2 differs from version 1 only in the data checksum of block headers:
CRC32C (hardware-accelerated through awscrt, about 40 GiB/s) instead of zlib's
CRC32 (about 2.5 GiB/s, a tenth of a core per GiB written). New pools are
version 2; version 1 pools stay readable as they are (``Pool.data_crc`` picks
the function), so no migration rewrites anything.

A block is *free* (used=0), *live* (used=1, dirty=0) or *dirty* (used=1,
dirty=1: deleted, awaiting GC). Files are sparse and grow on demand; bytes past
the end of file read as zeros, i.e. free.

Pools of small blocks grow ahead of need: when the allocator hands out a block
past the bytes already written, the file is extended with written zeros
(``ZERO_AHEAD`` bytes more than that block needs). A durable small create then
overwrites bytes the file already has, and its fdatasync flushes data only;
appending would make every fdatasync commit the filesystem's journal as well
(new size, new extents), about 1.6x as long on ext4 here. Zeros are free
blocks, so the format is unchanged; truncation drops them as before.
"""

from __future__ import annotations

import errno
import functools
import heapq
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from awscrt.checksums import crc32c

from ostor.common.errors import CorruptStoreError
from ostor.objectserver.direct import open_direct
from ostor.objectserver.fileio import pread_exact, punch_hole
from ostor.objectserver.flush import SharedSync

MAGIC = b"OSTORPL1"
FORMAT_VERSION = 2
#: The data checksum of each readable format version.
DATA_CRC = {1: zlib.crc32, 2: crc32c}
BLOCKS_PER_REGION = 512
HEADER_SIZE = 64
BITMAP_BYTES = BLOCKS_PER_REGION // 8
RECORDS_OFFSET = 4096  # header records start on their own page, after the bitmaps
SYS_FORMAT = struct.Struct("<8sIIIII")
SYS_CRC = struct.Struct("<I")
REC_MAGIC = b"OBLK"
REC_FORMAT = struct.Struct("<4s16sIIIQIQ8x")  # + crc32 (4 bytes) = 64
REC_CRC = struct.Struct("<I")
assert REC_FORMAT.size + REC_CRC.size == HEADER_SIZE
assert RECORDS_OFFSET >= 2 * BITMAP_BYTES
#: Bytes of zeros written past a fresh small block (see the module docstring).
ZERO_AHEAD = 256 << 10
#: Pools of blocks up to this size grow ahead; larger pieces are written whole
#: (8 MiB ones with O_DIRECT), where the journal commit is a small share.
ZERO_AHEAD_MAX_BLOCK = 64 << 10


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The decoded header record of one block: which object piece it holds."""

    object_id: bytes
    piece_index: int
    piece_count: int
    used: int
    total_size: int
    data_crc: int
    created_ns: int

    def encode(self) -> bytes:
        """Return the 64-byte record, its own crc appended."""
        body = REC_FORMAT.pack(REC_MAGIC, self.object_id, self.piece_index, self.piece_count,
                               self.used, self.total_size, self.data_crc, self.created_ns)
        return body + REC_CRC.pack(zlib.crc32(body))

    @staticmethod
    def decode(raw: bytes) -> BlockHeader | None:
        """Parse a record; None when magic or crc do not match (torn or never written)."""
        if len(raw) < HEADER_SIZE or raw[:4] != REC_MAGIC:
            return None
        body = raw[:REC_FORMAT.size]
        if REC_CRC.unpack_from(raw, REC_FORMAT.size)[0] != zlib.crc32(body):
            return None
        _, oid, idx, count, used, total, dcrc, created = REC_FORMAT.unpack(body)
        if count == 0 or idx >= count:
            return None
        return BlockHeader(oid, idx, count, used, total, dcrc, created)


class Pool:
    """One open pool file: geometry, in-memory bitmaps, free-block allocation and raw I/O.

    The in-memory ``used`` bitmap also covers blocks *reserved* by creates in
    progress (their bit reaches the disk only when the create commits), so the
    allocator, the defragmenter and truncation all see them as taken.
    """

    def __init__(self, path: Path, block_size: int, fd: int) -> None:
        self.path = path
        self.block_size = block_size
        self.fd = fd
        self.sys_size = _round_up(4096, block_size)
        self.region_hdr = _round_up(RECORDS_OFFSET + BLOCKS_PER_REGION * HEADER_SIZE, block_size)
        self.region_size = self.region_hdr + BLOCKS_PER_REGION * block_size
        # One bit per block, all regions concatenated. ``used`` includes blocks
        # reserved by creates in progress; ``disk_used`` is what the file says or
        # is about to say. Bitmap bytes are written from ``disk_used`` so that a
        # neighbour's commit never persists another writer's reservation (which
        # could resurrect a stale header left in that block).
        self.used = bytearray()
        self.disk_used = bytearray()
        self.dirty = bytearray()
        self.dirty_blocks: set[int] = set()
        self.used_count = 0
        self._free: list[int] = []  # min-heap of free blocks below _next_fresh
        self._next_fresh = 0        # blocks >= this were never used since the last truncate
        self._zeroed_to = 0         # the file holds written bytes up to here (0: not known yet)
        self._syncs = SharedSync(self._open_fd)
        self.pwrites = 0            # observable I/O counters (tests, metrics)
        self.preads = 0
        self._direct_fd: int | None = None
        self._direct_tried = False
        #: Set when the filesystem refused a direct write: buffered writes only from then on.
        self.direct_refused = False
        self.version = FORMAT_VERSION
        #: The checksum of block data this pool's format uses (``DATA_CRC``).
        self.data_crc = DATA_CRC[FORMAT_VERSION]

    # ----- creation and validation -------------------------------------------------

    def _system_block(self) -> bytes:
        body = SYS_FORMAT.pack(MAGIC, FORMAT_VERSION, self.block_size, BLOCKS_PER_REGION,
                               HEADER_SIZE, self.region_hdr)
        return body + SYS_CRC.pack(zlib.crc32(body))

    @classmethod
    def create_file(cls, path: Path, block_size: int) -> None:
        """Write a new, empty pool file (system block only); fails if it exists."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            pool = cls(path, block_size, fd)
            sysblk = pool._system_block()
            os.pwrite(fd, sysblk, 0)
            os.ftruncate(fd, pool.sys_size)
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def open_file(cls, path: Path, block_size: int) -> Pool:
        """Open and validate an existing pool file, then load its bitmaps.

        Raises CorruptStoreError naming the file for any format problem; the
        file is never modified here.
        """
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise CorruptStoreError(path, "pool file is missing") from None
        try:
            pool = cls(path, block_size, fd)
            pool._validate()
            pool._load_bitmaps()
            return pool
        except BaseException:
            os.close(fd)
            raise

    def _validate(self) -> None:
        size = os.fstat(self.fd).st_size
        raw = os.pread(self.fd, SYS_FORMAT.size + SYS_CRC.size, 0)
        if len(raw) < SYS_FORMAT.size + SYS_CRC.size or size < self.sys_size:
            raise CorruptStoreError(self.path, "truncated system block")
        magic, version, bsize, per_region, rec_size, region_hdr = SYS_FORMAT.unpack_from(raw)
        if magic != MAGIC:
            raise CorruptStoreError(self.path, "bad magic")
        if SYS_CRC.unpack_from(raw, SYS_FORMAT.size)[0] != zlib.crc32(raw[:SYS_FORMAT.size]):
            raise CorruptStoreError(self.path, "system block crc mismatch")
        if version not in DATA_CRC:
            raise CorruptStoreError(self.path, f"unknown format version {version}")
        self.version, self.data_crc = version, DATA_CRC[version]
        if (bsize, per_region, rec_size, region_hdr) != (
                self.block_size, BLOCKS_PER_REGION, HEADER_SIZE, self.region_hdr):
            raise CorruptStoreError(self.path, "geometry mismatch")

    def _load_bitmaps(self) -> None:
        size = os.fstat(self.fd).st_size
        regions = max(0, -(-(size - self.sys_size) // self.region_size))
        used, dirty = bytearray(), bytearray()
        for r in range(regions):
            raw = os.pread(self.fd, 2 * BITMAP_BYTES, self.region_start(r))
            raw = raw.ljust(2 * BITMAP_BYTES, b"\0")
            used += raw[:BITMAP_BYTES]
            dirty += raw[BITMAP_BYTES:]
        self.used, self.disk_used, self.dirty = used, bytearray(used), dirty

    def owed_sync(self) -> Callable[[], None]:
        """The call that makes this pool's writes so far durable, from any thread.

        What a deferred create leaves to its namer. Callers whose writes one
        fdatasync covers share it (:class:`~ostor.objectserver.flush.SharedSync`).
        The services of a process close name servers (which run these calls before
        their commits) before object servers, so the descriptor is never a reused number.
        """
        return functools.partial(self.sync_data, self._syncs.mark())

    def sync_data(self, mark: int) -> None:
        """Return once the pool's writes before ``mark`` (see :meth:`owed_sync`) are durable."""
        self._syncs.sync(mark)

    def _open_fd(self) -> int:
        fd = self.fd
        if fd < 0:
            raise OSError(errno.EBADF, f"pool {self.path} is closed")
        return fd

    def close(self) -> None:
        """Close the file descriptors."""
        if self._direct_fd is not None:
            os.close(self._direct_fd)
            self._direct_fd = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def direct_fd(self) -> int | None:
        """A write-only O_DIRECT descriptor of the file, opened on first use (None: unsupported)."""
        if not self._direct_tried:
            self._direct_tried = True
            self._direct_fd = open_direct(self.path)
        return None if self.direct_refused else self._direct_fd

    # ----- geometry -----------------------------------------------------------------

    def region_start(self, region: int) -> int:
        """File offset of a region's header area."""
        return self.sys_size + region * self.region_size

    def data_offset(self, block: int) -> int:
        """File offset of a block's data (always a multiple of the block size)."""
        r, i = divmod(block, BLOCKS_PER_REGION)
        return self.sys_size + r * self.region_size + self.region_hdr + i * self.block_size

    def header_offset(self, block: int) -> int:
        """File offset of a block's header record."""
        r, i = divmod(block, BLOCKS_PER_REGION)
        return self.sys_size + r * self.region_size + RECORDS_OFFSET + i * HEADER_SIZE

    def file_size(self) -> int:
        """Current size of the pool file in bytes."""
        return os.fstat(self.fd).st_size

    # ----- bitmaps ------------------------------------------------------------------

    def is_used(self, block: int) -> bool:
        """True when the in-memory used bit of ``block`` is set."""
        byte = block >> 3
        return byte < len(self.used) and bool(self.used[byte] & (1 << (block & 7)))

    def is_dirty(self, block: int) -> bool:
        """True when the in-memory dirty bit of ``block`` is set."""
        byte = block >> 3
        return byte < len(self.dirty) and bool(self.dirty[byte] & (1 << (block & 7)))

    def _grow(self, block: int) -> None:
        need = (block // BLOCKS_PER_REGION + 1) * BITMAP_BYTES
        if len(self.used) < need:
            self.used.extend(bytes(need - len(self.used)))
            self.disk_used.extend(bytes(need - len(self.disk_used)))
            self.dirty.extend(bytes(need - len(self.dirty)))

    def _write_bit(self, bitmap: bytearray, which: int, block: int) -> None:
        # One byte per update: a one-byte pwrite cannot tear.
        if self.fd < 0:
            return  # closed: a late release after shutdown; redone by the next open's repair
        r, i = divmod(block, BLOCKS_PER_REGION)
        os.pwrite(self.fd, bitmap[block >> 3: (block >> 3) + 1],
                  self.region_start(r) + which * BITMAP_BYTES + (i >> 3))
        self.pwrites += 1

    def set_used(self, block: int, value: bool, write: bool = True) -> None:
        """Set or clear the used bit in memory and (if ``write``) on disk."""
        self._grow(block)
        mask = 1 << (block & 7)
        was = bool(self.used[block >> 3] & mask)
        if value:
            self.used[block >> 3] |= mask
        else:
            self.used[block >> 3] &= ~mask & 0xFF
        self.used_count += int(value) - int(was)
        if write:
            if value:
                self.disk_used[block >> 3] |= mask
            else:
                self.disk_used[block >> 3] &= ~mask & 0xFF
            self._write_bit(self.disk_used, 0, block)

    def set_dirty(self, block: int, value: bool, write: bool = True) -> None:
        """Set or clear the dirty bit in memory and (if ``write``) on disk."""
        self._grow(block)
        mask = 1 << (block & 7)
        if value:
            self.dirty[block >> 3] |= mask
            self.dirty_blocks.add(block)
        else:
            self.dirty[block >> 3] &= ~mask & 0xFF
            self.dirty_blocks.discard(block)
        if write:
            self._write_bit(self.dirty, 1, block)

    def used_blocks(self) -> list[int]:
        """All blocks whose used bit is set, ascending."""
        out = []
        for byte_no, byte in enumerate(self.used):
            if byte:
                base = byte_no << 3
                out.extend(base + bit for bit in range(8) if byte & (1 << bit))
        return out

    def last_used(self) -> int:
        """The highest used block, or -1 when none is used."""
        n = len(self.used.rstrip(b"\0"))
        if n == 0:
            return -1
        return ((n - 1) << 3) + self.used[n - 1].bit_length() - 1

    # ----- allocation -----------------------------------------------------------------

    def rebuild_free(self) -> None:
        """Recompute the free heap from the used bitmap (after open, repair or truncate)."""
        self._next_fresh = self.last_used() + 1
        self._free = [b for b in range(self._next_fresh) if not self.is_used(b)]
        heapq.heapify(self._free)
        self.used_count = sum(bin(b).count("1") for b in self.used)

    def allocate(self) -> int:
        """Reserve the lowest free block (used bit set in memory only)."""
        if self._free:
            block = heapq.heappop(self._free)
        else:
            block = self._next_fresh
            self._next_fresh += 1
            if self.block_size <= ZERO_AHEAD_MAX_BLOCK:
                self._extend_for(block)
        self.set_used(block, True, write=False)
        return block

    def _extend_for(self, block: int) -> None:
        """Make sure the file holds written bytes (zeros if nothing else) up to the end of ``block``."""
        end = self.data_offset(block) + self.block_size
        if end <= self._zeroed_to:
            return
        # The real size, not a remembered one: zeros must never land on written bytes.
        size = self.file_size()
        if size < end:
            try:
                os.pwrite(self.fd, bytes(end + ZERO_AHEAD - size), size)
            except OSError:
                return  # e.g. no room for the zeros: the block's own write extends the file, or fails
            self.pwrites += 1
            size = self.file_size()  # a short write extends less
        self._zeroed_to = size

    def lowest_free(self) -> int | None:
        """The block :meth:`allocate` would return from the holes, or None if no hole."""
        return self._free[0] if self._free else None

    def release(self, block: int, write: bool = True) -> None:
        """Free a block: clear used and dirty bits and make it allocatable again."""
        # Used bit first: a crash between the two writes then leaves a stray
        # dirty bit (ignored at open), never a live block of a deleted object.
        self.set_used(block, False, write)
        if self.is_dirty(block):
            self.set_dirty(block, False, write)
        heapq.heappush(self._free, block)

    def free_in_file(self) -> int:
        """Free blocks below the end of the used area (holes defrag could fill)."""
        return len(self._free)

    def truncate_tail(self) -> int:
        """Shrink the file to end just after the last used block; returns bytes dropped."""
        last = self.last_used()
        new_size = self.sys_size if last < 0 else self.data_offset(last) + self.block_size
        old_size = self.file_size()
        if new_size >= old_size:
            return 0
        os.ftruncate(self.fd, new_size)
        self._zeroed_to = new_size
        keep = (last // BLOCKS_PER_REGION + 1) * BITMAP_BYTES if last >= 0 else 0
        del self.used[keep:]
        del self.disk_used[keep:]
        del self.dirty[keep:]
        self.dirty_blocks = {b for b in self.dirty_blocks if b <= last}
        self.rebuild_free()
        return old_size - new_size

    # ----- raw block I/O ------------------------------------------------------------

    def read_header(self, block: int) -> BlockHeader | None:
        """Read and decode one block header record."""
        self.preads += 1
        return BlockHeader.decode(os.pread(self.fd, HEADER_SIZE, self.header_offset(block)))

    def read_region_headers(self, region: int) -> bytes:
        """All header records of a region in one read (zero-filled past end of file)."""
        length = BLOCKS_PER_REGION * HEADER_SIZE
        raw = os.pread(self.fd, length, self.region_start(region) + RECORDS_OFFSET)
        return raw.ljust(length, b"\0")

    def write_header(self, block: int, header: BlockHeader) -> None:
        """Write one block header record."""
        os.pwrite(self.fd, header.encode(), self.header_offset(block))
        self.pwrites += 1

    def write_data(self, block: int, data: bytes | memoryview, offset: int = 0) -> None:
        """Write ``data`` into a block at ``offset`` (handles short writes)."""
        pos = self.data_offset(block) + offset
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, pos)
            self.pwrites += 1
            view = view[n:]
            pos += n

    def read_data(self, block: int, length: int, offset: int = 0) -> bytes:
        """Read ``length`` bytes of a block's data from ``offset``."""
        return pread_exact(self.fd, length, self.data_offset(block) + offset, self)

    def punch_hole(self, block: int) -> None:
        """Give a freed block's disk space back (best effort, big blocks only)."""
        punch_hole(self.fd, self.data_offset(block), self.block_size)
