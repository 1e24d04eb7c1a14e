"""Buckets: create/get/update/list/delete, ownership errors, epochs."""

import pytest

from ostor.common.errors import BucketAlreadyExists, BucketAlreadyOwnedByYou, NoSuchBucket
from ostor.nameserver.records import BucketRecord, Versioning

from .conftest import put


async def test_bucket_lifecycle(anyns):
    ns = anyns
    b = await ns.bucket_create(BucketRecord("photos", "u1", 0))
    assert b.created_ns > 0 and b.epoch == 0 and b.versioning == Versioning.NONE
    with pytest.raises(BucketAlreadyOwnedByYou):
        await ns.bucket_create(BucketRecord("photos", "u1", 0))
    with pytest.raises(BucketAlreadyExists):
        await ns.bucket_create(BucketRecord("photos", "u2", 0))
    await ns.bucket_create(BucketRecord("alpha", "u2", 0))
    assert [x.name for x in await ns.bucket_list()] == ["alpha", "photos"]
    assert [x.name for x in await ns.bucket_list("u1")] == ["photos"]
    u = await ns.bucket_update("photos", versioning="enabled", acl={"grants": []}, attributes={"cors": "x"})
    assert u.epoch == 1 and u.versioning is Versioning.ENABLED
    u = await ns.bucket_update("photos", owner="u3")
    assert u.epoch == 2
    got = await ns.bucket_get("photos")
    assert got == u and got.attributes == {"cors": "x"}
    with pytest.raises(TypeError):
        await ns.bucket_update("photos", name="other")
    await ns.bucket_delete("photos")
    with pytest.raises(NoSuchBucket):
        await ns.bucket_get("photos")
    with pytest.raises(NoSuchBucket):
        await ns.bucket_delete("photos")
    with pytest.raises(NoSuchBucket):
        await ns.bucket_update("photos", acl=None)


async def test_content_usage_and_purge(anyns, fake_os):
    ns = anyns
    assert not await ns.bucket_has_content("b")
    await put(ns, "b", "k1", Versioning.ENABLED, size=5)
    await put(ns, "b", "k1", Versioning.ENABLED, size=7)
    await ns.delete_name("b", "k1", None, Versioning.ENABLED)
    await put(ns, "b", "k2", Versioning.ENABLED, size=1)
    assert await ns.bucket_has_content("b")
    u = await ns.bucket_usage("b")
    assert (u.objects, u.bytes) == (3, 13)
    assert await ns.purge_bucket("b", limit=2) == 2
    assert await ns.bucket_has_content("b")
    assert await ns.purge_bucket("b", limit=100) == 2
    assert not await ns.bucket_has_content("b")
    assert (await ns.bucket_usage("b")).bytes == 0
    assert len(await ns.gc_pending()) == 3
