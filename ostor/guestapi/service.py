"""The guest socket itself: one Unix socket per host (default DATA_DIR/guestapi.sock), mode 0666.

Every instance on the host connects to the same socket (a runtime bind-mounts
it as /dev/incus/sock or /dev/lxd/sock), so it must be world-writable and
accept many connections at once: the listen backlog and the open-file limit
are raised for that. Access control is per request, from peer credentials.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path
from typing import Any

from aiohttp import web

from ostor.common.unixsocket import bind_unix, inode_of, remove_if_ours, served_elsewhere

from ostor.guestapi.app import GuestApi

log = logging.getLogger(__name__)

SOCKET_NAME = "guestapi.sock"
SOCKET_MODE = 0o666
#: Pending connections the kernel queues (capped by net.core.somaxconn).
BACKLOG = 4096
#: Open files we ask for: every guest connection is one.
WANTED_FILES = 65536


def raise_file_limit(wanted: int = WANTED_FILES) -> int:
    """Lift the soft open-file limit towards ``wanted`` (never above the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class GuestApiSocket:
    """Serves a :class:`GuestApi` on a Unix socket."""

    def __init__(self, api: GuestApi, path: Path) -> None:
        self.api = api
        self.path = Path(path)
        self._runner: web.AppRunner | None = None
        self._inode: int | None = None

    async def start(self) -> bool:
        """Bind and serve; False (and a warning) when another live process already serves the path."""
        if (self.path.exists() or self.path.is_symlink()) and served_elsewhere(self.path):
            log.warning("guest API socket %s is served by another process; not starting one", self.path)
            return False
        raise_file_limit()
        # Instances in other users' namespaces must reach the socket: world-usable from the start.
        sock = bind_unix(self.path, SOCKET_MODE, dir_mode=0o755, backlog=BACKLOG)
        self._inode = inode_of(self.path)
        self._runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=BACKLOG, shutdown_timeout=2).start()
        return True

    async def stop(self) -> None:
        """Close every connection (event streams end) and remove the socket if it is still ours."""
        for instance in list(self.api.instances.all()):
            self.api.hub.close_instance(instance.name)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        remove_if_ours(self.path, self._inode)


async def start_guestapi(engine: Any, records: Any, path: Path) -> GuestApiSocket:
    """Load instances and images from the service bucket and serve them on ``path``."""
    api = await GuestApi.open(engine, records)
    guest_socket = GuestApiSocket(api, path)
    await guest_socket.start()
    return guest_socket
