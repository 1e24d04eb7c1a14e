"""Unix-socket files the services serve on: created with their mode, replaced only when dead.

A socket file is bound under a temporary name, given its mode, then renamed
into place, so no client ever meets it with the wrong permissions. A file
left by a server that died is replaced; one a live process still answers on
is not. On stop, a server removes the file only if it is still the one it
created (a newer server may have taken the name since).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def served_elsewhere(path: Path) -> bool:
    """Whether some process accepts connections on the socket file ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def bind_unix(path: Path, mode: int = 0o600, dir_mode: int = 0o700, backlog: int = 256) -> socket.socket:
    """A listening Unix socket at ``path`` with ``mode`` from the moment the name exists.

    A stale file at ``path`` is replaced; the caller checks :func:`served_elsewhere`
    first when a live owner must be left alone.
    """
    path = Path(path)
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        tmp.unlink(missing_ok=True)
        raise
    return sock


def inode_of(path: Path) -> int | None:
    """The inode of ``path`` (to recognise our own socket file later), None if it is gone."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def remove_if_ours(path: Path, inode: int | None) -> None:
    """Delete the socket file unless another server has replaced it since we bound it."""
    if inode is not None and inode_of(path) == inode:
        Path(path).unlink(missing_ok=True)
