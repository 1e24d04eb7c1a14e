"""The guard pool refills in the background, before a create has to wait for new guards."""

from __future__ import annotations

import asyncio
import time

import pytest

from ostor.common.errors import ServiceStoppedError
from ostor.engine.guards import GuardPool


class FakeNameServer:
    """guard_many and release_guard of a name server, counted; guard_many waits for ``gate``."""

    service_id = 0x0800000000000000

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.guarded: list[bytes] = []
        self.released: list[bytes] = []
        self.failure: BaseException | None = None

    async def guard_many(self, os_id: int, ids: list[bytes], ttl: float) -> float:
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.guarded += ids
        return time.time() + ttl

    async def release_guard(self, object_id: bytes) -> None:
        self.released.append(object_id)


async def test_a_refill_starts_at_half_a_batch_and_takes_do_not_wait_for_it():
    ns, pool = FakeNameServer(), GuardPool(ttl=300, batch=8)
    first = await pool.take(ns, 1)
    assert len(ns.guarded) == 8 and first[0] == ns.guarded[0]
    ns.gate.clear()  # the next refill hangs until we let it go
    taken = [await asyncio.wait_for(pool.take(ns, 1), 1) for _ in range(4)]
    assert [t[0] for t in taken] == ns.guarded[1:5]  # 3 left: below half a batch
    ns.gate.set()
    await asyncio.sleep(0.01)
    assert len(ns.guarded) == 16  # refilled in the background, before anyone ran out
    ns.gate.clear()
    taken = [await asyncio.wait_for(pool.take(ns, 1), 1) for _ in range(7)]
    assert [t[0] for t in taken] == ns.guarded[5:12]  # served while the next refill hangs
    waiting = [asyncio.ensure_future(pool.take(ns, 1)) for _ in range(8)]
    await asyncio.sleep(0.01)
    assert sum(w.done() for w in waiting) == 4  # the rest wait for the running refill
    ns.gate.set()
    assert [(await w)[0] for w in waiting] == ns.guarded[12:20]
    assert len(ns.guarded) == 24  # one refill at a time, not one per waiting take


async def test_a_failed_refill_reaches_a_waiting_take_and_is_retried():
    ns, pool = FakeNameServer(), GuardPool(ttl=300, batch=4)
    ns.failure = ServiceStoppedError("name server is closed")
    with pytest.raises(ServiceStoppedError):
        await pool.take(ns, 1)
    ns.failure = None
    assert (await pool.take(ns, 1))[0] == ns.guarded[0]


async def test_release_all_hands_back_the_guards_of_a_running_refill():
    ns, pool = FakeNameServer(), GuardPool(ttl=300, batch=4)
    await pool.take(ns, 1)
    ns.gate.clear()
    for _ in range(2):
        await pool.take(ns, 1)  # below half a batch: a refill starts and hangs
    releasing = asyncio.ensure_future(pool.release_all(lambda ns_id: ns))
    await asyncio.sleep(0.01)
    assert not releasing.done()
    ns.gate.set()
    assert await releasing == 1 + 4
    assert sorted(ns.released) == sorted(ns.guarded[3:])
