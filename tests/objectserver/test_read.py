"""Ranged reads: byte-exact across piece boundaries, touching only covering blocks."""

from __future__ import annotations

import os
import random

import pytest

from ostor.common.errors import ObjectNotFoundError
from ostor.common.frames import FRAME_SIZE
from ostor.common.ids import new_object_id

from .conftest import get, payload, put

KiB, MiB = 1024, 1 << 20
SIZE = 8 * MiB + 128 * KiB + 4 * KiB + 1000  # pieces: 8 MiB, 128 KiB, 4 KiB, 4 KiB(1000)


@pytest.fixture
async def big(server):
    data = payload(SIZE)
    oid = await put(server, data)
    return oid, data


async def test_ranges_byte_exact(server, big):
    oid, data = big
    boundaries = [p.object_offset for p in server.stat(oid).pieces] + [SIZE]
    rng = random.Random(7)
    ranges = [(0, None), (0, 0), (SIZE, None), (SIZE - 1, 1)]
    for b in boundaries[1:-1]:
        ranges += [(b - 1, 2), (b - 10, 20), (b, 1), (b - 5000, 5000)]
    ranges += [(o, rng.randint(0, SIZE - o)) for o in (rng.randint(0, SIZE) for _ in range(15))]
    for offset, length in ranges:
        end = SIZE if length is None else offset + length
        assert await get(server, oid, offset, length) == data[offset:end], (offset, length)
        with server.open_read(oid, offset, length) as h:
            assert h.read() == data[offset:end]


async def test_frames_are_bounded(server, big):
    oid, data = big
    frames = [f async for f in server.read(oid)]
    assert all(len(f.data) <= FRAME_SIZE for f in frames)
    assert len(frames) >= SIZE // FRAME_SIZE


async def test_range_touches_only_covering_blocks(server, big, monkeypatch):
    oid, data = big
    st = server.stat(oid)
    p128, p4 = st.pieces[1], st.pieces[2]
    offset = p128.object_offset + p128.used - 100  # last 100 bytes of the 128 KiB piece ...
    with server.open_read(oid, offset, 300) as h:  # ... and first 200 of the 4 KiB piece
        assert [e.length for e in h.extents] == [100, 200]
        expected_fds = {e.fd for e in h.extents}
        spans = [(e.file_offset, e.file_offset + e.length) for e in h.extents]
    calls = []
    real_pread = os.pread

    def counting_pread(fd, n, off):
        calls.append((fd, n, off))
        return real_pread(fd, n, off)

    monkeypatch.setattr(os, "pread", counting_pread)
    assert await get(server, oid, offset, 300) == data[offset:offset + 300]
    monkeypatch.undo()
    assert len(calls) == 2
    for fd, n, off in calls:
        assert fd in expected_fds
        assert any(lo <= off and off + n <= hi for lo, hi in spans)
    assert p4.object_offset == p128.object_offset + p128.used


async def test_bad_ranges(server, big):
    oid, _ = big
    for offset, length in [(-1, None), (0, SIZE + 1), (SIZE + 1, None), (10, -1)]:
        with pytest.raises(ValueError):
            server.open_read(oid, offset, length)
        with pytest.raises(ValueError):
            await get(server, oid, offset, length)
    with pytest.raises(ObjectNotFoundError):
        server.stat(new_object_id())
    with pytest.raises(ObjectNotFoundError):
        await get(server, new_object_id())
    with pytest.raises(ObjectNotFoundError):
        server.open_read(new_object_id())


async def test_small_read_handle_is_one_extent(server):
    data = payload(4 * KiB)
    oid = await put(server, data)
    with server.open_read(oid) as h:
        assert len(h.extents) == 1 and h.extents[0].length == 4 * KiB
        assert h.read() == data
    with pytest.raises(ValueError):
        h.read()  # closed handles no longer read
