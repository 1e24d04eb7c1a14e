"""In-process tests of matching, the instance store and events, over an in-memory record bucket."""

from __future__ import annotations

import asyncio

import pytest

from ostor.common.errors import InvalidAdminArgument, NoSuchConfigKey
from ostor.guestapi.events import rfc3339_ns
from ostor.guestapi.identity import PeerCredentials, cgroup_keys
from ostor.guestapi.model import Matchers
from ostor.guestapi.store import InstanceStore


class MemoryBucket:
    """The in-memory twin of the service bucket's record API."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}

    async def get(self, key):
        return self.docs.get(key)

    async def put(self, key, doc):
        self.docs[key] = doc
        return "etag"

    async def delete(self, key):
        self.docs.pop(key, None)

    async def load_all(self, prefix):
        return {k: v for k, v in self.docs.items() if k.startswith(prefix)}


LINES = ["4:memory:/lxc/c1/init", "0::/lxc/c1"]


def test_cgroup_keys_on_component_bounds():
    keys = cgroup_keys(LINES)
    assert {"/lxc/c1/init", "/lxc/c1", "/lxc", "/", "4:memory:/lxc/c1", "0::/lxc/c1"} <= keys
    assert "/lxc/c" not in keys and "/lxc/c10" not in keys


async def test_resolve_specific_wins_ambiguous_refused():
    store = InstanceStore(MemoryBucket())
    await store.create("by-uid", Matchers(uid=1000))
    await store.create("by-cgroup", Matchers(uid=1000, cgroup="/lxc/c1"))
    await store.create("other", Matchers(cgroup="/lxc/c10"))
    creds = PeerCredentials(pid=1, uid=1000, gid=1000)
    assert store._index.resolve(creds, store.get, lambda pid: LINES).name == "by-cgroup"
    assert store._index.resolve(creds, store.get, lambda pid: ["0::/elsewhere"]).name == "by-uid"
    await store.create("by-gid", Matchers(gid=1000))
    assert store._index.resolve(creds, store.get, lambda pid: ["0::/elsewhere"]) is None  # two equally specific
    assert store._index.resolve(PeerCredentials(1, 5, 5), store.get, lambda pid: ["0::/lxc/c10/x"]).name == "other"
    await store.delete("by-cgroup")
    assert store._index.resolve(creds, store.get, lambda pid: LINES) is None
    with pytest.raises(InvalidAdminArgument):
        await store.create("twin", Matchers(uid=1000))


async def test_store_events_and_instance_id():
    bucket = MemoryBucket()
    store = InstanceStore(bucket)
    await store.create("i1", Matchers(pid=42))
    sub = store.hub.subscribe("i1", frozenset({"config"}))
    first_id = store.get("i1").instance_id
    await store.set_config("i1", {"user.a": "1", "limits.cpu": "2"})
    await store.set_config("i1", {"user.a": "1"})  # unchanged: no event
    assert store.get("i1").instance_id == first_id
    await store.set_config("i1", {"cloud-init.network-config": "x"})
    assert store.get("i1").instance_id != first_id
    await store.add_device("i1", "d", {"type": "disk"})  # filtered out by type
    await store.unset_config("i1", ["user.a"])
    with pytest.raises(NoSuchConfigKey):
        await store.unset_config("i1", ["user.zzz"])
    texts = [await asyncio.wait_for(sub.next(), 1) for _ in range(2)]
    assert '"old_value": "", "value": "1"' in texts[0] and '"old_value": "1", "value": ""' in texts[1]
    assert sub.queue.empty()
    # Everything survives a reload from the records.
    again = await InstanceStore.open(bucket)
    assert again.get("i1") == store.get("i1")
    await store.delete("i1")
    assert await sub.next() is None


def test_timestamp_has_nanoseconds():
    assert rfc3339_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
