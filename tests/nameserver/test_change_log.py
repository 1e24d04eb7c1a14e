"""The change log: written with every change, trimmed by age."""

from __future__ import annotations

import asyncio
import time

import pytest

from ostor.common.errors import GuardMissingError, NoSuchKey
from ostor.common.ids import new_object_id
from ostor.nameserver.records import ObjectRecord, Segment, Versioning

from .conftest import OS_ID, put

N = Versioning.NONE


async def test_change_log_is_trimmed_by_age(ns):
    for i in range(5):
        await put(ns, "b", f"k{i}", N)
    assert len(await ns.changes()) == 5
    assert await ns.trim_change_log(time.time() - 3600) == 0      # all younger than an hour: kept
    assert await ns.trim_change_log(time.time() + 1, limit=2) == 2  # the two oldest go
    left = await ns.changes()
    assert [row[4] for row in left] == ["k2", "k3", "k4"]


async def test_a_failed_request_leaves_no_entry_and_its_batch_keeps_the_others(ns):
    # One batch: the middle create's guard is gone, so the batch is replayed with a
    # savepoint per request and that create alone is undone, change-log entry included.
    guarded = [new_object_id() for _ in range(3)]
    await ns.guard_many(OS_ID, [guarded[0], guarded[2]])
    results = await asyncio.gather(*(
        ns.create_name(ObjectRecord("b", f"k{i}", size=1, link=(Segment(OS_ID, oid, 1),)), oid, N)
        for i, oid in enumerate(guarded)), return_exceptions=True)
    assert isinstance(results[1], GuardMissingError)
    assert [(row[2], row[4]) for row in await ns.changes()] == [("put", "k0"), ("put", "k2")]


async def test_a_request_that_fails_after_logging_leaves_no_entry(ns):
    def logs_then_fails(t):
        t.log("put", "b", "ghost", "null")
        raise NoSuchKey(Key="ghost")

    kept = ns._writer.submit(lambda t: t.log("put", "b", "kept", "null"))
    failed = ns._writer.submit(logs_then_fails)  # same batch: replayed with a savepoint each
    await kept
    with pytest.raises(NoSuchKey):
        await failed
    assert [(row[2], row[4]) for row in await ns.changes()] == [("put", "kept")]
