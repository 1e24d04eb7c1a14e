"""Direct (O_DIRECT) writes of full 8 MiB pieces from reusable page-aligned buffers.

A buffered write of a large piece copies it into freshly allocated page-cache
pages and leaves writeback to later; on the VMs we measured, allocating those
pages cost about 3 s of kernel CPU per GiB (page first touch), more than the
MD5 of the ETag. A direct write lets the device read our buffer, so the CPU
only copies the incoming stream once, into an aligned buffer that is reused.
Mixing direct writes and buffered reads is coherent: the kernel writes back and
drops cached pages of the range a direct write covers. The group-committed
fdatasync still makes the data (and its extent conversion) durable.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
import time
from typing import Any

from ostor.objectserver.fileio import allocate_range
from ostor.objectserver.layout import MAX_BLOCK


class AlignedBuffers:
    """Page-aligned buffers of one size (anonymous mmaps), kept for reuse.

    Thread-safe: I/O threads give buffers back when their write is done. At
    most ``keep`` idle buffers stay mapped; more are unmapped when given back,
    and :meth:`release_idle` unmaps them all once uploads have stopped for a
    while (reuse matters during a burst: a fresh mapping costs page faults).
    """

    def __init__(self, size: int = MAX_BLOCK, keep: int = 8) -> None:
        self.size = size
        self.keep = keep
        self._idle: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self._last_take = 0.0

    def take(self) -> mmap.mmap:
        """An idle buffer, or a new one."""
        self._last_take = time.monotonic()
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return mmap.mmap(-1, self.size)

    def release_idle(self, unused_for: float = 30.0) -> int:
        """Unmap the idle buffers if none was taken for ``unused_for`` seconds; returns how many."""
        if time.monotonic() - self._last_take < unused_for:
            return 0
        with self._lock:
            idle, self._idle = self._idle, []
        for buffer in idle:
            buffer.close()
        return len(idle)

    def give(self, buffer: mmap.mmap) -> None:
        """Return a buffer no one reads or writes any more."""
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(buffer)
                return
        buffer.close()

    def close(self) -> None:
        """Unmap every idle buffer."""
        self.release_idle(0.0)


def fill(buffer: mmap.mmap, parts: list[memoryview]) -> list[memoryview]:
    """Copy the first ``len(buffer)`` bytes of ``parts`` into ``buffer``; returns what is left.

    The caller makes sure ``parts`` hold at least that many bytes.
    """
    pos, size = 0, len(buffer)
    while pos < size:
        part = parts[0]
        n = min(len(part), size - pos)
        buffer[pos:pos + n] = part[:n]
        pos += n
        if n == len(part):
            parts.pop(0)
        else:
            parts[0] = part[n:]
    return parts


def open_direct(path: os.PathLike | str) -> int | None:
    """A write descriptor with O_DIRECT on ``path``, or None where the filesystem refuses it."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None  # tmpfs and friends: buffered writes only
        raise


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    written = 0
    while written < len(view):
        # A short direct write ends on an aligned boundary, so resuming stays aligned.
        written += os.pwrite(fd, view[written:], offset + written)


def write_direct(pool: Any, fd: int, offset: int, buffer: mmap.mmap, buffers: AlignedBuffers) -> int:
    """Write the whole buffer at ``offset`` of ``pool`` through ``fd`` (O_DIRECT), in an I/O thread.

    Returns the data checksum (``pool.data_crc``) and gives the buffer back.
    A filesystem that accepted O_DIRECT at open but refuses the write (EINVAL,
    as some FUSE filesystems do) gets the bytes through the pool's buffered
    descriptor instead, and ``pool.direct_refused`` stops further direct writes.
    """
    try:
        allocate_range(fd, offset, len(buffer))
        view = memoryview(buffer)
        try:
            try:
                _pwrite_all(fd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                pool.direct_refused = True
                _pwrite_all(pool.fd, view, offset)
            return pool.data_crc(view)
        finally:
            view.release()
    finally:
        buffers.give(buffer)
