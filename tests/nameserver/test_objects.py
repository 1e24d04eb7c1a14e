"""Guards, GC, versioning matrix, conditional writes, update_record."""

import asyncio

import pytest

from ostor.common.errors import GuardMissingError, NoSuchKey, NoSuchVersion, PreconditionFailed
from ostor.common.ids import new_object_id
from ostor.nameserver.records import DeleteOutcome, ObjectRecord, Segment, Versioning, WriteCondition

from .conftest import OS_ID, put

E, N, S = Versioning.ENABLED, Versioning.NONE, Versioning.SUSPENDED


async def test_create_requires_live_guard(anyns, fake_os):
    ns = anyns
    oid = new_object_id()
    with pytest.raises(GuardMissingError):
        await ns.create_name(ObjectRecord("b", "k", link=(Segment(OS_ID, oid, 1),)), oid, N)
    await ns.guard(OS_ID, oid, ttl=0.01)
    await asyncio.sleep(0.02)
    with pytest.raises(GuardMissingError):
        await ns.create_name(ObjectRecord("b", "k", link=(Segment(OS_ID, oid, 1),)), oid, N)
    assert await ns.expire_guards() == 1
    assert await ns.gc_pending() == [(OS_ID, oid)]
    assert await ns.collect_garbage() == 1
    assert fake_os.deleted == [oid] and await ns.gc_pending() == []
    with pytest.raises(NoSuchKey):
        await ns.lookup("b", "k")


async def test_guard_consumed_and_released(anyns, fake_os):
    ns = anyns
    rec, oid = await put(ns, "b", "k", N)
    assert await ns.expire_guards(now=1e12) == 0  # consumed by create_name
    with pytest.raises(GuardMissingError):
        await ns.create_name(ObjectRecord("b", "k2", link=(Segment(OS_ID, oid, 1),)), oid, N)
    o2 = new_object_id()
    await ns.guard(OS_ID, o2)
    await ns.release_guard(o2)
    assert await ns.gc_pending() == [(OS_ID, o2)]


async def test_gc_keeps_rows_when_os_fails(anyns, fake_os):
    ns = anyns
    _, oid = await put(ns, "b", "k", N)
    await ns.delete_name("b", "k", None, N)
    fake_os.fail = True
    assert await ns.collect_garbage() == 0
    assert await ns.gc_pending() == [(OS_ID, oid)]
    fake_os.fail = False
    assert await ns.collect_garbage() == 1 and fake_os.deleted == [oid]


async def test_none_overwrite_replaces(anyns):
    ns = anyns
    r1, o1 = await put(ns, "b", "k", N, size=3)
    r2, o2 = await put(ns, "b", "k", N, size=4)
    assert r1.version_id == r2.version_id == "null" and r2.last_modified_ns > r1.last_modified_ns
    assert await ns.gc_pending() == [(OS_ID, o1)]
    got = await ns.lookup("b", "k")
    assert got.link[0].object_id == o2 and got.is_latest and got.size == 4
    assert len((await ns.list_versions("b")).entries) == 1
    assert (await ns.bucket_usage("b")).bytes == 4
    assert await ns.delete_name("b", "k", None, N) == DeleteOutcome(None, False)
    assert await ns.gc_pending() == [(OS_ID, o1), (OS_ID, o2)]
    with pytest.raises(NoSuchKey):
        await ns.lookup("b", "k")


async def test_enabled_stack_markers_and_restore(anyns):
    ns = anyns
    v = [(await put(ns, "b", "k", E, etag=f'"{i}"'))[0] for i in range(3)]
    ids = [r.version_id for r in v]
    assert len(set(ids)) == 3 and "null" not in ids
    page = await ns.list_versions("b")
    assert [e.record.version_id for e in page.entries] == ids[::-1]
    assert [e.record.is_latest for e in page.entries] == [True, False, False]
    out = await ns.delete_name("b", "k", None, E)
    assert out.delete_marker and out.version_id not in ids
    cur = await ns.lookup("b", "k")
    assert cur.delete_marker and cur.version_id == out.version_id
    assert (await ns.list_names("b")).entries == []
    assert (await ns.lookup("b", "k", ids[0])).is_latest is False
    # removing the marker restores the previous version
    assert await ns.delete_name("b", "k", out.version_id, E) == DeleteOutcome(out.version_id, True)
    cur = await ns.lookup("b", "k")
    assert cur.version_id == ids[2] and cur.is_latest
    assert await ns.gc_pending() == []
    # delete a middle version by id: its data goes to GC
    assert await ns.delete_name("b", "k", ids[1], E) == DeleteOutcome(ids[1], False)
    assert await ns.gc_pending() == [(OS_ID, v[1].link[0].object_id)]
    # delete the latest: the next older becomes current
    await ns.delete_name("b", "k", ids[2], E)
    assert (await ns.lookup("b", "k")).version_id == ids[0]
    assert await ns.delete_name("b", "k", "nope", E) == DeleteOutcome("nope", False)
    with pytest.raises(NoSuchVersion):
        await ns.lookup("b", "k", "nope")
    assert await ns.delete_name("b", "ghost", None, E) != DeleteOutcome(None, False)  # marker even if absent


async def test_suspended_null_version(anyns):
    ns = anyns
    r0, o0 = await put(ns, "b", "k", N)            # null, made before versioning
    r1, o1 = await put(ns, "b", "k", E)            # a real version above it
    r2, o2 = await put(ns, "b", "k", S)            # suspended: replaces the null version
    assert r2.version_id == "null"
    assert await ns.gc_pending() == [(OS_ID, o0)]
    vids = [e.record.version_id for e in (await ns.list_versions("b")).entries]
    assert vids == ["null", r1.version_id]
    out = await ns.delete_name("b", "k", None, S)  # null marker replaces the null version
    assert out == DeleteOutcome("null", True)
    assert await ns.gc_pending() == [(OS_ID, o0), (OS_ID, o2)]
    vs = (await ns.list_versions("b")).entries
    assert [(e.record.version_id, e.record.delete_marker) for e in vs] == [("null", True), (r1.version_id, False)]
    await ns.delete_name("b", "k", "null", S)
    assert (await ns.lookup("b", "k")).version_id == r1.version_id


async def test_conditional_writes(anyns):
    ns = anyns
    inm = WriteCondition(if_none_match_star=True)
    r, _ = await put(ns, "b", "k", E, etag='"abc"', condition=inm)
    with pytest.raises(PreconditionFailed):
        await put(ns, "b", "k", E, condition=inm)
    assert len(await ns.gc_pending()) == 1  # the refused upload's data
    with pytest.raises(PreconditionFailed):
        await put(ns, "b", "k", E, condition=WriteCondition(if_match='"other"'))
    r2, _ = await put(ns, "b", "k", E, etag='"def"', condition=WriteCondition(if_match="abc"))
    assert (await ns.lookup("b", "k")).etag == '"def"'
    await ns.delete_name("b", "k", None, E)  # current version is now a delete marker
    with pytest.raises(PreconditionFailed):
        await put(ns, "b", "k", E, condition=WriteCondition(if_match='"def"'))
    await put(ns, "b", "k", E, condition=inm)  # a marker does not count as existing
    with pytest.raises(PreconditionFailed):
        await put(ns, "b", "new", E, condition=WriteCondition(if_match="*"))
    assert len(await ns.gc_pending()) == 4


async def test_copy_in_place_shares_segments(anyns):
    ns = anyns
    r1, o1 = await put(ns, "b", "k", E)
    r2 = await ns.create_name(ObjectRecord("b", "k", size=r1.size, etag=r1.etag, link=r1.link,
                                           metadata={"a": "1"}), None, E)
    await ns.delete_name("b", "k", r1.version_id, E)
    assert await ns.gc_pending() == []  # still linked by r2
    await ns.delete_name("b", "k", r2.version_id, E)
    assert await ns.gc_pending() == [(OS_ID, o1)]
    # NONE: the replaced null version shares the new record's data: nothing to collect
    r3, o3 = await put(ns, "b", "n", N)
    await ns.create_name(ObjectRecord("b", "n", link=r3.link, metadata={"x": "y"}), None, N)
    assert await ns.gc_pending() == [(OS_ID, o1)]
    assert (await ns.lookup("b", "n")).metadata == {"x": "y"}


async def test_update_record(anyns):
    ns = anyns
    r, _ = await put(ns, "b", "k", E)
    u = await ns.update_record("b", "k", None, tags={"t": "1"}, acl={"owner": "x"})
    assert u.tags == {"t": "1"} and u.last_modified_ns == r.last_modified_ns
    got = await ns.lookup("b", "k", r.version_id)
    assert got.tags == {"t": "1"} and got.acl == {"owner": "x"}
    with pytest.raises(TypeError):
        await ns.update_record("b", "k", None, size=3)
    with pytest.raises(NoSuchKey):
        await ns.update_record("b", "zz", None, tags={})
    with pytest.raises(NoSuchVersion):
        await ns.update_record("b", "k", "nope", tags={})


async def test_record_roundtrip(anyns):
    ns = anyns
    oid = new_object_id()
    await ns.guard(OS_ID, oid)
    rec = ObjectRecord("b", "dir/ключ €", size=5, etag='"x"', content_type="text/plain",
                       headers={"cache-control": "no"}, metadata={"m": "v"}, owner="u1",
                       acl={"grants": [["u2", "READ"]]}, checksums={"CRC32": "AAAA"}, checksum_type="FULL_OBJECT",
                       storage_class="GLACIER", tags={"a": "b"}, link=(Segment(OS_ID, oid, 5),))
    out = await ns.create_name(rec, oid, E)
    got = await ns.lookup("b", "dir/ключ €")
    assert got == out
    for f in ("headers", "metadata", "owner", "acl", "checksums", "checksum_type", "storage_class", "tags",
              "content_type", "link", "size", "etag"):
        assert getattr(got, f) == getattr(rec, f), f


async def test_inventory(anyns):
    ns = anyns
    r, o1 = await put(ns, "b", "k", E, size=7)
    o2 = new_object_id()
    await ns.guard(OS_ID, o2)
    _, o3 = await put(ns, "b", "gone", N)
    await ns.delete_name("b", "gone", None, N)
    refs = {(x.kind, x.object_id, x.size) for x in await ns.inventory()}
    assert refs == {("object", o1, 7), ("guard", o2, None), ("gc", o3, None)}
