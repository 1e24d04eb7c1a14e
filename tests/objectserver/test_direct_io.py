"""Full 8 MiB pieces written with O_DIRECT from reused aligned buffers; pool format versions."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from awscrt.checksums import crc32c

from ostor.objectserver import direct
from ostor.objectserver.layout import MAX_BLOCK
from ostor.objectserver.pool import SYS_FORMAT, Pool
from ostor.objectserver.server import ObjectServer, pool_file_name
from ostor.objectserver.types import ObjectServerConfig

from .conftest import FAST, SERVICE_ID, get, payload, put

MiB = 1 << 20


def _writes_direct(service_dir: Path) -> bool:
    """Whether this filesystem takes O_DIRECT (tmpfs does not: then only the buffered path runs)."""
    fd = direct.open_direct(service_dir / pool_file_name(MAX_BLOCK))
    if fd is None:
        return False
    os.close(fd)
    return True


@pytest.mark.parametrize("size", [MAX_BLOCK, 2 * MAX_BLOCK + 5 * MiB + 17, 3 * MAX_BLOCK])
async def test_large_objects_read_back_and_verify(service_dir: Path, size: int, monkeypatch) -> None:
    calls = []
    real = direct.write_direct
    monkeypatch.setattr("ostor.objectserver.writes.write_direct",
                        lambda *a: calls.append(a[1]) or real(*a))
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    try:
        data = payload(size)
        # Odd frame sizes: pieces straddle frames, so the buffer filling is exercised.
        oid = await put(srv, data, frame_size=3 * MiB + 1)
        assert await get(srv, oid) == data
        assert await get(srv, oid, size - 20, 20) == data[-20:]
        if size > MAX_BLOCK:  # a range across two directly written pieces
            assert await get(srv, oid, MAX_BLOCK - 10, 20) == data[MAX_BLOCK - 10:MAX_BLOCK + 10]
        assert srv.verify().ok
    finally:
        await srv.close()
    if _writes_direct(service_dir):
        assert len(calls) == size // MAX_BLOCK  # every full piece, nothing else
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)  # headers and checksums persisted
    try:
        assert await get(srv, oid) == data
        assert srv.verify().ok
    finally:
        await srv.close()


async def test_buffered_path_when_direct_io_is_off(service_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr("ostor.objectserver.writes.write_direct",
                        lambda *a: pytest.fail("direct write with direct_io=False"))
    config = ObjectServerConfig(fsync=False, direct_io=False)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, config)
    try:
        data = payload(MAX_BLOCK + 1)
        oid = await put(srv, data)
        assert await get(srv, oid) == data
    finally:
        await srv.close()


def test_aligned_buffers_are_reused_and_bounded() -> None:
    buffers = direct.AlignedBuffers(4096, keep=1)
    first, second = buffers.take(), buffers.take()
    buffers.give(first)
    buffers.give(second)  # over ``keep``: unmapped
    assert second.closed and not first.closed
    assert buffers.take() is first
    buffers.close()


def test_fill_copies_across_parts() -> None:
    buffer = direct.AlignedBuffers(10).take()
    rest = direct.fill(buffer, [memoryview(b"abc"), memoryview(b"defghij"), memoryview(b"klm")])
    assert bytes(buffer) == b"abcdefghij"
    assert [bytes(p) for p in rest] == [b"klm"]


async def test_new_pools_use_crc32c_and_version_1_pools_stay_readable(service_dir: Path) -> None:
    path = service_dir / pool_file_name(4096)
    raw = path.read_bytes()
    assert SYS_FORMAT.unpack_from(raw)[1] == 2
    # An old (version 1) pool: same layout, zlib CRC32 data checksums.
    fields = list(SYS_FORMAT.unpack_from(raw))
    fields[1] = 1
    body = SYS_FORMAT.pack(*fields)
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)) + raw[len(body) + 4:])
    pool = Pool.open_file(path, 4096)
    try:
        assert pool.version == 1 and pool.data_crc is zlib.crc32
    finally:
        pool.close()
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    try:
        data = payload(3000)
        oid = await put(srv, data)
        header = srv._pools[0].read_header(srv.stat(oid).pieces[0].block_number)
        assert header.data_crc == zlib.crc32(data) != crc32c(data)
        assert srv.verify().ok
    finally:
        await srv.close()


async def test_large_streamed_reads_hint_the_kernel_to_read_ahead(service_dir: Path, monkeypatch) -> None:
    hints = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: (hints.append((n, advice)),
                                                                         real(fd, off, n, advice))[1])
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    try:
        data = payload(2 * MAX_BLOCK + 3 * MiB)
        oid = await put(srv, data)
        small = await put(srv, payload(100_000))
        assert await get(srv, small) and not hints     # small reads: no hint
        assert await get(srv, oid) == data
        assert hints == [(MAX_BLOCK, os.POSIX_FADV_WILLNEED)] * 2 + [(2 * MiB, os.POSIX_FADV_WILLNEED),
                                                                      (MiB, os.POSIX_FADV_WILLNEED)]
    finally:
        await srv.close()


def test_idle_buffers_are_unmapped_after_a_quiet_period() -> None:
    buffers = direct.AlignedBuffers(4096, keep=4)
    taken = [buffers.take() for _ in range(3)]
    for buffer in taken:
        buffers.give(buffer)
    assert buffers.release_idle(unused_for=60.0) == 0   # just used: kept for the next burst
    assert buffers.release_idle(unused_for=0.0) == 3
    assert all(buffer.closed for buffer in taken)


async def test_filesystems_refusing_o_direct_get_buffered_writes(service_dir: Path, monkeypatch) -> None:
    import errno
    real_open, real_pwrite = os.open, os.pwrite
    direct_fds: set[int] = set()

    def open_(path, flags, *args):
        fd = real_open(path, flags, *args)
        if flags & os.O_DIRECT:
            direct_fds.add(fd)
        return fd

    def pwrite(fd, data, offset):
        if fd in direct_fds:  # accepted at open, refused at write (some FUSE filesystems)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "pwrite", pwrite)
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    try:
        data = payload(2 * MAX_BLOCK)
        oid = await put(srv, data)
        assert await get(srv, oid) == data and srv.verify().ok
        if _writes_direct(service_dir):
            assert srv._pools[-1].direct_refused and srv._pools[-1].direct_fd() is None
    finally:
        await srv.close()


def test_open_direct_answers_none_where_the_filesystem_refuses(tmp_path: Path, monkeypatch) -> None:
    import errno

    def refuse(path, flags, *args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "open", refuse)
    assert direct.open_direct(tmp_path / "pool") is None
