"""Before-commit calls: what a name depends on becomes durable in the commit thread, first.

The embedded engine leaves a create's fdatasync to the commit that names the data
(ObjectServer.create(defer_sync=True) + NameServer.create_name(before_commit=...)).
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading

import pytest

from ostor.common.errors import NoSuchKey
from ostor.common.ids import new_object_id
from ostor.nameserver.records import ObjectRecord, Segment, Versioning
from ostor.nameserver.schema import DB_NAME

from .conftest import OS_ID

E = Versioning.ENABLED


def committed_keys(ns) -> set[str]:
    """Keys a separate connection sees: only committed rows."""
    conn = sqlite3.connect(ns.directory / DB_NAME)
    try:
        return {row[0].decode() for row in conn.execute("SELECT key FROM objects")}
    finally:
        conn.close()


async def guarded(ns, count: int) -> list[bytes]:
    oids = [new_object_id() for _ in range(count)]
    await ns.guard_many(OS_ID, oids)
    return oids


async def test_calls_run_in_the_commit_thread_once_per_batch_before_the_commit(ns):
    oids = await guarded(ns, 10)
    seen: list[tuple[str, set[str], bool]] = []
    shared_calls = []

    def own(key: str):
        def call() -> None:
            # Nothing of this batch is committed yet, and the loop thread is not the caller.
            seen.append((key, committed_keys(ns), threading.current_thread() is threading.main_thread()))
        return call

    def shared() -> None:
        shared_calls.append(1)

    before = ns.transactions
    records = await asyncio.gather(*(
        ns.create_name(ObjectRecord("b", f"k{i}", size=1, link=(Segment(OS_ID, oid, 1),)), oid, E,
                       before_commit=(own(f"k{i}"), shared))
        for i, oid in enumerate(oids)))
    batches = ns.transactions - before
    assert [r.key for r in records] == [f"k{i}" for i in range(10)]
    assert sorted(key for key, _, _ in seen) == sorted(f"k{i}" for i in range(10))  # each own call once
    for key, visible, on_loop in seen:
        assert key not in visible, f"{key} was committed before its before-commit call ran"
        assert not on_loop
    assert len(shared_calls) == batches  # a call shared by requests runs once per batch
    assert committed_keys(ns) == {f"k{i}" for i in range(10)}


async def test_a_failing_call_rolls_the_batch_back_and_keeps_the_guards(ns, fake_os):
    oids = await guarded(ns, 3)

    def broken() -> None:
        raise OSError(errno.EIO, "Input/output error")

    results = await asyncio.gather(*(
        ns.create_name(ObjectRecord("b", f"k{i}", size=1, link=(Segment(OS_ID, oid, 1),)), oid, E,
                       before_commit=(broken,) if i == 1 else ())
        for i, oid in enumerate(oids)), return_exceptions=True)
    assert isinstance(results[1], OSError) and results[1].errno == errno.EIO
    # The request whose data could not be made durable is not named; requests that
    # shared its batch failed with it, and none of their names is visible either.
    named = {r.key for r in results if isinstance(r, ObjectRecord)}
    assert "k1" not in named
    for i in range(3):
        if f"k{i}" not in named:
            with pytest.raises(NoSuchKey):
                await ns.lookup("b", f"k{i}")
    assert committed_keys(ns) == named
    # The failed names' guards are still there: expiring them sends their data to GC.
    await ns.expire_guards(float("inf"))
    await ns.collect_garbage()
    unnamed = {oid for i, oid in enumerate(oids) if f"k{i}" not in named}
    assert set(fake_os.deleted) == unnamed


async def test_the_writer_goes_on_after_a_failed_call(ns):
    oids = await guarded(ns, 2)

    def broken() -> None:
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError):
        await ns.create_name(ObjectRecord("b", "bad", size=1, link=(Segment(OS_ID, oids[0], 1),)),
                             oids[0], E, before_commit=(broken,))
    record = await ns.create_name(ObjectRecord("b", "good", size=1, link=(Segment(OS_ID, oids[1], 1),)),
                                  oids[1], E)
    assert record.key == "good" and committed_keys(ns) == {"good"}
