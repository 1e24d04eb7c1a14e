"""Reopen, corruption handling, locking, group commit and same-transaction derived state."""

import asyncio
import os
import time

import pytest

from ostor.common.errors import CorruptStoreError, GuardMissingError, StorageError
from ostor.common.ids import new_object_id
from ostor.nameserver.config import NameServerConfig
from ostor.nameserver.records import BucketRecord, ObjectRecord, Segment, Versioning
from ostor.nameserver.server import NameServer

from .conftest import NS_ID, OS_ID, FakeOS, put

E = Versioning.ENABLED


def service(tmp_path):
    d = tmp_path / "svc"
    NameServer.create_service(d, NS_ID)
    return d


@pytest.mark.parametrize("mode", ["wal", "rollback-exclusive"])
async def test_survives_reopen(tmp_path, mode):
    d = service(tmp_path)
    cfg = NameServerConfig(journal_mode=mode)
    ns = await NameServer.open(d, NS_ID, lambda _: FakeOS(), cfg)
    await ns.bucket_create(BucketRecord("b", "u", 0))
    r, _ = await put(ns, "b", "k", E)
    await ns.delete_name("b", "k", None, E)
    await ns.close()
    ns = await NameServer.open(d, NS_ID, lambda _: FakeOS(), cfg)
    try:
        assert (await ns.bucket_get("b")).owner == "u"
        assert (await ns.lookup("b", "k")).delete_marker
        assert (await ns.lookup("b", "k", r.version_id)).size == r.size
        r2, _ = await put(ns, "b", "k", E)
        assert r2.last_modified_ns > r.last_modified_ns
        assert [e.key for e in (await ns.list_names("b")).entries] == ["k"]
    finally:
        await ns.close()
    with pytest.raises(FileExistsError):
        NameServer.create_service(d, NS_ID)


async def test_second_open_fails_while_locked(tmp_path):
    d = service(tmp_path)
    ns = await NameServer.open(d, NS_ID, lambda _: FakeOS())
    try:
        with pytest.raises(StorageError) as info:
            await NameServer.open(d, NS_ID, lambda _: FakeOS())
        assert str(d) in str(info.value)
        assert (await ns.bucket_list()) == []  # the first one still works
    finally:
        await ns.close()
    ns = await NameServer.open(d, NS_ID, lambda _: FakeOS())
    await ns.close()


@pytest.mark.parametrize("damage", ["garbage", "user_version", "missing", "truncated"])
async def test_corrupt_db_refused(tmp_path, damage):
    d = service(tmp_path)
    db = d / "names.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "user_version":
        import sqlite3
        c = sqlite3.connect(db)
        c.execute("PRAGMA user_version=99")
        c.commit()
        c.close()
    elif damage == "missing":
        db.unlink()
    else:
        data = db.read_bytes()
        db.write_bytes(data[:100] + b"\x00" * 50 + data[150:])
    before = db.read_bytes() if db.exists() else None
    with pytest.raises(CorruptStoreError) as info:
        await NameServer.open(d, NS_ID, lambda _: FakeOS())
    assert info.value.path == str(db)
    assert (db.read_bytes() if db.exists() else None) == before  # never reinitialised
    # the lock was released: a repaired directory could be opened again
    if damage == "missing":
        assert not db.exists()


async def test_group_commit(ns):
    oids = [new_object_id() for _ in range(50)]
    await asyncio.gather(*(ns.guard(OS_ID, o) for o in oids))
    before = ns.transactions
    await asyncio.gather(*(ns.create_name(ObjectRecord("b", f"k{i}", link=(Segment(OS_ID, o, 1),)), o, E)
                           for i, o in enumerate(oids)))
    used = ns.transactions - before
    assert used <= 10, used
    assert len((await ns.list_names("b")).entries) == 50


async def test_failing_request_does_not_poison_batch(ns):
    good = new_object_id()
    await ns.guard(OS_ID, good)
    seq = len(await ns.changes())
    results = await asyncio.gather(
        ns.create_name(ObjectRecord("b", "bad", link=(Segment(OS_ID, b"x" * 16, 1),)), b"x" * 16, E),
        ns.create_name(ObjectRecord("b", "good", link=(Segment(OS_ID, good, 1),)), good, E),
        return_exceptions=True)
    assert isinstance(results[0], GuardMissingError) and results[1].key == "good"
    changes = await ns.changes(seq)
    assert [(c[2], c[4]) for c in changes] == [("put", "good")]  # no row for the failed request
    assert (await ns.bucket_usage("b")).objects == 1


async def test_workers_expire_and_collect(tmp_path):
    d = service(tmp_path)
    fos = FakeOS()
    ns = await NameServer.open(d, NS_ID, lambda _: fos, NameServerConfig(gc_interval=0.01,
                                                                         guard_expiry_interval=0.01))
    await ns.start()
    try:
        oid = new_object_id()
        await ns.guard(OS_ID, oid, ttl=0.01)
        for _ in range(200):
            if fos.deleted:
                break
            await asyncio.sleep(0.01)
        assert fos.deleted == [oid]
    finally:
        await ns.close()


async def test_throughput_numbers(ns):
    """Not a benchmark gate: prints create_name/s with 32 concurrent callers and lookups/s.

    It does check that concurrent writes share transactions (group commit)."""
    async def writer(i):
        for j in range(20):
            oid = new_object_id()
            await ns.guard(OS_ID, oid)
            await ns.create_name(ObjectRecord("b", f"w{i}/{j}", size=1, link=(Segment(OS_ID, oid, 1),)), oid, E)
    t = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(32)))
    dt = time.perf_counter() - t
    assert ns.transactions < 2 * 640 // 2  # guards and creates of 32 callers batch together
    n = 20_000
    t2 = time.perf_counter()
    for i in range(n):
        await ns.lookup("b", f"w{i % 32}/{i % 20}")
    dt2 = time.perf_counter() - t2
    print(f"\nguard+create_name, 32 callers: {640 / dt:.0f} objects/s ({ns.transactions} txns); "
          f"lookup: {n / dt2:.0f}/s ({dt2 / n * 1e6:.1f} us)")


async def test_close_stops_the_workers_before_refusing_their_requests(ns):
    """A GC step that goes on while close() runs finishes normally instead of failing noisily."""
    await ns.start()
    await ns._gc_lock.acquire()
    ns.gc_worker.wake()
    await asyncio.sleep(0.05)  # the GC step now waits for the lock
    real_stop = ns.guard_worker.stop

    async def stop_guard_worker():
        ns._gc_lock.release()  # the GC step resumes while close() is under way
        await asyncio.sleep(0.05)
        await real_stop()

    ns.guard_worker.stop = stop_guard_worker
    await ns.close()
    assert ns.gc_worker.stats.errors == 0, ns.gc_worker.stats.last_error
