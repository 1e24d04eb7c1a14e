"""ReceiveBuffers: a handed-over buffer is reused only once no view of it is left."""

from __future__ import annotations

import asyncio

from ostor.gateway.bodyreceiver import ReceiveBuffers


async def test_a_viewed_buffer_is_not_reused_until_its_views_are_gone() -> None:
    pool = ReceiveBuffers(size=1 << 16)
    first = pool.take()
    first[:5] = b"hello"
    view = memoryview(first)[:5].toreadonly()
    pool.hand_over(first)
    second = pool.take()
    assert second is not first  # a consumer still reads the first one
    second[:5] = b"world"
    assert bytes(view) == b"hello"
    del view
    assert pool.take() is first  # nothing views it any more: reused, no new mapping


async def test_slices_of_slices_keep_the_buffer() -> None:
    pool = ReceiveBuffers(size=1 << 16)
    buffer = pool.take()
    frames = [memoryview(buffer)[:1 << 15].toreadonly()[i:i + 1024] for i in range(0, 1 << 15, 1024)]
    pool.hand_over(buffer)
    kept = frames[-1]
    del frames
    assert pool.take() is not buffer
    del kept
    assert pool.take() is buffer


async def test_at_most_keep_buffers_are_remembered_and_idle_ones_are_dropped() -> None:
    pool = ReceiveBuffers(size=4096, keep=2, idle=0.05)
    buffers = [pool.take() for _ in range(3)]
    for buffer in buffers:
        pool.hand_over(buffer)
    assert pool.take() is buffers[0] and pool.take() is buffers[1]
    assert pool.take() not in buffers  # the third was not kept
    pool.hand_over(buffers[0])
    await asyncio.sleep(0.2)  # unused for longer than ``idle``
    assert pool.take() is not buffers[0]
