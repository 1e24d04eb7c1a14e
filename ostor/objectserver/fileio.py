"""Small file I/O helpers: exact preads, and hole punching through libc's fallocate."""

from __future__ import annotations

import os
from typing import Protocol


class _Counter(Protocol):
    preads: int


def pread_exact(fd: int, length: int, offset: int, counter: _Counter | None = None) -> bytes:
    """pread until ``length`` bytes are read; bytes past end of file read as zeros."""
    data = os.pread(fd, length, offset)
    if counter is not None:
        counter.preads += 1
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:
            parts.append(bytes(length - got))
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _load_libc(name: str, argtypes: tuple):
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = getattr(libc, name)
        fn.argtypes = argtypes
        return fn
    except (OSError, AttributeError):
        return None


def _c_types():
    import ctypes
    return ctypes.c_int, ctypes.c_longlong


_INT, _LONG = _c_types()
_FALLOCATE = _load_libc("fallocate", (_INT, _INT, _LONG, _LONG))  # resolved once; read-only afterwards
_SYNC_FILE_RANGE = _load_libc("sync_file_range", (_INT, _LONG, _LONG, _INT))
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it.

    A big object's final fdatasync then finds most of its pages already on the
    way, so the disk works while the rest of the object is still arriving.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a byte range of a file without changing its size; False if unsupported."""
    if _FALLOCATE is None:
        return False
    return _FALLOCATE(fd, _PUNCH, offset, length) == 0


def allocate_range(fd: int, offset: int, length: int) -> None:
    """Reserve disk space for a range about to be written (best effort: a no-op where unsupported).

    The raw fallocate call, not posix_fallocate: glibc emulates the latter by
    writing zeros on filesystems without fallocate, which would double the writes.
    """
    if _FALLOCATE is not None:
        _FALLOCATE(fd, 0, offset, length)


#: Extents at least this long are worth a read-ahead hint.
READ_AHEAD_FROM = 1 << 20


def will_need(extents) -> None:
    """Ask the kernel to start reading these extents (``fd``, ``file_offset``, ``length``) now.

    Pieces of one object need not be contiguous in their pool file, so the
    kernel's sequential read-ahead stops at each piece boundary; on a cold page
    cache a hint per piece keeps the disk busy while the previous piece is sent.
    """
    for extent in extents:
        if extent.length >= READ_AHEAD_FROM:
            try:
                os.posix_fadvise(extent.fd, extent.file_offset, extent.length, os.POSIX_FADV_WILLNEED)
            except OSError:
                return  # a hint only
