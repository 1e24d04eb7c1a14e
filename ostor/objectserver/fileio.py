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


def _load_fallocate():
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.fallocate
        fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong)
        return fn
    except (OSError, AttributeError):
        return None


_FALLOCATE = _load_fallocate()  # resolved once; read-only afterwards
_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a byte range of a file without changing its size; False if unsupported."""
    if _FALLOCATE is None:
        return False
    return _FALLOCATE(fd, _PUNCH, offset, length) == 0
