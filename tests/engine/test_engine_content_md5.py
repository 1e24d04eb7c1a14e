"""The engine checks a client's Content-MD5 against the MD5 it computes for the ETag."""

from __future__ import annotations

import hashlib
import os

import pytest

from ostor.common.errors import BadDigest, NoSuchKey
from ostor.engine.check import check_volume

WRONG = hashlib.md5(b"not the body").digest()


async def _read(engine, key):
    return await (await engine.get_object("bkt", key)).read()


async def test_put_with_matching_md5(engine):
    data = os.urandom(3 * 1024 * 1024 + 5)
    record = await engine.put_object("bkt", "k", data, content_md5=hashlib.md5(data).digest())
    assert record.etag == f'"{hashlib.md5(data).hexdigest()}"'
    assert await _read(engine, "k") == data
    empty = await engine.put_object("bkt", "empty", b"", content_md5=hashlib.md5(b"").digest())
    assert empty.etag == f'"{hashlib.md5(b"").hexdigest()}"'


async def test_put_with_wrong_md5_stores_nothing(engine):
    with pytest.raises(BadDigest):
        await engine.put_object("bkt", "k", os.urandom(100_000), content_md5=WRONG)
    with pytest.raises(NoSuchKey):
        await engine.head_object("bkt", "k")
    with pytest.raises(BadDigest):
        await engine.put_object("bkt", "empty", b"", content_md5=WRONG)
    with pytest.raises(NoSuchKey):
        await engine.head_object("bkt", "empty")


async def test_wrong_md5_keeps_existing_object_and_frees_data(disk_engine):
    await disk_engine.put_object("bkt", "k", b"original")

    async def body():
        yield b"r" * 3_000_000
        yield b"s" * 3_000_000

    with pytest.raises(BadDigest):
        await disk_engine.put_object("bkt", "k", body(), content_md5=WRONG)
    assert await _read(disk_engine, "k") == b"original"
    # The rejected data was released at once (no guard expiry needed) and GC frees it.
    await disk_engine.collect_garbage()
    report = await check_volume(disk_engine.services)
    assert report.clean and report.objects == 1 and report.pending == 0


async def test_a_small_body_with_a_wrong_md5_is_refused_before_any_write(disk_engine):
    await disk_engine.put_object("bkt", "k", b"original")
    pools = [pool for server in disk_engine.services.local_object_servers.values() for pool in server._pools]
    writes = sum(pool.pwrites for pool in pools)
    with pytest.raises(BadDigest):
        await disk_engine.put_object("bkt", "k", b"x" * 4096, content_md5=WRONG)
    assert sum(pool.pwrites for pool in pools) == writes  # checked in memory, first
    assert await _read(disk_engine, "k") == b"original"
    await disk_engine.collect_garbage()
    report = await check_volume(disk_engine.services)
    assert report.clean and report.objects == 1 and report.pending == 0


async def test_upload_part_md5(engine):
    upload = await engine.create_upload("bkt", "mp")
    data = os.urandom(200_000)
    with pytest.raises(BadDigest):
        await engine.upload_part("bkt", "mp", upload.upload_id, 1, data, content_md5=WRONG)
    parts, _ = await engine.list_parts("bkt", "mp", upload.upload_id)
    assert parts == []
    part = await engine.upload_part("bkt", "mp", upload.upload_id, 1, data,
                                    content_md5=hashlib.md5(data).digest())
    assert part.etag == f'"{hashlib.md5(data).hexdigest()}"'
    with pytest.raises(BadDigest):
        await engine.upload_part("bkt", "mp", upload.upload_id, 1, b"other", content_md5=WRONG)
    parts, _ = await engine.list_parts("bkt", "mp", upload.upload_id)
    assert [(p.number, p.etag) for p in parts] == [(1, part.etag)]


async def test_body_is_md5_hashed_once(engine, monkeypatch):
    real = hashlib.md5
    fed: list[int] = []

    class Counting:
        def __init__(self, data: bytes = b"") -> None:
            self._impl = real()
            if data:
                self.update(data)

        def update(self, data) -> None:
            fed.append(len(memoryview(data).cast("B")))
            self._impl.update(data)

        def digest(self) -> bytes:
            return self._impl.digest()

        def hexdigest(self) -> str:
            return self._impl.hexdigest()

    data = os.urandom(5 * 1024 * 1024 + 1)
    expected = real(data).digest()
    monkeypatch.setattr(hashlib, "md5", Counting)
    await engine.put_object("bkt", "k", data, content_md5=expected)
    assert sum(fed) == len(data)


@pytest.mark.parametrize("size", [1, 4096, 64 * 1024, 64 * 1024 + 1, 1024 * 1024 - 1])
async def test_small_bodies_either_side_of_the_builtin_md5_limit_get_the_md5_etag(engine, size):
    data = os.urandom(size)
    record = await engine.put_object("bkt", f"s{size}", data, content_md5=hashlib.md5(data).digest())
    assert record.etag == f'"{hashlib.md5(data).hexdigest()}"'
