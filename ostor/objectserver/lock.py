"""Exclusive ownership of a service directory, and the object server's own error types.

The lock is an fcntl *open file description* lock (F_OFD_SETLK) on
``<dir>/lock``: unlike classic POSIX record locks it also conflicts between two
opens inside one process, and like them it is what shared filesystems
(GlusterFS, CephFS) fence. Where OFD locks are unavailable we fall back to
``lockf``, which only excludes other processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from pathlib import Path

from ostor.common.errors import StorageError


class ServiceLockedError(StorageError):
    """Another owner (this or another process) holds the service directory."""

    def __init__(self, directory: object) -> None:
        self.directory = str(directory)
        super().__init__(f"{self.directory}: service directory is locked by another owner")


class ServiceMissingError(StorageError):
    """The service directory does not exist (or is not an object server directory)."""

    def __init__(self, directory: object) -> None:
        self.directory = str(directory)
        super().__init__(f"{self.directory}: no object server service here")


class ObjectExistsError(StorageError):
    """A create named an object ID that this object server already holds or is writing."""

    def __init__(self, object_id: bytes) -> None:
        self.object_id = object_id
        super().__init__(f"object {object_id.hex()} already exists")


LOCK_NAME = "lock"
# struct flock on Linux/x86-64 and arm64: short type, short whence, off_t start,
# off_t len, pid_t pid (must be 0 for OFD locks), padded to 32 bytes.
_FLOCK = struct.Struct("hhqqi4x")


def acquire_lock(directory: Path) -> int:
    """Take the exclusive lock of a service directory; returns the descriptor to keep open."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        ofd = getattr(fcntl, "F_OFD_SETLK", None)
        if ofd is not None:
            fcntl.fcntl(fd, ofd, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise ServiceLockedError(directory) from None
        raise
    return fd


def release_lock(fd: int) -> None:
    """Release the lock (closing the descriptor drops an OFD lock)."""
    os.close(fd)
