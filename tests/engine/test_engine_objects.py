"""Engine object and bucket operations, through the engine API only (no HTTP)."""

from __future__ import annotations

import gc
import hashlib
import os
import sys

import pytest

from ostor.common.errors import (
    BucketAlreadyExists, BucketAlreadyOwnedByYou, BucketNotEmpty, CorruptStoreError, InvalidBucketName,
    InvalidRange, KeyTooLongError, MethodNotAllowed, NoSuchBucket, NoSuchKey, PreconditionFailed,
    TruncatedStreamError,
)
from ostor.engine.check import check_volume
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig
from ostor.engine.types import ByteRange
from ostor.nameserver.records import Versioning, WriteCondition

from .s3model import model_entries


async def _read(engine, key, **kw):
    return await (await engine.get_object("bkt", key, **kw)).read()


async def test_put_get_head_delete(engine):
    data = os.urandom(129 * 1024)
    rec = await engine.put_object("bkt", "dir/a b+c%", data, content_type="text/plain",
                                  metadata={"color": "blue"}, owner="alice")
    assert rec.etag == f'"{hashlib.md5(data).hexdigest()}"' and rec.size == len(data)
    head = await engine.head_object("bkt", "dir/a b+c%")
    assert head.content_type == "text/plain" and head.metadata == {"color": "blue"}
    assert await _read(engine, "dir/a b+c%") == data
    await engine.delete_object("bkt", "dir/a b+c%")
    with pytest.raises(NoSuchKey):
        await engine.head_object("bkt", "dir/a b+c%")


async def test_streamed_body_and_empty_object(engine):
    async def body():
        for i in range(5):
            yield bytes([i]) * 700_000

    rec = await engine.put_object("bkt", "streamed", body())
    assert rec.size == 3_500_000
    assert await _read(engine, "streamed") == b"".join(bytes([i]) * 700_000 for i in range(5))
    empty = await engine.put_object("bkt", "empty", b"")
    assert empty.size == 0 and empty.etag == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert await _read(engine, "empty") == b""


async def test_ranges(engine):
    data = os.urandom(9 * 1024 * 1024 + 17)
    await engine.put_object("bkt", "big", data)
    for rng, expected in [(ByteRange(0, 0), data[:1]), (ByteRange(8 * 1024 * 1024 - 3, 8 * 1024 * 1024 + 3),
                                                          data[8 * 1024 * 1024 - 3: 8 * 1024 * 1024 + 4]),
                          (ByteRange(100), data[100:]), (ByteRange(suffix=50), data[-50:]),
                          (ByteRange(5, 10**12), data[5:])]:
        reader = await engine.get_object("bkt", "big", byte_range=rng)
        assert reader.partial and await reader.read() == expected
    with pytest.raises(InvalidRange):
        await engine.get_object("bkt", "big", byte_range=ByteRange(len(data)))


async def test_errors(engine):
    with pytest.raises(NoSuchBucket):
        await engine.get_object("nobucket", "k")
    with pytest.raises(NoSuchBucket):
        await engine.put_object("nobucket", "k", b"x")
    with pytest.raises(NoSuchKey):
        await engine.get_object("bkt", "missing")
    with pytest.raises(KeyTooLongError):
        await engine.put_object("bkt", "k" * 1025, b"x")
    with pytest.raises(InvalidBucketName):
        await engine.create_bucket("Bad_Name", "alice")
    with pytest.raises(BucketAlreadyOwnedByYou):
        await engine.create_bucket("bkt", "alice")
    with pytest.raises(BucketAlreadyExists):
        await engine.create_bucket("bkt", "bob")


async def test_bucket_lifecycle(engine):
    await engine.create_bucket("other", "bob")
    assert [b.name for b in await engine.list_buckets()] == ["bkt", "other"]
    assert [b.name for b in await engine.list_buckets("bob")] == ["other"]
    await engine.put_object("other", "deep/er/key", b"1")
    with pytest.raises(BucketNotEmpty):
        await engine.delete_bucket("other")
    await engine.delete_object("other", "deep/er/key")
    await engine.delete_bucket("other")
    with pytest.raises(NoSuchBucket):
        await engine.get_bucket("other")


async def test_conditional_writes(engine):
    await engine.put_object("bkt", "c", b"1", condition=WriteCondition(if_none_match_star=True))
    with pytest.raises(PreconditionFailed):
        await engine.put_object("bkt", "c", b"2", condition=WriteCondition(if_none_match_star=True))
    etag = (await engine.head_object("bkt", "c")).etag
    with pytest.raises(PreconditionFailed):
        await engine.put_object("bkt", "c", b"3", condition=WriteCondition(if_match='"nope"'))
    await engine.put_object("bkt", "c", b"4", condition=WriteCondition(if_match=etag))
    assert await _read(engine, "c") == b"4"


async def test_copy(engine):
    await engine.put_object("bkt", "src", b"hello", metadata={"a": "1"}, content_type="x/y")
    new, source = await engine.copy_object("bkt", "src", "bkt", "dst/copy")
    assert new.metadata == {"a": "1"} and new.content_type == "x/y" and source.key == "src"
    assert await _read(engine, "dst/copy") == b"hello"
    replaced, _ = await engine.copy_object("bkt", "src", "bkt", "src", replace_fields={"metadata": {"b": "2"}})
    assert replaced.metadata == {"b": "2"} and await _read(engine, "src") == b"hello"


async def test_versioning(engine):
    await engine.update_bucket("bkt", versioning=Versioning.ENABLED)
    v1 = await engine.put_object("bkt", "v", b"one")
    v2 = await engine.put_object("bkt", "v", b"two")
    assert v1.version_id != v2.version_id and "null" not in (v1.version_id, v2.version_id)
    marker = await engine.delete_object("bkt", "v")
    assert marker.delete_marker
    with pytest.raises(NoSuchKey) as err:
        await engine.head_object("bkt", "v")
    assert err.value.headers["x-amz-delete-marker"] == "true"
    with pytest.raises(MethodNotAllowed):
        await engine.head_object("bkt", "v", marker.version_id)
    assert await _read(engine, "v", version_id=v1.version_id) == b"one"
    page = await engine.list_versions("bkt")
    assert [(r.version_id, r.delete_marker, r.is_latest) for r in page.versions] == [
        (marker.version_id, True, True), (v2.version_id, False, False), (v1.version_id, False, False)]
    await engine.delete_object("bkt", "v", marker.version_id)
    assert await _read(engine, "v") == b"two"


async def test_version_pages_walk_keys_with_more_versions_than_one_shard_read(engine):
    """Shards are read in steps (ostor.engine.listing): a key with more versions than a
    step spans reads, and every page size walks every version once, newest first."""
    await engine.update_bucket("bkt", versioning=Versioning.ENABLED)
    many = [(await engine.put_object("bkt", "a/many", str(i).encode())).version_id for i in range(80)]
    others = [f"{d}/k{i}" for d in "bcd" for i in range(12)]
    for key in others:
        await engine.put_object("bkt", key, b"x")
    expected = [("a/many", v) for v in reversed(many)] + [(k, None) for k in sorted(others)]
    for max_keys in (1000, 7, 33, 64):
        walked, key_marker, version_marker = [], "", ""
        while True:
            page = await engine.list_versions("bkt", key_marker=key_marker, version_id_marker=version_marker,
                                              max_keys=max_keys)
            walked += [(r.key, r.version_id) for r in page.versions]
            if not page.truncated:
                break
            key_marker, version_marker = page.next_key_marker, page.next_version_marker
        assert [k for k, _ in walked] == [k for k, _ in expected]
        assert [v for _, v in walked[:80]] == [v for _, v in expected[:80]]
        assert len(set(walked)) == len(walked)


async def test_listing_across_name_servers_matches_model(engine):
    keys = [f"{d}/{s}/{n}" for d in ("a", "b", "c/d", "é") for s in ("x", "y", "z") for n in range(4)]
    keys += ["a", "b/", "top1", "top2"]
    for key in keys:
        await engine.put_object("bkt", key, key.encode())
    for prefix, delimiter in [("", ""), ("", "/"), ("a/", "/"), ("c/", "/"), ("a", ""), ("b/", "y/")]:
        expected = model_entries(keys, prefix, delimiter)
        for max_keys in (1, 3, 1000):
            walked, marker = [], ""
            while True:
                page = await engine.list_objects("bkt", prefix, delimiter, marker, max_keys)
                rows = [(o.key, False) for o in page.objects] + [(p, True) for p in page.common_prefixes]
                walked += sorted(rows)
                if not page.truncated:
                    break
                marker = page.next_marker
            assert walked == expected, (prefix, delimiter, max_keys)


async def test_truncated_stream_leaves_nothing_after_guard_expiry(disk_engine):
    async def broken():
        yield b"x" * 5_000_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await disk_engine.put_object("bkt", "broken", broken())
    with pytest.raises(NoSuchKey):
        await disk_engine.head_object("bkt", "broken")
    await disk_engine.collect_garbage(expire_guards_at=float("inf"))
    report = await check_volume(disk_engine.services)
    assert report.clean and report.objects == 0 and report.pending == 0


async def test_object_server_refuses_stream_without_end(disk_engine):
    from ostor.common.frames import Frame
    from ostor.common.ids import new_object_id

    os_id = disk_engine.services.placement.object_servers[0]
    server = disk_engine.services.object_server(os_id)

    async def no_eod():
        yield Frame(b"y" * 10000, False)

    with pytest.raises(TruncatedStreamError):
        await server.create(new_object_id(), no_eod())
    assert list(server.objects()) == []


async def test_restart_keeps_everything(tmp_path):
    config = ServiceConfig(ns_count=2, os_count=3)
    async with await Engine.open(tmp_path / "d", config) as eng:
        await eng.create_bucket("keep", "alice")
        for i in range(50):
            await eng.put_object("keep", f"k/{i}", str(i).encode() * (i * 100 + 1))
    async with await Engine.open(tmp_path / "d", config) as eng:
        for i in range(50):
            assert await (await eng.get_object("keep", f"k/{i}")).read() == str(i).encode() * (i * 100 + 1)
        assert len((await eng.list_objects("keep")).objects) == 50


async def test_corrupt_stores_refuse_to_start(tmp_path):
    async with await Engine.open(tmp_path / "d", ServiceConfig(ns_count=1, os_count=1)) as eng:
        await eng.create_bucket("keep", "alice")
        layout = eng.services.layout
    (tmp_path / "d" / "volume.json").write_text("{not json")
    with pytest.raises(CorruptStoreError) as err:
        await Engine.open(tmp_path / "d")
    assert "volume.json" in str(err.value)
    layout.save()
    db = next(layout.service_dir(layout.name_servers[0]).glob("*.db"))
    before = db.read_bytes()
    db.write_bytes(b"garbage" * 1000)
    with pytest.raises(CorruptStoreError) as err:
        await Engine.open(tmp_path / "d")
    assert db.name in str(err.value)
    db.write_bytes(before)
    pool = sorted(layout.service_dir(layout.object_servers[0]).glob("*pool*"))[0]
    pool_bytes = pool.read_bytes()
    pool.write_bytes(b"\0" * len(pool_bytes))
    with pytest.raises(CorruptStoreError) as err:
        await Engine.open(tmp_path / "d")
    assert pool.name in str(err.value)
    assert pool.read_bytes() == b"\0" * len(pool_bytes)  # never reinitialised silently


async def test_malformed_version_id_is_invalid_argument(engine):
    from ostor.common.errors import InvalidArgument, NoSuchVersion

    await engine.update_bucket("bkt", versioning=Versioning.ENABLED)
    version = (await engine.put_object("bkt", "vk", b"1")).version_id
    for bad in ("nope", "x" * 21, "../../etc"):
        with pytest.raises(InvalidArgument):
            await engine.head_object("bkt", "vk", bad)
        with pytest.raises(InvalidArgument):
            await engine.delete_object("bkt", "vk", bad)
    with pytest.raises(NoSuchVersion):  # well-formed but unknown
        await engine.head_object("bkt", "vk", version[:-1] + ("A" if version[-1] != "A" else "B"))
    assert (await engine.head_object("bkt", "vk", version)).version_id == version


async def test_puts_leave_no_half_read_stream_to_the_loop(disk_engine):
    """A create stops reading at the end-of-data frame; the engine closes the stream itself.

    Left to the garbage collector, each such async generator makes the loop schedule a
    finaliser task through a cross-thread wake-up: one per PUT, measurable at 4 KiB.
    """
    hooks = sys.get_asyncgen_hooks()
    finalised: list[str] = []

    def finalizer(agen):
        finalised.append(agen.ag_code.co_qualname)
        hooks.finalizer(agen)

    sys.set_asyncgen_hooks(hooks.firstiter, finalizer)
    try:
        await disk_engine.put_object("bkt", "small", b"x" * 4096)
        await disk_engine.put_object("bkt", "large", os.urandom(3 * 1024 * 1024 + 1))
        await disk_engine.copy_object("bkt", "small", "bkt", "copy")
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(*hooks)
    assert finalised == []
    assert await (await disk_engine.get_object("bkt", "copy")).read() == b"x" * 4096
