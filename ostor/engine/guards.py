"""Guards taken ahead of need, so one durable name-server write covers many creates.

The seed's create takes a guard on the name server before any data is written
to an object server. Taking that guard is a durable write, and paying for it
per object doubles the name-server transactions of a small PUT. The pool keeps,
per (name server, object server) pair, object IDs that are already guarded,
and refills them in batches. Every object is still written only under a
durable guard; guards never used simply expire and their (never written)
object IDs are "deleted" as a no-op. Long uploads renew their guard, and a
guard that expired is never revived: the create fails instead.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from ostor.common.ids import new_object_id

#: Guards handed out have at least this fraction of their lifetime left.
FRESH_FRACTION = 2 / 3
#: Streams renew their guard once less than this fraction of its lifetime is left.
RENEW_FRACTION = 1 / 3


class GuardPool:
    """Pre-guarded object IDs per (name server, object server) pair."""

    def __init__(self, ttl: float, batch: int = 32) -> None:
        self.ttl = ttl
        self.batch = batch
        self._free: dict[tuple[int, int], deque[tuple[bytes, float]]] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    def _pop_fresh(self, free: deque[tuple[bytes, float]]) -> tuple[bytes, float] | None:
        threshold = time.time() + self.ttl * FRESH_FRACTION
        while free:
            object_id, expires_at = free.popleft()
            if expires_at >= threshold:
                return object_id, expires_at
        return None

    async def take(self, name_server: Any, os_id: int) -> tuple[bytes, float]:
        """A guarded object ID for data on ``os_id`` and its guard's expiry time."""
        key = (name_server.service_id, os_id)
        free = self._free.setdefault(key, deque())
        while True:
            if (got := self._pop_fresh(free)) is not None:
                return got
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:  # one refill at a time per pair; the others wait for it
                if not free:
                    ids = [new_object_id() for _ in range(self.batch)]
                    expires_at = await name_server.guard_many(os_id, ids, self.ttl)
                    free.extend((object_id, expires_at) for object_id in ids)

    def needs_renewal(self, expires_at: float) -> bool:
        """Whether a stream holding a guard that expires at ``expires_at`` should renew it now."""
        return expires_at - time.time() < self.ttl * RENEW_FRACTION

    async def release_all(self, name_server_of: Any) -> int:
        """Hand every unused guard back (its ID goes to GC at once); returns how many."""
        released = []
        for (ns_id, _os_id), free in self._free.items():
            name_server = name_server_of(ns_id)
            while free:
                released.append(name_server.release_guard(free.popleft()[0]))
        await asyncio.gather(*released)
        return len(released)
