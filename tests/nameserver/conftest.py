"""Fixtures: a fresh SQLite name server, its in-memory twin, and a fake object server recording deletes."""

from __future__ import annotations

import pytest

from ostor.common.ids import ServiceType, make_service_id, new_object_id
from ostor.nameserver.memory import MemoryNameServer
from ostor.nameserver.records import ObjectRecord, Segment
from ostor.nameserver.server import NameServer

NS_ID = make_service_id(ServiceType.NS, 1)
OS_ID = make_service_id(ServiceType.OS, 1)


class FakeOS:
    """Records every delete the name server's GC sends."""

    def __init__(self) -> None:
        self.deleted: list[bytes] = []
        self.fail = False

    async def delete(self, object_ids: list[bytes]) -> int:
        if self.fail:
            raise OSError("object server down")
        self.deleted.extend(object_ids)
        return len(object_ids)


@pytest.fixture
def fake_os() -> FakeOS:
    return FakeOS()


@pytest.fixture
async def ns(tmp_path, fake_os):
    d = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(d, NS_ID)
    server = await NameServer.open(d, NS_ID, lambda os_id: fake_os)
    yield server
    await server.close()


@pytest.fixture(params=["sqlite", "memory"])
async def anyns(request, tmp_path, fake_os):
    if request.param == "memory":
        yield MemoryNameServer(NS_ID, lambda os_id: fake_os)
        return
    d = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(d, NS_ID)
    server = await NameServer.open(d, NS_ID, lambda os_id: fake_os)
    yield server
    await server.close()


async def put(ns, bucket, key, versioning, size=10, etag='"e"', ttl=None, **kw):
    """Guard fresh data and name it, as the engine does; returns (record, object_id)."""
    oid = new_object_id()
    await ns.guard(OS_ID, oid, ttl)
    rec = await ns.create_name(ObjectRecord(bucket, key, size=size, etag=etag, link=(Segment(OS_ID, oid, size),)),
                               oid, versioning, **kw)
    return rec, oid
