"""The change log: written with every change, trimmed by age."""

from __future__ import annotations

import time

from ostor.nameserver.records import Versioning

from .conftest import put

N = Versioning.NONE


async def test_change_log_is_trimmed_by_age(ns):
    for i in range(5):
        await put(ns, "b", f"k{i}", N)
    assert len(await ns.changes()) == 5
    assert await ns.trim_change_log(time.time() - 3600) == 0      # all younger than an hour: kept
    assert await ns.trim_change_log(time.time() + 1, limit=2) == 2  # the two oldest go
    left = await ns.changes()
    assert [row[4] for row in left] == ["k2", "k3", "k4"]
