"""Read leases: a pinned object range handed to another process (a gateway) for zero-copy sends.

A gateway in another process cannot share the object server's descriptors,
so :meth:`LeaseMixin.lease` pins the covered blocks exactly as a local
:class:`~ostor.objectserver.server.ReadHandle` does and answers with the pool
file *paths* and offsets; the gateway opens the pool files read-only and
sendfiles from them, then releases the lease. GC and defragmentation leave
pinned blocks alone, so the bytes stay put meanwhile. A lease that is neither
released nor renewed within its TTL expires (the gateway died or hung), so a
crashed gateway never pins blocks for good.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ostor.objectserver.types import Lease, LeaseExtent

#: Long enough for a large object to a slow client; the holder renews before it runs out.
LEASE_TTL = 60.0


class LeaseMixin:
    """Lease operations of the object server (mixed into ObjectServer)."""

    _pools: list[Any]
    _lease_ids = itertools.count(1)

    def _lease_table(self) -> dict[int, tuple[Any, asyncio.TimerHandle]]:
        table = self.__dict__.get("_leases")
        if table is None:
            table = self.__dict__["_leases"] = {}
        return table

    async def lease(self, object_id: bytes, offset: int = 0, length: int | None = None,
                    ttl: float = LEASE_TTL) -> Lease:
        """Pin ``[offset, offset+length)`` of an object and return its extents by pool file path."""
        handle = self.open_read(object_id, offset, length)  # type: ignore[attr-defined]
        paths = {pool.fd: str(pool.path) for pool in self._pools}
        lease_id = next(self._lease_ids)
        timer = asyncio.get_running_loop().call_later(ttl, self._expire_lease, lease_id)
        self._lease_table()[lease_id] = (handle, timer)
        extents = tuple(LeaseExtent(paths[e.fd], e.file_offset, e.length) for e in handle.extents)
        return Lease(lease_id, extents, ttl)

    async def renew_lease(self, lease_id: int, ttl: float = LEASE_TTL) -> bool:
        """Push a lease's expiry ``ttl`` seconds out; False when it already expired or was released."""
        entry = self._lease_table().get(lease_id)
        if entry is None:
            return False
        entry[1].cancel()
        timer = asyncio.get_running_loop().call_later(ttl, self._expire_lease, lease_id)
        self._lease_table()[lease_id] = (entry[0], timer)
        return True

    async def release_lease(self, lease_id: int) -> bool:
        """Unpin a lease's blocks (idempotent); False when it was not held."""
        entry = self._lease_table().pop(lease_id, None)
        if entry is None:
            return False
        entry[1].cancel()
        entry[0].close()
        return True

    def _expire_lease(self, lease_id: int) -> None:
        entry = self._lease_table().pop(lease_id, None)
        if entry is not None:
            entry[0].close()

    def release_all_leases(self) -> int:
        """Unpin every lease (the service is closing); returns how many were held."""
        table = self._lease_table()
        count = len(table)
        for handle, timer in table.values():
            timer.cancel()
            handle.close()
        table.clear()
        return count
