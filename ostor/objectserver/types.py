"""Typed configuration and results of the object server (shared with its in-memory twin)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ObjectServerConfig:
    """Tunables of one object server; the defaults suit production.

    gc_interval: seconds the GC worker sleeps when it has nothing to free.
    defrag_interval: seconds the defrag worker sleeps between idle checks.
    defrag_threshold: a pool is defragmented when its holes (free blocks below
        the last used block) exceed this fraction of the blocks in the file.
    defrag_min_free: ... and there are at least this many holes.
    defrag_batch: blocks one defrag worker step moves at most.
    fsync: make writes durable with fdatasync before acknowledging them.
        Only unit tests that do not care about crashes turn it off.
    punch_holes_from: freed blocks of at least this size get their disk space
        back with fallocate(PUNCH_HOLE); 0 disables.
    thread_io_from: reads and writes of at least this many bytes run in the I/O
        thread pool instead of on the event loop.
    io_threads: size of that thread pool.
    direct_io: full 8 MiB pieces are written with O_DIRECT from reusable aligned
        buffers where the filesystem allows it (see ostor.objectserver.direct).
    """

    gc_interval: float = 5.0
    defrag_interval: float = 60.0
    defrag_threshold: float = 0.25
    defrag_min_free: int = 16
    defrag_batch: int = 64
    fsync: bool = True
    punch_holes_from: int = 1 << 20
    thread_io_from: int = 1 << 20
    io_threads: int = 4
    direct_io: bool = True


#: Blocking calls, safe from any thread, that make data a deferred create wrote durable.
SyncCalls = tuple[Callable[[], None], ...]


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What a successful create returns.

    ``unsynced``: after ``create(..., defer_sync=True)``, the calls (blocking, any thread)
    that make the data durable; whoever names the data must run them all first.
    Empty when the create was already durable.
    """

    object_id: bytes
    size: int
    unsynced: SyncCalls = ()


@dataclass(frozen=True, slots=True)
class PieceLocation:
    """Where one piece of an object lives: pool, block, bytes used, offset in the object."""

    pool_block_size: int
    block_number: int
    used: int
    object_offset: int


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """An object's size and block map."""

    object_id: bytes
    size: int
    pieces: tuple[PieceLocation, ...]


@dataclass(frozen=True, slots=True)
class Extent:
    """A byte range of a pool file (for os.sendfile / pread)."""

    fd: int
    file_offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Damage:
    """One damaged object found by verify()."""

    object_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """Block counts and file size of one pool."""

    block_size: int
    used: int
    dirty: int
    free: int
    file_bytes: int


@dataclass
class VerifyReport:
    """Result of a full consistency check (``ostor-ctl check``)."""

    objects_checked: int = 0
    blocks_checked: int = 0
    damaged: list[Damage] = field(default_factory=list)
    pools: list[PoolUsage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no object is damaged."""
        return not self.damaged


@dataclass(frozen=True, slots=True)
class LeaseExtent:
    """A byte range of a pool file named by path (another process opens it read-only to sendfile)."""

    path: str
    file_offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Lease:
    """Pinned extents of one object range, valid until released or ``ttl`` seconds without renewal."""

    lease_id: int
    extents: tuple[LeaseExtent, ...]
    ttl: float
