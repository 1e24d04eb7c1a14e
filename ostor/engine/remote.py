"""Services in another process: the storage side serves them on Unix sockets, gateways reach them.

``ostor server --workers N`` runs every name and object server of a volume in
one storage process (two processes must never allocate in the same pool file
or write the same database) and N gateway processes. :class:`ServiceHost`
serves the storage process's services, one socket per service at
``DATA_DIR/run/<service hex>.sock`` (mode 0600). :class:`RemoteServices` has
the face of :class:`~ostor.engine.services.LocalServices` with every service a
message client over a :class:`~ostor.common.rpc.SocketTransport`, so the
engine runs unchanged in a gateway process.

Large reads stay zero-copy across processes: :meth:`RemoteObjectServer.lease_extents`
takes a read lease (the object server pins the blocks and names the pool
files), opens the pool files read-only once per process, and yields extents
that :mod:`ostor.gateway.zerocopy` sendfiles from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostor.common.errors import ServiceUnavailableError
from ostor.common.ids import format_id
from ostor.common.messages import ServiceClient, ServiceEndpoint
from ostor.common.rpc import RpcServer, SocketTransport
from ostor.engine.placement import Placement
from ostor.engine.services import LocalServices, ServiceLookup
from ostor.engine.transport import service_codec
from ostor.engine.volume import VolumeLayout
from ostor.nameserver.protocol import NAME_SERVER_OPERATIONS
from ostor.objectserver.protocol import OBJECT_SERVER_OPERATIONS
from ostor.objectserver.types import Extent

RUN_DIR = "run"


def socket_path(data_dir: Path, service_id: int) -> Path:
    """Where a service of the volume in ``data_dir`` listens."""
    return Path(data_dir) / RUN_DIR / f"{format_id(service_id)}.sock"


class ServiceHost:
    """Serves every service a LocalServices runs, each on its own Unix socket."""

    def __init__(self, services: LocalServices, data_dir: Path) -> None:
        self.services = services
        self.data_dir = Path(data_dir)
        self._servers: list[RpcServer] = []

    async def start(self) -> None:
        """Bind all sockets (a socket left by a dead process is replaced)."""
        codec = service_codec()
        pairs = [(s, NAME_SERVER_OPERATIONS) for s in self.services.local_name_servers.values()]
        pairs += [(s, OBJECT_SERVER_OPERATIONS) for s in self.services.local_object_servers.values()]
        try:
            for service, operations in pairs:
                server = RpcServer(ServiceEndpoint(service, operations, codec),
                                   socket_path(self.data_dir, service.service_id))
                await server.start()
                self._servers.append(server)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop serving and remove the sockets."""
        while self._servers:
            await self._servers.pop().stop()


class PoolFiles:
    """Pool files opened read-only, one descriptor per path for the life of the process."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def fd(self, path: str) -> int:
        """A read-only descriptor of ``path`` (opened on first use)."""
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return fd

    def close(self) -> None:
        """Close every descriptor."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class RemoteObjectServer:
    """An object server's message client, plus zero-copy reads through leases."""

    def __init__(self, client: ServiceClient, files: PoolFiles) -> None:
        self._client = client
        self._files = files
        self.service_id = client.service_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    @contextlib.asynccontextmanager
    async def lease_extents(self, object_id: bytes, offset: int, length: int) -> AsyncIterator[list[Extent]]:
        """Pin a range in the object server and yield sendfile extents of the pool files.

        The lease is renewed while the body is being sent and released when
        the context exits (it expires on its own if this process dies).
        """
        lease = await self._client.lease(object_id, offset, length)
        renewer = asyncio.ensure_future(self._renew(lease.lease_id, lease.ttl))
        try:
            yield [Extent(self._files.fd(e.path), e.file_offset, e.length) for e in lease.extents]
        finally:
            renewer.cancel()
            with contextlib.suppress(ServiceUnavailableError):
                await asyncio.shield(self._client.release_lease(lease.lease_id))

    async def _renew(self, lease_id: int, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await self._client.renew_lease(lease_id, ttl)
            except ServiceUnavailableError:
                return  # the storage process is gone: the send fails on its own


@dataclass
class RemoteServices(ServiceLookup):
    """The services of one volume, reached over Unix sockets (same face as LocalServices)."""

    layout: VolumeLayout
    placement: Placement
    name_servers: dict[int, Any]
    object_servers: dict[int, Any]
    #: Nothing runs here: checks and workers belong to the storage process.
    local_name_servers: dict[int, Any] = field(default_factory=dict)
    local_object_servers: dict[int, Any] = field(default_factory=dict)
    _transports: list[SocketTransport] = field(default_factory=list, repr=False)
    _files: PoolFiles = field(default_factory=PoolFiles, repr=False)

    @classmethod
    def open(cls, data_dir: Path) -> "RemoteServices":
        """Clients of every service of the volume in ``data_dir`` (connections open on first use)."""
        layout = VolumeLayout.load(Path(data_dir))
        services = cls(layout, Placement(layout.name_servers, layout.object_servers), {}, {})
        codec = service_codec()
        for ns_id in layout.name_servers:
            transport = SocketTransport(socket_path(data_dir, ns_id))
            services._transports.append(transport)
            services.name_servers[ns_id] = ServiceClient(transport, NAME_SERVER_OPERATIONS, codec,
                                                         {"service_id": ns_id})
        for os_id in layout.object_servers:
            transport = SocketTransport(socket_path(data_dir, os_id))
            services._transports.append(transport)
            client = ServiceClient(transport, OBJECT_SERVER_OPERATIONS, codec, {"service_id": os_id})
            services.object_servers[os_id] = RemoteObjectServer(client, services._files)
        return services

    async def start(self) -> None:
        """Nothing to start: the storage process runs the workers."""

    async def close(self) -> None:
        """Close connections and pool file descriptors."""
        for transport in self._transports:
            await transport.close()
        self._transports.clear()
        self._files.close()
        self.name_servers.clear()
        self.object_servers.clear()

    async def gather(self, calls) -> list:
        """Run coroutines concurrently and return their results in order."""
        return list(await asyncio.gather(*calls))


async def open_remote_engine(data_dir: Path, guard_ttl: float = 300.0) -> Any:
    """An Engine over the services another process serves for ``data_dir``."""
    from ostor.engine.engine import Engine

    return Engine(RemoteServices.open(data_dir), guard_ttl)  # type: ignore[arg-type]
