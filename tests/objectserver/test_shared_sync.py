"""Pool files grow ahead with written zeros, and threads owing a pool's fdatasync share it."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from ostor.objectserver import flush
from ostor.objectserver.flush import SharedSync
from ostor.objectserver.layout import BLOCK_SIZES
from ostor.objectserver.pool import ZERO_AHEAD, ZERO_AHEAD_MAX_BLOCK

from .conftest import get, payload, put

KiB, MiB = 1024, 1 << 20


def _pool(server, block_size: int):
    return server._pools[BLOCK_SIZES.index(block_size)]


async def test_a_small_pool_grows_ahead_with_written_zeros(server):
    pool = _pool(server, 4 * KiB)
    data = [payload(4 * KiB) for _ in range(4)]
    first = await put(server, data[0])
    end = pool.data_offset(0) + 4 * KiB
    assert pool.file_size() == end + ZERO_AHEAD
    # Written bytes, not a hole: what a later overwrite-and-fdatasync relies on.
    assert os.fstat(pool.fd).st_blocks * 512 >= end + ZERO_AHEAD
    # Blocks inside the zeroed stretch take no further extension, and keep their data.
    others = [await put(server, block) for block in data[1:]]
    assert pool.file_size() == end + ZERO_AHEAD
    assert [await get(server, oid) for oid in [first, *others]] == data


async def test_growing_ahead_never_overwrites_and_large_pools_do_not(server):
    small = _pool(server, 4 * KiB)
    data = payload(4 * KiB)
    oid = await put(server, data)
    # Someone wrote past the zeros (an older version's file): the pool extends from the real end.
    tail = small.file_size() + 5 * KiB
    os.pwrite(small.fd, b"\xff" * 100, tail)
    small._zeroed_to = 0
    blocks = (tail - small.data_offset(0)) // (4 * KiB) + 1
    for _ in range(blocks):
        small.allocate()
    assert os.pread(small.fd, 100, tail) == b"\xff" * 100
    assert await get(server, oid) == data
    big = _pool(server, 8 * MiB)
    assert 8 * MiB > ZERO_AHEAD_MAX_BLOCK
    await put(server, payload(8 * MiB))
    assert big.file_size() == big.data_offset(0) + 8 * MiB


async def test_truncation_drops_the_zeros_and_growth_starts_again(server):
    pool = _pool(server, 4 * KiB)
    oid = await put(server, payload(4 * KiB))
    await server.delete([oid])
    await server.collect_garbage()
    assert pool.file_size() == pool.sys_size
    await put(server, payload(4 * KiB))
    assert pool.file_size() == pool.data_offset(0) + 4 * KiB + ZERO_AHEAD


def _counting(monkeypatch, gate: threading.Event | None = None, fail: bool = False) -> list[int]:
    calls: list[int] = []

    def fdatasync(fd: int) -> None:
        calls.append(fd)
        if gate is not None:
            gate.wait(10)
        if fail:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(flush.os, "fdatasync", fdatasync)
    return calls


def _wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_a_sync_that_started_after_a_mark_covers_it(monkeypatch):
    calls = _counting(monkeypatch)
    sync = SharedSync(lambda: 7)
    first, second = sync.mark(), sync.mark()
    sync.sync(first)
    assert calls == [7]
    sync.sync(second)  # taken before that sync started: covered
    sync.sync(first)
    assert calls == [7] and sync.calls == 1
    later = sync.mark()  # writes after the sync began need another
    sync.sync(later)
    assert calls == [7, 7]


def test_a_caller_waits_for_a_running_sync_that_covers_it(monkeypatch):
    gate = threading.Event()
    calls = _counting(monkeypatch, gate)
    sync = SharedSync(lambda: 7)
    early = sync.mark()
    first = threading.Thread(target=sync.sync, args=(early,))
    first.start()
    assert _wait_until(lambda: calls)
    # A mark taken before the running sync began is covered by it: no second call.
    waiter = threading.Thread(target=sync.sync, args=(early,))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and calls == [7]  # waiting for the running sync
    gate.set()
    first.join(5)
    waiter.join(5)
    assert calls == [7]


def test_a_mark_after_a_running_sync_began_gets_its_own(monkeypatch):
    gate = threading.Event()
    calls = _counting(monkeypatch, gate)
    sync = SharedSync(lambda: 7)
    first = threading.Thread(target=sync.sync, args=(sync.mark(),))
    first.start()
    assert _wait_until(lambda: calls)
    late = sync.mark()  # written after the running fdatasync began
    second = threading.Thread(target=sync.sync, args=(late,))
    second.start()
    started = _wait_until(lambda: len(calls) == 2)  # not waiting for the first: it may miss its bytes
    gate.set()
    first.join(5)
    second.join(5)
    assert started and calls == [7, 7]


def test_a_failed_sync_poisons_the_file(monkeypatch):
    calls = _counting(monkeypatch, fail=True)
    sync = SharedSync(lambda: 7)
    mark = sync.mark()
    with pytest.raises(OSError) as first:
        sync.sync(mark)
    monkeypatch.setattr(flush.os, "fdatasync", lambda fd: calls.append(fd))
    # Never retried: a second fdatasync could report success for pages the kernel dropped.
    with pytest.raises(OSError) as again:
        sync.sync(sync.mark())
    assert again.value is first.value and calls == [7]


async def test_no_room_for_the_zeros_still_stores_the_object(server, monkeypatch):
    from ostor.objectserver import pool as pool_module

    real = os.pwrite

    def pwrite(fd, data, offset):
        if len(data) >= ZERO_AHEAD:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(pool_module.os, "pwrite", pwrite)
    data = payload(4 * KiB)
    oid = await put(server, data)
    pool = _pool(server, 4 * KiB)
    assert pool.file_size() == pool.data_offset(0) + 4 * KiB  # grown by the block's own write
    assert await get(server, oid) == data
