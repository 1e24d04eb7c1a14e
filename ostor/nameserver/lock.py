"""The exclusive lock a name server holds on its directory while open.

An fcntl lock, because shared filesystems (GlusterFS, CephFS) fence only
locked handles. We use an open-file-description lock where Linux offers one:
classic POSIX locks belong to the process, so a second open *in the same
process* would silently succeed and closing it would drop the first's lock.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

from ostor.common.errors import StorageError

LOCK_NAME = "lock"


class DirectoryLock:
    """Holds an exclusive lock on ``<directory>/lock`` until :meth:`release`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"{directory}: name server is already open elsewhere (lock held on {self.path})") from exc
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lock(fd: int) -> None:
    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if ofd is not None:
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (must be 0 for OFD locks), padded
        arg = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        fcntl.fcntl(fd, ofd, arg)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
