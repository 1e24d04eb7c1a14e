"""Splitting objects into pieces, block allocation and alignment."""

from __future__ import annotations

import pytest

from ostor.common.errors import StorageError
from ostor.objectserver.layout import BLOCK_SIZES, split_sizes
from ostor.objectserver.lock import ObjectExistsError

from .conftest import get, payload, put

KiB, MiB = 1024, 1 << 20


@pytest.mark.parametrize("size, expected", [
    (30 * KiB, [(32 * KiB, 30 * KiB)]),
    (129 * KiB, [(128 * KiB, 128 * KiB), (4 * KiB, 1 * KiB)]),
    (1, [(4 * KiB, 1)]),
    (4 * KiB, [(4 * KiB, 4 * KiB)]),
    (8 * MiB, [(8 * MiB, 8 * MiB)]),
    (8 * MiB + 1, [(8 * MiB, 8 * MiB), (4 * KiB, 1)]),
    (16 * MiB + 12 * KiB + 5, [(8 * MiB, 8 * MiB), (8 * MiB, 8 * MiB), (16 * KiB, 12 * KiB + 5)]),
])
async def test_split_via_stat(server, size, expected):
    data = payload(size)
    oid = await put(server, data, frame_size=300 * KiB + 7)  # frames never align with pieces
    st = server.stat(oid)
    assert st.size == size
    assert [(p.pool_block_size, p.used) for p in st.pieces] == expected == split_sizes(size)
    offsets = [p.object_offset for p in st.pieces]
    assert offsets == [sum(u for _, u in expected[:i]) for i in range(len(expected))]
    assert await get(server, oid) == data


async def test_empty_object_survives_reopen(server):
    oid = await put(server, b"")
    st = server.stat(oid)
    assert st.size == 0 and [(p.pool_block_size, p.used) for p in st.pieces] == [(4096, 0)]
    assert await get(server, oid) == b""
    with server.open_read(oid) as h:
        assert h.read() == b"" and h.extents == []


async def test_allocation_fills_lowest_free(server):
    ids = [await put(server, payload(4 * KiB)) for _ in range(6)]
    assert [server.stat(i).pieces[0].block_number for i in ids] == list(range(6))
    await server.delete([ids[1], ids[4]])
    assert await server.collect_garbage() == 2
    a = await put(server, payload(100))
    b = await put(server, payload(100))
    c = await put(server, payload(100))
    assert [server.stat(i).pieces[0].block_number for i in (a, b, c)] == [1, 4, 6]


async def test_data_blocks_aligned(server):
    sizes = [1, 5 * KiB, 70 * KiB, 700 * KiB, 3 * MiB + 3, 8 * MiB + 4 * KiB]
    for size in sizes:
        for _ in range(2):  # second copy exercises block 1 of each pool
            oid = await put(server, payload(size))
            with server.open_read(oid) as h:
                st = server.stat(oid)
                assert len(h.extents) == len(st.pieces)
                for piece, ext in zip(st.pieces, h.extents):
                    assert ext.file_offset % piece.pool_block_size == 0
                    assert ext.length == piece.used


async def test_duplicate_create_refused(server):
    oid = await put(server, b"x")
    with pytest.raises(ObjectExistsError):
        await put(server, b"y", oid)
    assert issubclass(ObjectExistsError, StorageError)
    assert await get(server, oid) == b"x"


def test_pool_sizes():
    assert BLOCK_SIZES[0] == 4 * KiB and BLOCK_SIZES[-1] == 8 * MiB and len(BLOCK_SIZES) == 12
