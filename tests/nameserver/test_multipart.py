"""Multipart uploads: parts, replacement, paging, completion with a subset, stale parts, abort, listing."""

import time

import pytest

from ostor.common.errors import GuardMissingError, InvalidPart, NoSuchUpload, PreconditionFailed
from ostor.common.ids import new_object_id
from ostor.nameserver.records import ObjectRecord, PartRecord, Segment, UploadRecord, Versioning, WriteCondition

from .conftest import OS_ID

N, E = Versioning.NONE, Versioning.ENABLED


async def new_upload(ns, key="big", bucket="b"):
    return await ns.upload_create(UploadRecord("", bucket, key, 0, "u1", ObjectRecord(bucket, key,
                                                                                      content_type="x/y")))


async def put_part(ns, up, number, size=100):
    oid = new_object_id()
    await ns.guard(OS_ID, oid)
    part = PartRecord(number, size, f'"p{number}"', Segment(OS_ID, oid, size))
    old = await ns.part_put(up.bucket, up.key, up.upload_id, part, oid)
    return part, old


async def test_upload_flow(anyns):
    ns = anyns
    up = await new_upload(ns)
    assert up.upload_id and up.initiated_ns > 0
    got = await ns.upload_get("b", "big", up.upload_id)
    assert got.template.content_type == "x/y" and got.owner == "u1"
    with pytest.raises(NoSuchUpload):
        await ns.upload_get("b", "other", up.upload_id)
    parts = {n: (await put_part(ns, up, n))[0] for n in range(1, 6)}
    p3, old = await put_part(ns, up, 3, size=50)   # replace part 3
    assert old.segment == parts[3].segment
    assert await ns.gc_pending() == [(OS_ID, parts[3].segment.object_id)]
    parts[3] = p3
    assert (await ns.bucket_usage("b")).upload_bytes == 450
    page, more = await ns.parts_list("b", "big", up.upload_id, marker=0, limit=2)
    assert [p.number for p in page] == [1, 2] and more
    page, more = await ns.parts_list("b", "big", up.upload_id, marker=2, limit=10)
    assert [p.number for p in page] == [3, 4, 5] and not more and page[0].size == 50
    # a stale part (old segment of part 3) is refused and nothing changes
    stale = PartRecord(3, 100, '"p3"', old.segment)
    with pytest.raises(InvalidPart):
        await ns.upload_complete("b", "big", up.upload_id, ObjectRecord("b", "big", parts=(parts[1], stale)), N)
    with pytest.raises(PreconditionFailed):
        await ns.upload_complete("b", "big", up.upload_id, ObjectRecord("b", "big", parts=(parts[1],)), N,
                                 WriteCondition(if_match='"zzz"'))
    chosen = (parts[1], parts[3], parts[5])
    rec = await ns.upload_complete("b", "big", up.upload_id,
                                   ObjectRecord("b", "big", size=250, etag='"x-3"', parts=chosen), N)
    assert rec.version_id == "null" and [s.object_id for s in rec.link] == [p.segment.object_id for p in chosen]
    got = await ns.lookup("b", "big")
    assert got.parts == chosen and got.link == rec.link
    gc = {oid for _, oid in await ns.gc_pending()}
    assert gc == {old.segment.object_id, parts[2].segment.object_id, parts[4].segment.object_id}
    u = await ns.bucket_usage("b")
    assert (u.objects, u.bytes, u.upload_bytes) == (1, 250, 0)
    with pytest.raises(NoSuchUpload):
        await ns.upload_complete("b", "big", up.upload_id, ObjectRecord("b", "big", parts=chosen), N)
    # deleting the object frees every part's data
    await ns.delete_name("b", "big", None, N)
    assert {oid for _, oid in await ns.gc_pending()} == gc | {p.segment.object_id for p in chosen}


async def test_abort_and_missing(anyns):
    ns = anyns
    up = await new_upload(ns)
    p1, _ = await put_part(ns, up, 1)
    await ns.upload_abort("b", "big", up.upload_id)
    assert await ns.gc_pending() == [(OS_ID, p1.segment.object_id)]
    assert not await ns.bucket_has_content("b")
    with pytest.raises(NoSuchUpload):
        await ns.upload_abort("b", "big", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await put_part(ns, up, 2)   # the part's data goes to GC too
    assert len(await ns.gc_pending()) == 2
    with pytest.raises(GuardMissingError):
        await ns.part_put("b", "big", up.upload_id, p1, new_object_id())


async def test_uploads_list(anyns):
    ns = anyns
    ups = []
    for key in ["a/1", "a/2", "b", "b", "c/x/y"]:
        ups.append(await new_upload(ns, key))
    page = await ns.uploads_list("b")
    assert [(e.key, e.upload.upload_id) for e in page.entries] == [(u.key, u.upload_id) for u in ups]
    page = await ns.uploads_list("b", delimiter="/")
    assert [e.key for e in page.entries] == ["a/", "b", "b", "c/"]
    assert page.entries[0].upload is None
    page = await ns.uploads_list("b", limit=3)
    assert page.truncated and len(page.entries) == 3
    page = await ns.uploads_list("b", key_marker="b", upload_id_marker=ups[2].upload_id)
    assert [e.upload.upload_id for e in page.entries] == [ups[3].upload_id, ups[4].upload_id]
    page = await ns.uploads_list("b", key_marker="b")
    assert [e.key for e in page.entries] == ["c/x/y"]
    page = await ns.uploads_list("b", prefix="c/", delimiter="/")
    assert [e.key for e in page.entries] == ["c/x/"]
    page = await ns.uploads_list("b", delimiter="/", key_marker="a/")
    assert [e.key for e in page.entries] == ["b", "b", "c/"]


async def test_ten_thousand_parts(ns):
    up = await new_upload(ns)
    import asyncio
    parts = []

    async def one(n):
        oid = new_object_id()
        await ns.guard(OS_ID, oid)
        p = PartRecord(n, 5, f'"{n}"', Segment(OS_ID, oid, 5))
        await ns.part_put("b", "big", up.upload_id, p, oid)
        parts.append(p)
    await asyncio.gather(*(one(n) for n in range(1, 10_001)))
    parts.sort(key=lambda p: p.number)
    t = time.perf_counter()
    rec = await ns.upload_complete("b", "big", up.upload_id,
                                   ObjectRecord("b", "big", size=50_000, etag='"x-10000"', parts=tuple(parts)), N)
    dt = time.perf_counter() - t
    print(f"\n10,000-part complete: {dt * 1e3:.1f} ms")
    assert dt < 0.5 and len(rec.link) == 10_000
    got = await ns.lookup("b", "big")
    assert len(got.parts) == 10_000 and await ns.gc_pending() == []
