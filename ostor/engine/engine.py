"""The engine: S3 semantics over a volume's name and object servers, with no HTTP in it.

This is the one seam between protocol and storage. The gateway calls these
methods and gets typed records back; S3 errors come out as the exception
classes of :mod:`ostor.common.errors`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ostor.engine.buckets import BucketOps
from ostor.engine.guards import GuardPool
from ostor.engine.multipart import MultipartOps
from ostor.engine.objects import ObjectOps
from ostor.engine.services import LocalServices, ServiceConfig
from ostor.engine.types import GcReport


class Engine(BucketOps, ObjectOps, MultipartOps):
    """Buckets, objects, versions and multipart uploads of one volume."""

    def __init__(self, services: LocalServices, guard_ttl: float = 300.0) -> None:
        self.services = services
        self.guards = GuardPool(guard_ttl)
        self._bucket_cache = {}
        #: Threads that hash large bodies beside the event loop (ostor.common.hashing).
        self.hash_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ostor-hash")

    @classmethod
    async def open(cls, data_dir: Path, config: ServiceConfig | None = None, *,
                   start_workers: bool = True, create: bool = True) -> "Engine":
        """Open (creating on first use) the volume in ``data_dir`` with every service in-process."""
        services = await LocalServices.open(Path(data_dir), config, create=create)
        if start_workers:
            await services.start()
        ns_config = (config or ServiceConfig()).name_server
        return cls(services, ns_config.guard_ttl if ns_config else 300.0)

    async def close(self) -> None:
        """Hand back unused guards, stop background work and close every service."""
        try:
            await self.guards.release_all(self.services.name_server)
        finally:
            self.hash_executor.shutdown(wait=False)
            await self.services.close()

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def collect_garbage(self, *, expire_guards_at: float | None = None,
                              defragment: bool = False) -> GcReport:
        """Run one full GC round now: expire guards, drain GC queues, free blocks.

        ``expire_guards_at`` pretends the clock reads that time when checking
        guard timers (``float('inf')`` expires every guard: only safe when no
        create is in flight, e.g. after a crash).
        """
        report = GcReport()
        await self.guards.release_all(self.services.name_server)
        now = time.time() if expire_guards_at is None else expire_guards_at
        for ns in self.services.name_servers.values():
            report.guards_expired += await ns.expire_guards(now)
            while deleted := await ns.collect_garbage():
                report.objects_deleted += deleted
        for os_ in self.services.object_servers.values():
            report.blocks_freed += await os_.collect_garbage()
            if defragment:
                report.blocks_moved += await os_.defragment()
        return report
