"""The record cache of lookups: every acknowledged write is visible to the next lookup."""

from __future__ import annotations

import asyncio
import random

import pytest

from ostor.common.errors import NoSuchKey
from ostor.nameserver.cache import RecordCache
from ostor.nameserver.records import ObjectRecord, Versioning

from .conftest import put

E, N, S = Versioning.ENABLED, Versioning.NONE, Versioning.SUSPENDED


async def test_lookups_hit_the_cache_and_writes_invalidate(ns):
    await put(ns, "b", "k", N, size=3)
    first = await ns.lookup("b", "k")
    assert await ns.lookup("b", "k") is first and ns.records.hits >= 1
    await put(ns, "b", "k", N, size=5)                      # overwrite
    assert (await ns.lookup("b", "k")).size == 5
    await ns.update_record("b", "k", None, tags={"t": "1"})  # metadata change in place
    assert (await ns.lookup("b", "k")).tags == {"t": "1"}
    await ns.delete_name("b", "k", None, N)                  # delete
    with pytest.raises(NoSuchKey):
        await ns.lookup("b", "k")


async def test_versioned_delete_marker_and_restore(ns):
    rec, _ = await put(ns, "b", "k", E, size=7)
    assert (await ns.lookup("b", "k")).version_id == rec.version_id
    marker = await ns.delete_name("b", "k", None, E)
    assert (await ns.lookup("b", "k")).delete_marker
    await ns.delete_name("b", "k", marker.version_id, E)    # removing the marker restores the object
    restored = await ns.lookup("b", "k")
    assert not restored.delete_marker and restored.version_id == rec.version_id


async def test_concurrent_writes_and_reads_never_see_an_older_acknowledged_version(ns):
    """Readers race writers on a few keys; a lookup after an acknowledged write sees it (or newer)."""
    keys = [f"k{i}" for i in range(4)]
    acknowledged: dict[str, int] = {}

    async def writer(key: str) -> None:
        for size in range(1, 40):
            await put(ns, "b", key, N, size=size)
            acknowledged[key] = size
            got = await ns.lookup("b", key)
            assert got.size >= size

    async def reader() -> None:
        for _ in range(400):
            key = random.choice(keys)
            floor = acknowledged.get(key, 0)
            try:
                got = await ns.lookup("b", key)
            except NoSuchKey:
                assert floor == 0
                continue
            assert got.size >= floor
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in keys), *(reader() for _ in range(3)))
    for key in keys:
        assert (await ns.lookup("b", key)).size == 39


def test_store_is_refused_after_a_commit_and_capacity_is_bounded() -> None:
    cache = RecordCache(2)
    epoch = cache.epoch
    cache.invalidate([("b", b"other")])                      # a batch committed meanwhile
    cache.store(ObjectRecord("b", "k"), epoch)
    assert cache.get("b", "k") is None
    for key in ("a", "c", "d"):
        cache.store(ObjectRecord("b", key), cache.epoch)
    assert cache.get("b", "a") is None and cache.get("b", "d") is not None

