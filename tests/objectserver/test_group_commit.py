"""Group commit: concurrent writers share fdatasyncs; nothing is acknowledged unsynced."""

from __future__ import annotations

import asyncio
import os
import random
import threading

import pytest

from ostor.common.frames import Frame
from ostor.common.ids import new_object_id
from ostor.objectserver import flush
from ostor.objectserver.flush import ROUNDS_IN_FLIGHT, GroupCommit
from ostor.objectserver.server import ObjectServer
from ostor.objectserver.types import ObjectServerConfig

from .conftest import SERVICE_ID, get, payload, put

DURABLE = ObjectServerConfig(fsync=True)


async def test_32_concurrent_creates_share_fdatasyncs(service_dir):
    srv = await ObjectServer.open(service_dir, SERVICE_ID, DURABLE)
    try:
        data = payload(4096)
        before = srv.flusher.fdatasync_calls
        ids = await asyncio.gather(*(put(srv, data) for _ in range(32)))
        calls = srv.flusher.fdatasync_calls - before
        assert 1 <= calls <= 4, calls
        assert srv.flusher.commits >= 32
        for oid in ids:
            assert await get(srv, oid) == data
    finally:
        await srv.close()


async def test_slow_writers_still_batched(service_dir):
    """Writers that finish at different moments join whichever round is next."""
    srv = await ObjectServer.open(service_dir, SERVICE_ID, DURABLE)

    async def slow_frames(data: bytes, delay: float):
        await asyncio.sleep(delay)
        yield Frame(data, True)

    try:
        rng = random.Random(1)
        before = srv.flusher.fdatasync_calls
        await asyncio.gather(*(srv.create(new_object_id(), slow_frames(b"x" * 4096, rng.random() / 100))
                               for _ in range(64)))
        assert srv.flusher.fdatasync_calls - before < 64
    finally:
        await srv.close()


async def test_rounds_overlap_up_to_the_limit(tmp_path, monkeypatch):
    """A writer arriving while a round runs starts the next round at once, up to
    ROUNDS_IN_FLIGHT; the one after waits for a round to end, and nobody is answered
    before the fdatasync covering it returns."""
    release, lock, running = threading.Event(), threading.Lock(), []

    def blocked_fdatasync(fd: int) -> None:
        with lock:
            running.append(fd)
        release.wait(10)
        with lock:
            running.remove(fd)

    monkeypatch.setattr(flush.os, "fdatasync", blocked_fdatasync)
    group = GroupCommit()
    fd = os.open(tmp_path / "pool", os.O_CREAT | os.O_RDWR)
    try:
        writers = [asyncio.create_task(group.commit([fd])) for _ in range(ROUNDS_IN_FLIGHT + 1)]
        for _ in range(500):
            if len(running) == ROUNDS_IN_FLIGHT:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert len(running) == ROUNDS_IN_FLIGHT == group.rounds
        assert not any(w.done() for w in writers)
        release.set()
        await asyncio.gather(*writers)
        assert group.rounds == ROUNDS_IN_FLIGHT + 1
    finally:
        release.set()
        await group.close()
        os.close(fd)


async def test_create_and_delete_wait_for_fdatasync(service_dir):
    srv = await ObjectServer.open(service_dir, SERVICE_ID, DURABLE)
    try:
        n = srv.flusher.fdatasync_calls
        oid = await put(srv, payload(100))
        assert srv.flusher.fdatasync_calls > n
        n = srv.flusher.fdatasync_calls
        await srv.delete([oid])
        assert srv.flusher.fdatasync_calls > n
    finally:
        await srv.close()


async def test_mixed_concurrent_load_then_reopen(service_dir):
    """Creates, deletes, GC and defrag interleaved; everything reads back after reopen."""
    config = ObjectServerConfig(fsync=False, gc_interval=0.001, defrag_interval=0.001,
                                defrag_min_free=1, defrag_threshold=0.0, defrag_batch=4)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, config)
    await srv.start()
    rng = random.Random(5)
    live: dict[bytes, bytes] = {}

    async def writer(k: int) -> None:
        for _ in range(25):
            data = payload(rng.choice([1, 4096, 5000, 40_000, 300_000]))
            oid = await put(srv, data)
            live[oid] = data
            if rng.random() < 0.5:
                victim = rng.choice(list(live))
                await srv.delete([victim])
                live.pop(victim, None)
            await asyncio.sleep(0)

    async def reader() -> None:
        for _ in range(200):
            if live:
                oid = rng.choice(list(live))
                data = live[oid]
                try:
                    assert await get(srv, oid) == data
                except Exception as exc:  # deleted between choice and read is fine
                    if oid in live:
                        raise exc
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in range(8)), reader(), reader())
    await srv.defragment()
    await srv.collect_garbage()
    assert srv.verify().ok
    assert srv.gc_worker.stats.errors == 0 and srv.defrag_worker.stats.errors == 0
    await srv.close()
    srv = await ObjectServer.open(service_dir, SERVICE_ID, config)
    try:
        assert srv.repairs.freed_blocks == 0
        assert {o.object_id for o in srv.objects()} == set(live)
        for oid, data in live.items():
            assert await get(srv, oid) == data
    finally:
        await srv.close()


async def test_a_round_syncs_every_file_and_reports_any_failure(tmp_path, monkeypatch):
    import errno
    import os

    from ostor.objectserver.flush import GroupCommit

    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT) for i in range(3)]
    synced, failing = [], {fds[1]}
    real = os.fdatasync

    def fdatasync(fd):
        if fd in failing:
            raise OSError(errno.EIO, "Input/output error")
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    flusher = GroupCommit(fsync=True)
    try:
        try:
            await flusher.commit(fds)
        except OSError as exc:
            assert exc.errno == errno.EIO  # one file failed: the writers of the round learn it
        else:
            raise AssertionError("a failed fdatasync was acknowledged")
        failing.clear()
        synced.clear()
        await flusher.commit(fds)
        assert sorted(synced) == sorted(fds)
    finally:
        await flusher.close()
        for fd in fds:
            os.close(fd)


async def test_a_deferred_create_leaves_its_fdatasyncs_to_the_caller(service_dir, monkeypatch):
    from ostor.common.frames import frames_from_bytes

    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd):
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, DURABLE)
    try:
        data = payload(129 * 1024)  # a 128 KiB piece and a 4 KiB-pool piece: two pool files
        oid = new_object_id()
        result = await srv.create(oid, frames_from_bytes(data), defer_sync=True)
        assert synced == [] and srv.flusher.fdatasync_calls == 0  # acknowledged unsynced
        assert len(result.unsynced) == 2
        for call in result.unsynced:
            call()
        assert sorted(synced) == sorted({pool.fd for pool in srv._pools if pool.block_size in (4096, 128 * 1024)})
        assert await get(srv, oid) == data
        # Without the flag a create is durable when it returns and owes nothing.
        synced.clear()
        plain = await srv.create(new_object_id(), frames_from_bytes(data))
        assert plain.unsynced == () and len(synced) == 2
    finally:
        await srv.close()
    with pytest.raises(OSError):
        result.unsynced[0]()  # a closed pool refuses, never syncs a reused descriptor
