"""Guards consumed in memory and deleted at the end of their batch: the table and its mirror agree."""

from __future__ import annotations

import asyncio

import pytest

from ostor.common.errors import GuardMissingError, NoSuchKey
from ostor.common.ids import new_object_id
from ostor.nameserver.records import ObjectRecord, Segment, Versioning
from ostor.nameserver.server import NameServer

from .conftest import NS_ID, OS_ID

E = Versioning.ENABLED


def record(key: str, oid: bytes) -> ObjectRecord:
    return ObjectRecord("b", key, size=1, link=(Segment(OS_ID, oid, 1),))


def guard_rows(ns) -> set[bytes]:
    """The guards table as another connection sees it (committed state only)."""
    return {row[0] for row in ns._rconn.execute("SELECT object_id FROM guards")}


async def test_a_named_guard_leaves_the_table_with_its_batch(ns):
    oids = [new_object_id() for _ in range(4)]
    await ns.guard_many(OS_ID, oids)
    assert guard_rows(ns) == set(oids)
    # one batch of three creates: their guards go in the same commit as their names
    await asyncio.gather(*(ns.create_name(record(f"k{i}", oid), oid, E) for i, oid in enumerate(oids[:3])))
    assert guard_rows(ns) == {oids[3]}
    with pytest.raises(GuardMissingError):  # consumed: a second name for the same data is refused
        await ns.create_name(record("again", oids[0]), oids[0], E)


async def test_release_and_expiry_in_the_naming_batch_leave_named_data_alone(ns, fake_os):
    named, released = new_object_id(), new_object_id()
    await ns.guard_many(OS_ID, [named, released])
    # The same batch: the create consumes its guard (its row still there until the batch
    # ends), then a release of that guard and an expiry pass run. Neither may queue the
    # named data for deletion.
    await asyncio.gather(ns.create_name(record("k", named), named, E), ns.release_guard(named),
                         ns.release_guard(released), ns.expire_guards(now=float("inf")))
    assert await ns.gc_pending() == [(OS_ID, released)]
    assert guard_rows(ns) == set()
    await ns.collect_garbage()
    assert fake_os.deleted == [released]
    assert (await ns.lookup("b", "k")).link[0].object_id == named


async def test_a_request_undone_in_its_batch_gives_its_guard_back(ns):
    oid = new_object_id()
    await ns.guard(OS_ID, oid)

    def consumes_then_fails(t):
        assert t.consume_guard(oid) == OS_ID
        raise NoSuchKey(Key="ghost")

    other = new_object_id()
    await ns.guard(OS_ID, other)
    # same batch as a good create: the batch is replayed with a savepoint per request
    good = ns.create_name(record("good", other), other, E)
    with pytest.raises(NoSuchKey):
        await ns._writer.submit(consumes_then_fails)
    await good
    assert guard_rows(ns) == {oid}
    assert (await ns.create_name(record("k", oid), oid, E)).key == "k"
    assert guard_rows(ns) == set()


async def test_renewal_moves_the_stored_expiry_and_refuses_a_consumed_guard(ns):
    oid = new_object_id()
    await ns.guard(OS_ID, oid, ttl=5)
    expires = await ns.renew_guard(oid, ttl=600)
    stored = ns._rconn.execute("SELECT expires_at FROM guards WHERE object_id=?", (oid,)).fetchone()[0]
    assert stored == expires
    assert await ns.expire_guards(now=expires - 1) == 0
    await ns.create_name(record("k", oid), oid, E)
    with pytest.raises(GuardMissingError):
        await ns.renew_guard(oid)


async def test_guards_live_across_a_restart(tmp_path, fake_os):
    directory = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(directory, NS_ID)
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    kept, short = new_object_id(), new_object_id()
    await ns.guard(OS_ID, kept)
    await ns.guard(OS_ID, short, ttl=0.01)
    await ns.close()
    await asyncio.sleep(0.02)
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    try:
        with pytest.raises(GuardMissingError):  # expired while the server was down
            await ns.create_name(record("late", short), short, E)
        assert (await ns.create_name(record("k", kept), kept, E)).key == "k"
        assert await ns.expire_guards() == 1
        assert await ns.gc_pending() == [(OS_ID, short)]
    finally:
        await ns.close()


async def test_a_guard_taken_again_in_the_batch_that_consumed_it_keeps_its_row(ns):
    oid = new_object_id()
    await ns.guard(OS_ID, oid)
    await asyncio.gather(ns.create_name(record("k", oid), oid, E), ns.guard(OS_ID, oid))
    assert guard_rows(ns) == {oid}  # the table agrees with the mirror: the guard is live
    assert await ns.expire_guards(now=float("inf")) == 1
