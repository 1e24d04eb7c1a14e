"""The user store in the service bucket: records, cache, migration of users.json, statistics records."""

from __future__ import annotations

import asyncio
import json

import pytest

from ostor.common.errors import (
    AccessDenied, AccessKeyLimitExceeded, NoSuchAccessKey, NoSuchUser, UserAlreadyExists, UserOwnsBuckets,
)
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig
from ostor.gateway.stats import Statistics
from ostor.gateway.users import SERVICE_BUCKET, SERVICE_OWNER, UserStore

CONFIG = ServiceConfig(ns_count=2, os_count=2)


@pytest.fixture
async def engine(tmp_path):
    engine = await Engine.open(tmp_path / "data", CONFIG, start_workers=False)
    yield engine
    await engine.close()


async def test_users_and_keys_are_records_in_the_service_bucket(engine, tmp_path):
    store = await UserStore.open(engine, tmp_path / "data")
    bucket = await engine.get_bucket(SERVICE_BUCKET)
    assert bucket.owner == SERVICE_OWNER
    user, key, secret = await store.create_user("a@example.com")
    assert store.lookup(key) == (user, secret)
    assert secret not in repr(user)
    with pytest.raises(UserAlreadyExists):
        await store.create_user("A@example.com")
    key2, _ = await store.gen_access_key(user)
    with pytest.raises(AccessKeyLimitExceeded):
        await store.gen_access_key(user)
    keys = [o.key for o in (await engine.list_objects(SERVICE_BUCKET, prefix="keys/")).objects]
    assert sorted(keys) == sorted([f"keys/{key}", f"keys/{key2}"])
    # A second store (another process) reads the same records.
    other = await UserStore.open(engine)
    assert other.find(email="a@example.com").keys == {key: secret, key2: user.keys[key2]}
    await store.revoke_access_key(user, key)
    assert store.lookup(key) is None
    with pytest.raises(NoSuchAccessKey):
        await store.revoke_access_key(user, key)
    await store.set_disabled(user, True)
    with pytest.raises(AccessDenied):
        store.lookup(key2)
    with pytest.raises(UserOwnsBuckets):
        await store.delete_user(user, ["b1"])
    await store.delete_user(user, [])
    with pytest.raises(NoSuchUser):
        store.find(user_id=user.user_id)
    fresh = await UserStore.open(engine)
    assert fresh.users == {} and fresh.lookup(key2) is None


async def test_other_processes_see_changes_within_a_second(engine):
    writer = await UserStore.open(engine)
    reader = await UserStore.open(engine)
    reader.start_refresh(interval=0.05)
    try:
        _, key, _ = await writer.create_user("b@example.com")
        for _ in range(100):
            if reader.lookup(key) is not None:
                break
            await asyncio.sleep(0.02)
        assert reader.lookup(key) is not None
    finally:
        await reader.stop_refresh()


async def test_users_json_is_migrated_once(engine, tmp_path):
    path = tmp_path / "data" / "gateway" / "users.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "users": [
        {"id": "00112233445566aa", "name": "admin", "admin": True, "keys": {"OLDADMINKEY000000001": "s" * 40}},
        {"id": "00112233445566bb", "name": "bob", "keys": {"00112233445566bbABCD": "t" * 40}},
    ]}))
    store = await UserStore.open(engine, tmp_path / "data")
    assert not path.exists()
    assert store.lookup("OLDADMINKEY000000001")[0].admin
    assert store.lookup("00112233445566bbABCD")[1] == "t" * 40
    user, key, secret = await store.ensure_admin()
    assert (user.user_id, key) == ("00112233445566aa", "OLDADMINKEY000000001")
    again = await UserStore.open(engine, tmp_path / "data")
    assert len(again.users) == 2


async def test_statistics_persist_and_merge(engine):
    store = await UserStore.open(engine)
    first = Statistics(store.bucket, "gateway-0")
    first.record("u1", "b1", "PutObject", 100, 0)
    first.record("u1", "b1", "PutObject", 50, 0)
    await first.flush()
    second = Statistics(store.bucket, "gateway-1")
    second.record("u1", "b1", "PutObject", 1, 0)
    second.record("u2", "b2", "GetObject", 0, 7)
    rows = {(r.user, r.bucket, r.operation): (r.requests, r.bytes_in, r.bytes_out)
            for r in await second.collect()}
    assert rows == {("u1", "b1", "PutObject"): (3, 151, 0), ("u2", "b2", "GetObject"): (1, 0, 7)}
    restarted = Statistics(store.bucket, "gateway-0")
    await restarted.load()
    assert restarted.rows() == [["u1", "b1", "PutObject", 2, 150, 0]]
    assert [r.user for r in await restarted.collect(user="u2")] == []
