"""The services of one volume, opened in this process (the embedded mode).

The engine reaches name and object servers only through this registry, by
service ID. In the embedded mode the services are objects in this process; a
later transport replaces them with clients that speak the same messages over
sockets without changing the engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostor.engine.placement import Placement
from ostor.engine.volume import VolumeLayout
from ostor.nameserver.server import CommitThread, NameServer, NameServerConfig
from ostor.objectserver.flush import GroupCommit
from ostor.objectserver.server import ObjectServer, ObjectServerConfig


class _NoData:
    """Stands in for "no object server": segments of empty objects and parts have no data."""

    async def delete(self, object_ids: list[bytes]) -> int:
        """Nothing to delete: empty segments own no blocks."""
        return 0


NO_DATA_OS_ID = 0


@dataclass
class ServiceConfig:
    """Configuration of the services the embedded mode runs (typed, with defaults)."""

    ns_count: int = 4
    os_count: int = 4
    name_server: NameServerConfig | None = None
    object_server: ObjectServerConfig | None = None
    #: Reach every service through the message protocol (encoded requests and frames)
    #: instead of direct calls: what a socket transport carries, run in this process.
    messages: bool = False


class ServiceLookup:
    """Finding a volume's services by ID (shared by the local and remote registries)."""

    name_servers: dict[int, Any]
    object_servers: dict[int, Any]
    #: True when the engine calls this process's disk-backed services directly: a
    #: create may then leave its fdatasync to the commit of the name or part that links
    #: it (ObjectServer.create's ``defer_sync``; ``before_commit`` of NameServer.create_name
    #: and NameServer.part_put).
    deferred_data_sync: bool = False

    def name_server(self, service_id: int) -> Any:
        """The name server with this ID."""
        return self.name_servers[service_id]

    def object_server(self, service_id: int) -> Any:
        """The object server with this ID (a no-op sink for the empty-segment ID 0)."""
        if service_id == NO_DATA_OS_ID:
            return _NoData()
        return self.object_servers[service_id]


@dataclass
class LocalServices(ServiceLookup):
    """Name and object servers of one volume, keyed by service ID.

    ``name_servers``/``object_servers`` are what the engine talks to (the
    services themselves, or message clients of them); ``local_name_servers``/
    ``local_object_servers`` are the service objects this process runs (for
    starting, closing and checking them).
    """

    layout: VolumeLayout | None
    placement: Placement
    name_servers: dict[int, Any]
    object_servers: dict[int, Any]
    local_name_servers: dict[int, Any] = field(default_factory=dict)
    local_object_servers: dict[int, Any] = field(default_factory=dict)
    _started: bool = field(default=False, repr=False)
    _flusher: GroupCommit | None = field(default=None, repr=False)
    _committer: CommitThread | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, data_dir: Path, config: ServiceConfig | None = None,
                   create: bool = True) -> "LocalServices":
        """Open (and on first use create) the volume in ``data_dir``.

        An existing volume is never reinitialised: damaged files raise
        CorruptStoreError naming them.
        """
        config = config or ServiceConfig()
        data_dir = Path(data_dir)
        if VolumeLayout.exists(data_dir):
            layout = VolumeLayout.load(data_dir)
        elif create:
            layout = VolumeLayout.new(data_dir, config.ns_count, config.os_count)
            for os_id in layout.object_servers:
                ObjectServer.create_service(layout.service_dir(os_id), os_id)
            for ns_id in layout.name_servers:
                NameServer.create_service(layout.service_dir(ns_id), ns_id)
            layout.save()  # last: a volume.json means every service directory exists
        else:
            raise FileNotFoundError(f"{data_dir} holds no ostor volume")
        services = cls(layout, Placement(layout.name_servers, layout.object_servers), {}, {})
        # The object servers of one process share one flusher: its rounds are bigger.
        os_config = config.object_server or ObjectServerConfig()
        services._flusher = GroupCommit(os_config.fsync)
        # One commit thread for all name servers: fewer threads taking the GIL from the loop
        # (see ostor.nameserver.committer).
        services._committer = CommitThread("ns-commit")
        try:
            for os_id in layout.object_servers:
                services.local_object_servers[os_id] = await ObjectServer.open(
                    layout.service_dir(os_id), os_id, os_config, flusher=services._flusher)
            for ns_id in layout.name_servers:
                services.local_name_servers[ns_id] = await NameServer.open(
                    layout.service_dir(ns_id), ns_id, services.object_server, config.name_server,
                    services._committer)
        except BaseException:
            await services.close()
            raise
        services._expose(config.messages)
        services.deferred_data_sync = not config.messages
        return services

    @classmethod
    def in_memory(cls, ns_count: int = 4, os_count: int = 4) -> "LocalServices":
        """Services backed by the in-memory twins (unit tests of the engine)."""
        from ostor.nameserver.memory import MemoryNameServer
        from ostor.objectserver.memory import MemoryObjectServer

        layout = VolumeLayout.new(Path("/nonexistent"), ns_count, os_count)
        services = cls(None, Placement(layout.name_servers, layout.object_servers), {}, {})
        for os_id in layout.object_servers:
            services.local_object_servers[os_id] = MemoryObjectServer(os_id)
        for ns_id in layout.name_servers:
            services.local_name_servers[ns_id] = MemoryNameServer(ns_id, services.object_server)
        services._expose(messages=False)
        return services

    def _expose(self, messages: bool) -> None:
        """Give the engine the services, or message clients of them."""
        if messages:
            from ostor.engine.transport import name_server_client, object_server_client, service_codec

            codec = service_codec()
            self.object_servers = {i: object_server_client(s, codec) for i, s in self.local_object_servers.items()}
            self.name_servers = {i: name_server_client(s, codec) for i, s in self.local_name_servers.items()}
        else:
            self.object_servers = dict(self.local_object_servers)
            self.name_servers = dict(self.local_name_servers)

    async def start(self) -> None:
        """Start every service's background workers (GC, guard expiry, defragmentation)."""
        for service in (*self.local_object_servers.values(), *self.local_name_servers.values()):
            await service.start()
        self._started = True

    async def close(self) -> None:
        """Stop workers and close every service (name servers first: their GC calls object servers)."""
        for service in (*self.local_name_servers.values(), *self.local_object_servers.values()):
            close = getattr(service, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # close the rest even if one fails
                    pass
        for services in (self.name_servers, self.object_servers,
                         self.local_name_servers, self.local_object_servers):
            services.clear()
        if self._committer is not None:
            self._committer.close()  # after the name servers: their last batches commit here
            self._committer = None
        if self._flusher is not None:
            await self._flusher.close()
            self._flusher = None

    async def gather(self, calls) -> list:
        """Run coroutines concurrently and return their results in order."""
        return list(await asyncio.gather(*calls))
