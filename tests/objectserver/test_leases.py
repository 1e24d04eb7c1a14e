"""Read leases: pinned ranges named by pool file path, released or expired."""

from __future__ import annotations

import asyncio
import os

from .conftest import put


async def test_lease_names_pool_files_and_pins_until_released(server):
    data = os.urandom(5 * 1024 * 1024 + 7)
    oid = await put(server, data)
    lease = await server.lease(oid, 10, len(data) - 20)
    got = b""
    for extent in lease.extents:
        fd = os.open(extent.path, os.O_RDONLY)
        try:
            got += os.pread(fd, extent.length, extent.file_offset)
        finally:
            os.close(fd)
    assert got == data[10:-10]
    await server.delete([oid])
    assert await server.collect_garbage() == 0  # pinned by the lease
    assert await server.release_lease(lease.lease_id) is True
    assert await server.release_lease(lease.lease_id) is False  # idempotent
    assert await server.collect_garbage() > 0


async def test_lease_expires_without_renewal(server):
    oid = await put(server, b"x" * 5000)
    lease = await server.lease(oid, ttl=0.05)
    kept = await server.lease(oid, ttl=0.05)
    await server.delete([oid])
    for _ in range(4):
        await asyncio.sleep(0.03)
        assert await server.renew_lease(kept.lease_id, 0.05) is True
    assert await server.renew_lease(lease.lease_id) is False  # the holder went away: expired
    assert await server.collect_garbage() == 0  # the renewed lease still pins the blocks
    assert await server.release_lease(kept.lease_id) is True
    assert await server.collect_garbage() > 0


async def test_close_releases_leases(server):
    oid = await put(server, b"y" * 100)
    await server.lease(oid)
    await server.close()
    assert not server._pins
