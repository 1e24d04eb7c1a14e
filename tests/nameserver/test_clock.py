"""The name server's clock: stored a lease ahead of its timestamps, never pushed ahead by rollbacks."""

from __future__ import annotations

import pytest

from ostor.common.errors import NoSuchVersion
from ostor.nameserver.records import Versioning
from ostor.nameserver.server import NameServer
from ostor.nameserver.txn import CLOCK_LEASE_NS
from ostor.nameserver.versions import new_version_id

from .conftest import NS_ID, put

E = Versioning.ENABLED


async def test_the_clock_is_stored_a_lease_ahead_and_resumes_past_it(tmp_path, fake_os):
    directory = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(directory, NS_ID)
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    first, _ = await put(ns, "b", "k1", E)
    stored = ns._rconn.execute("SELECT value FROM meta WHERE name='clock'").fetchone()[0]
    assert stored == first.last_modified_ns + CLOCK_LEASE_NS
    second, _ = await put(ns, "b", "k2", E)  # inside the lease: nothing more written
    assert ns._rconn.execute("SELECT value FROM meta WHERE name='clock'").fetchone()[0] == stored
    await ns.close()
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    try:
        third, _ = await put(ns, "b", "k3", E)
        assert third.last_modified_ns > stored > second.last_modified_ns
    finally:
        await ns.close()


async def test_failed_batches_do_not_push_the_clock_ahead(ns):
    stamps = []
    for i in range(20):
        stamps.append((await put(ns, "b", f"k{i}", E))[0].last_modified_ns)
        with pytest.raises(NoSuchVersion):  # a failing request: its batch is rolled back and replayed
            await ns.update_record("b", f"k{i}", new_version_id(1), tags={})
    # the wall clock, not the stored ceiling, sets each timestamp
    assert stamps[-1] - stamps[0] < CLOCK_LEASE_NS // 2
