"""Delete, garbage collection, pinning and defragmentation."""

from __future__ import annotations

import asyncio

from ostor.common.errors import TruncatedStreamError
from ostor.common.ids import new_object_id
from ostor.objectserver.server import ObjectServer
from ostor.objectserver.types import ObjectServerConfig

import pytest

from .conftest import FAST, SERVICE_ID, get, payload, put, truncated_frames

KiB, MiB = 1024, 1 << 20


async def test_delete_gc_reuse(server):
    ids = [await put(server, payload(129 * KiB)) for _ in range(4)]
    assert await server.delete([ids[0], ids[2], new_object_id()]) == 2
    assert await server.delete([ids[0]]) == 0  # idempotent
    assert ids[0] not in server and ids[1] in server
    assert {o.object_id for o in server.objects()} == {ids[1], ids[3]}
    assert server.usage()["dirty_blocks"] == 4
    assert await server.collect_garbage() == 4
    assert await server.collect_garbage() == 0
    u = server.usage()
    assert u["dirty_blocks"] == 0 and u["used_blocks"] == 4
    new = await put(server, payload(129 * KiB))
    assert [p.block_number for p in server.stat(new).pieces] == [0, 0]


async def test_pinned_object_not_freed(server):
    data = payload(16 * KiB)
    oid = await put(server, data)
    handle = server.open_read(oid)
    await server.delete([oid])
    assert await server.collect_garbage() == 0
    other = await put(server, payload(16 * KiB))  # must not land on the pinned block
    assert server.stat(other).pieces[0].block_number == 1
    assert handle.read() == data
    handle.close()
    assert await server.collect_garbage() == 1


async def test_gc_worker_runs_in_background(server):
    await server.start()
    oid = await put(server, payload(5000))
    await server.delete([oid])
    for _ in range(100):
        if server.usage()["dirty_blocks"] == 0:
            break
        await asyncio.sleep(0.01)
    assert server.usage()["dirty_blocks"] == 0 and server.gc_worker.stats.steps >= 1


@pytest.mark.parametrize("size", [100, 3 * MiB, 9 * MiB])
async def test_truncated_stream_frees_everything(server, size):
    oid = new_object_id()
    with pytest.raises(TruncatedStreamError):
        await server.create(oid, truncated_frames(payload(size)))
    assert oid not in server
    assert server.usage()["used_blocks"] == 0
    await put(server, b"ok", oid)  # the id is usable again


async def test_failing_stream_frees_everything(server):
    async def broken():
        from ostor.common.frames import Frame
        yield Frame(payload(9 * MiB), False)
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await server.create(new_object_id(), broken())
    assert server.usage()["used_blocks"] == 0


async def _fragmented(server, n=10, size=4 * KiB):
    datas = {}
    for _ in range(n):
        data = payload(size)
        datas[await put(server, data)] = data
    ids = list(datas)
    await server.delete(ids[: n - 2])
    for oid in ids[: n - 2]:
        del datas[oid]
    await server.collect_garbage()
    return datas, ids[n - 2], ids[n - 1]


async def test_defrag_skips_pinned_then_moves(server):
    datas, second_last, last = await _fragmented(server)
    pool = server._pools[0]
    assert server.stat(last).pieces[0].block_number == 9
    with server.open_read(last) as handle:
        extents = list(handle.extents)
        assert await server.defragment() == 1  # only the unpinned one moved
        assert server.stat(second_last).pieces[0].block_number == 0
        assert server.stat(last).pieces[0].block_number == 9
        assert handle.extents == extents and handle.read() == datas[last]
        assert pool.file_size() == pool.data_offset(9) + 4096
    assert await server.defragment() == 1
    assert server.stat(last).pieces[0].block_number == 1
    assert pool.file_size() == pool.data_offset(1) + 4096
    for oid, data in datas.items():
        assert await get(server, oid) == data
    assert server.verify().ok


async def test_defrag_while_streaming_read(server):
    datas, _, last = await _fragmented(server, n=6, size=3 * MiB + 5)
    stream = server.read(last)
    first = await anext(stream)  # the generator now pins the object
    moved = await server.defragment()
    assert moved == 3  # the other object's 3 pieces; the one being read stays put
    assert all(p.block_number == 5 for p in server.stat(last).pieces)
    rest = [f async for f in stream]
    assert bytes(first.data) + b"".join(bytes(f.data) for f in rest) == datas[last]
    assert await server.defragment() == 3  # released: its 2 MiB, 1 MiB and 4 KiB pieces move
    assert all(p.block_number == 1 for p in server.stat(last).pieces)
    for oid, data in datas.items():
        assert await get(server, oid) == data


async def test_defrag_persists_and_truncates(service_dir):
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    datas = {}
    for size in (4 * KiB, 129 * KiB, 1 * MiB, 9 * MiB) * 4:
        data = payload(size)
        datas[await put(srv, data)] = data
    doomed = list(datas)[:8]
    await srv.delete(doomed)
    for oid in doomed:
        del datas[oid]
    await srv.collect_garbage()
    sizes_before = [p["file_bytes"] for p in srv.usage()["pools"]]
    moved = await srv.defragment()
    assert moved > 0
    sizes_after = [p["file_bytes"] for p in srv.usage()["pools"]]
    assert sum(sizes_after) < sum(sizes_before)
    assert srv.usage()["free_blocks"] == 0
    for oid, data in datas.items():
        assert await get(srv, oid) == data
    stats = {o.object_id: o for o in srv.objects()}
    await srv.close()
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    try:
        assert srv.repairs.freed_blocks == 0
        assert {o.object_id: o for o in srv.objects()} == stats
        for oid, data in datas.items():
            assert await get(srv, oid) == data
        assert srv.verify().ok
    finally:
        await srv.close()


async def test_defrag_max_moves(server):
    await _fragmented(server, n=12)
    assert await server.defragment(max_moves=1) == 1
    assert await server.defragment() == 1


async def test_verify_reports_damage(server):
    data = payload(10 * KiB)
    oid = await put(server, data)
    good = await put(server, payload(10))
    piece = server.stat(oid).pieces[0]
    pool = server._pools[1]
    with open(pool.path, "r+b") as f:
        f.seek(pool.data_offset(piece.block_number) + 5)
        f.write(b"!")
    report = server.verify()
    assert [d.object_id for d in report.damaged] == [oid]
    assert report.objects_checked == 2 and not report.ok
    assert good not in {d.object_id for d in report.damaged}
    assert report.pools[1].used == 1 and report.pools[1].file_bytes > 0


async def test_defrag_worker_compacts_in_background(service_dir):
    from ostor.objectserver.types import ObjectServerConfig

    config = ObjectServerConfig(fsync=False, gc_interval=0.01, defrag_interval=0.01,
                                defrag_min_free=2, defrag_threshold=0.1, defrag_batch=2)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, config)
    try:
        datas, _, _ = await _fragmented(srv, n=20)
        pool = srv._pools[0]
        await srv.start()
        for _ in range(200):
            if pool.file_size() == pool.data_offset(1) + 4096:
                break
            await asyncio.sleep(0.01)
        assert pool.file_size() == pool.data_offset(1) + 4096
        assert srv.defrag_worker.stats.busy_steps >= 1
        for oid, data in datas.items():
            assert await get(srv, oid) == data
    finally:
        await srv.close()


async def test_block_of_abandoned_thread_write_freed_only_when_write_ends(server):
    """A cancelled create must not free a block an I/O thread is still writing."""
    import concurrent.futures

    pool = server._pools[0]
    block = pool.allocate()
    pending = concurrent.futures.Future()
    server._release_when_done(pool, block, pending)
    await asyncio.sleep(0.01)
    assert pool.is_used(block)
    pending.set_result(0)
    await asyncio.sleep(0.01)
    assert not pool.is_used(block) and pool.lowest_free() == block


async def test_cancelled_large_create_leaves_nothing(server):
    from ostor.common.frames import Frame

    started = asyncio.Event()

    async def endless():
        yield Frame(payload(9 * MiB), False)
        started.set()
        await asyncio.sleep(3600)
        yield Frame(b"", True)

    task = asyncio.create_task(server.create(new_object_id(), endless()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if server.usage()["used_blocks"] == 0:
            break
        await asyncio.sleep(0.01)
    assert server.usage()["used_blocks"] == 0


async def test_close_stops_the_workers_before_refusing_their_requests(service_dir):
    """A defragmentation step that runs while close() is under way finishes normally."""
    config = ObjectServerConfig(fsync=False, gc_interval=3600, defrag_interval=3600, defrag_min_free=1)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, config)
    await srv.start()
    ids = [await put(srv, payload(4096)) for _ in range(8)]
    await srv.delete(ids[:4])
    await srv.collect_garbage()  # four holes below four live blocks: worth moving
    real_stop = srv.gc_worker.stop

    async def stop_gc_worker():
        srv.defrag_worker.wake()
        await asyncio.sleep(0.1)  # the defragmenter moves blocks while close() runs
        await real_stop()

    srv.gc_worker.stop = stop_gc_worker
    await srv.close()
    assert srv.defrag_worker.stats.steps >= 1
    assert srv.defrag_worker.stats.errors == 0, srv.defrag_worker.stats.last_error
