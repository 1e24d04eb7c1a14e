"""The same basic behaviour from the disk server and its in-memory twin."""

from __future__ import annotations

import pytest

from ostor.common.errors import ObjectNotFoundError, StorageError, TruncatedStreamError
from ostor.common.ids import new_object_id
from ostor.objectserver.memory import MemoryObjectServer
from ostor.objectserver.server import ObjectServer

from .conftest import FAST, SERVICE_ID, get, payload, put, truncated_frames

KiB = 1024


@pytest.fixture(params=["disk", "memory"])
async def any_server(request, service_dir):
    if request.param == "disk":
        srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    else:
        srv = await MemoryObjectServer.open()
    yield srv
    await srv.close()


@pytest.mark.parametrize("size", [0, 1, 4096, 129 * KiB, (1 << 20) * 2 + 3])
async def test_create_read_delete(any_server, size):
    srv = any_server
    data = payload(size)
    oid = await put(srv, data)
    assert oid in srv and srv.stat(oid).size == size
    assert await get(srv, oid) == data
    assert await get(srv, oid, size // 3, size // 3) == data[size // 3: 2 * (size // 3)]
    with srv.open_read(oid) as h:
        assert h.read() == data
    assert [o.object_id for o in srv.objects()] == [oid]
    assert await srv.delete([oid, new_object_id()]) == 1
    assert oid not in srv
    with pytest.raises(ObjectNotFoundError):
        srv.stat(oid)
    await srv.collect_garbage()
    assert srv.usage()["dirty_blocks"] == 0 and srv.usage()["used_blocks"] == 0


async def test_same_layout(any_server):
    oid = await put(any_server, payload(129 * KiB))
    assert [(p.pool_block_size, p.used, p.object_offset) for p in any_server.stat(oid).pieces] == [
        (128 * KiB, 128 * KiB, 0), (4 * KiB, 1 * KiB, 128 * KiB)]


async def test_errors(any_server):
    srv = any_server
    with pytest.raises(TruncatedStreamError):
        await srv.create(new_object_id(), truncated_frames(b"abc"))
    oid = await put(srv, b"abc")
    with pytest.raises(StorageError):
        await put(srv, b"abc", oid)
    with pytest.raises(ValueError):
        srv.open_read(oid, 2, 5)
    with pytest.raises(ObjectNotFoundError):
        await get(srv, new_object_id())


async def test_pinned_survive_gc(any_server):
    srv = any_server
    oid = await put(srv, b"pinned")
    with srv.open_read(oid) as h:
        await srv.delete([oid])
        assert await srv.collect_garbage() == 0
        assert h.read() == b"pinned"
    assert await srv.collect_garbage() == 1
