"""Reopen, crash repair, corrupt pool detection and the service lock."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ostor.common.errors import CorruptStoreError, ServiceStoppedError, StorageError
from ostor.objectserver.layout import BLOCK_SIZES, pool_index
from ostor.objectserver.lock import ServiceLockedError
from ostor.objectserver.pool import BITMAP_BYTES, HEADER_SIZE, SYS_FORMAT, Pool
from ostor.objectserver.server import ObjectServer, pool_file_name

from .conftest import FAST, SERVICE_ID, get, payload, put

KiB = 1024


def geometry(service_dir: Path, block_size: int) -> tuple[Path, Pool]:
    """A Pool object used only for its offset arithmetic (no file opened)."""
    path = service_dir / pool_file_name(block_size)
    return path, Pool(path, block_size, -1)


def flip_bit(path: Path, offset: int, bit: int, value: bool) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        byte = byte | (1 << bit) if value else byte & ~(1 << bit)
        f.seek(offset)
        f.write(bytes([byte]))


def set_bit(service_dir: Path, block_size: int, block: int, which: int, value: bool) -> None:
    """which=0: used bitmap, 1: dirty bitmap."""
    path, geo = geometry(service_dir, block_size)
    region, i = divmod(block, 512)
    flip_bit(path, geo.region_start(region) + which * BITMAP_BYTES + i // 8, i % 8, value)


async def reopen(service_dir: Path) -> ObjectServer:
    return await ObjectServer.open(service_dir, SERVICE_ID, FAST)


async def test_index_and_bitmaps_survive_reopen(service_dir):
    srv = await reopen(service_dir)
    objs = {await put(srv, payload(n)): n for n in (1, 4096, 129 * KiB, 9 << 20, 0)}
    datas = {oid: await get(srv, oid) for oid in objs}
    gone = next(iter(objs))
    await srv.delete([gone])
    stats = {oid: srv.stat(oid) for oid in objs if oid != gone}
    usage = srv.usage()
    await srv.close()
    srv = await reopen(service_dir)
    try:
        assert gone not in srv
        assert {o.object_id: o for o in srv.objects()} == stats
        for oid in stats:
            assert await get(srv, oid) == datas[oid]
        assert srv.usage() == usage
        assert srv.usage()["dirty_blocks"] == 1
        assert await srv.collect_garbage() == 1
    finally:
        await srv.close()


async def test_closed_server_refuses(service_dir):
    srv = await reopen(service_dir)
    await srv.close()
    with pytest.raises(ServiceStoppedError):
        await put(srv, b"x")


async def test_repair_invalid_header_frees_block(service_dir):
    srv = await reopen(service_dir)
    a, b = await put(srv, payload(100)), await put(srv, payload(100))
    await srv.close()
    path, geo = geometry(service_dir, 4096)
    flip_bit(path, geo.header_offset(0) + 20, 3, True)  # damage a's header record
    srv = await reopen(service_dir)
    try:
        assert a not in srv and b in srv
        assert srv.repairs.invalid_headers == 1
        assert srv.usage()["pools"][0]["used"] == 1
        c = await put(srv, payload(10))
        assert srv.stat(c).pieces[0].block_number == 0  # the freed block is reused
    finally:
        await srv.close()


async def test_repair_header_without_used_bit_is_free(service_dir):
    srv = await reopen(service_dir)
    a = await put(srv, payload(100))
    await srv.close()
    set_bit(service_dir, 4096, 0, 0, False)
    srv = await reopen(service_dir)
    try:
        assert a not in srv and srv.usage()["used_blocks"] == 0
    finally:
        await srv.close()


async def test_repair_incomplete_object_freed(service_dir):
    srv = await reopen(service_dir)
    a = await put(srv, payload(129 * KiB))
    keep = await put(srv, payload(5))
    await srv.close()
    set_bit(service_dir, 4096, 0, 0, False)  # lose a's 4 KiB tail piece
    srv = await reopen(service_dir)
    try:
        assert a not in srv and keep in srv
        assert srv.repairs.incomplete_objects == 1
        assert srv.usage()["pools"][pool_index(128 * KiB)]["used"] == 0
    finally:
        await srv.close()
    # the repair was written back: a second reopen finds nothing to repair
    srv = await reopen(service_dir)
    try:
        assert srv.repairs.freed_blocks == 0
    finally:
        await srv.close()


@pytest.mark.parametrize("damage_copy", [False, True])
async def test_repair_duplicate_piece_keeps_one(service_dir, damage_copy):
    srv = await reopen(service_dir)
    data = payload(3000)
    a = await put(srv, data)
    await srv.close()
    # Simulate a defrag that crashed after copying block 0 to block 7.
    path, geo = geometry(service_dir, 4096)
    with open(path, "r+b") as f:
        f.seek(geo.header_offset(0))
        header = f.read(HEADER_SIZE)
        f.seek(geo.data_offset(0))
        block = f.read(3000)
        f.seek(geo.header_offset(7))
        f.write(header)
        f.seek(geo.data_offset(7))
        f.write(block)
        if damage_copy:  # the original's data is torn: the copy must win
            f.seek(geo.data_offset(0))
            f.write(b"\0" * 100)
    set_bit(service_dir, 4096, 7, 0, True)
    srv = await reopen(service_dir)
    try:
        assert srv.repairs.duplicate_blocks == 1
        assert srv.usage()["pools"][0]["used"] == 1
        assert srv.stat(a).pieces[0].block_number == (7 if damage_copy else 0)
        assert await get(srv, a) == data
        assert srv.verify().ok
    finally:
        await srv.close()


async def test_repair_half_deleted_object_is_deleted(service_dir):
    srv = await reopen(service_dir)
    a = await put(srv, payload(129 * KiB))
    await srv.close()
    set_bit(service_dir, 4096, 0, 1, True)  # only the tail piece reached the dirty bitmap
    srv = await reopen(service_dir)
    try:
        assert a not in srv and srv.usage()["dirty_blocks"] == 2
        assert await srv.collect_garbage() == 2
        assert srv.usage()["used_blocks"] == 0
    finally:
        await srv.close()


def _rewrite_sys(path: Path, **changes) -> None:
    raw = path.read_bytes()
    fields = list(SYS_FORMAT.unpack_from(raw))
    if "version" in changes:
        fields[1] = changes["version"]
    body = SYS_FORMAT.pack(*fields)
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)) + raw[len(body) + 4:])


def _corrupt(kind: str, path: Path) -> None:
    if kind == "bad magic":
        with open(path, "r+b") as f:
            f.write(b"XXXX")
    elif kind == "truncated":
        os.truncate(path, 10)
    elif kind == "version":
        _rewrite_sys(path, version=99)
    elif kind == "crc":
        with open(path, "r+b") as f:
            f.seek(12)
            f.write(b"\x01")
    elif kind == "missing":
        path.unlink()


@pytest.mark.parametrize("kind", ["bad magic", "truncated", "version", "crc", "missing"])
async def test_corrupt_pool_refused(service_dir, kind):
    srv = await reopen(service_dir)
    await put(srv, payload(64 * KiB))
    await srv.close()
    path = service_dir / pool_file_name(BLOCK_SIZES[4])
    _corrupt(kind, path)
    before = {p.name: p.read_bytes() for p in service_dir.iterdir()}
    with pytest.raises(CorruptStoreError) as info:
        await reopen(service_dir)
    assert info.value.path == str(path)
    assert {p.name: p.read_bytes() for p in service_dir.iterdir()} == before
    with pytest.raises(CorruptStoreError):  # the failed open released the lock
        await reopen(service_dir)


async def test_create_service_twice_fails(service_dir):
    with pytest.raises(FileExistsError):
        ObjectServer.create_service(service_dir, SERVICE_ID)


async def test_second_open_is_refused(service_dir):
    srv = await reopen(service_dir)
    try:
        with pytest.raises(ServiceLockedError) as info:
            await reopen(service_dir)
        assert isinstance(info.value, StorageError) and str(service_dir) in str(info.value)
        code = (
            "import asyncio, sys\n"
            "from ostor.objectserver.server import ObjectServer\n"
            "from ostor.objectserver.lock import ServiceLockedError\n"
            "try:\n"
            f"    asyncio.run(ObjectServer.open({str(service_dir)!r}, {SERVICE_ID}))\n"
            "except ServiceLockedError:\n"
            "    sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], timeout=30)
        assert proc.returncode == 3
    finally:
        await srv.close()
    srv = await reopen(service_dir)  # released on close
    await srv.close()


async def test_repair_stray_dirty_bit_cleared(service_dir):
    """A GC that crashed after clearing the used bit but before the dirty bit."""
    srv = await reopen(service_dir)
    a = await put(srv, payload(100))
    await srv.close()
    set_bit(service_dir, 4096, 3, 1, True)
    srv = await reopen(service_dir)
    try:
        assert srv.repairs.stray_dirty_bits == 1 and a in srv
        assert srv.usage()["dirty_blocks"] == 0 and srv.usage()["used_blocks"] == 1
    finally:
        await srv.close()
