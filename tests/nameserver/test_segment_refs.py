"""Segment references: fresh data writes no row; a second link counts two; old (v1) databases open."""

from __future__ import annotations

import sqlite3

from ostor.nameserver import schema
from ostor.nameserver.records import ObjectRecord, Versioning
from ostor.nameserver.server import NameServer

from .conftest import NS_ID, OS_ID, put

E, N = Versioning.ENABLED, Versioning.NONE


def _rows(ns) -> list[tuple]:
    return ns._rconn.execute("SELECT object_id, refs FROM segments").fetchall()


async def test_fresh_data_writes_no_row_and_is_collected_on_delete(ns):
    rec, oid = await put(ns, "b", "k", N)
    assert _rows(ns) == []
    await ns.delete_name("b", "k", None, N)
    assert await ns.gc_pending() == [(OS_ID, oid)]


async def test_a_second_link_counts_two_and_the_data_outlives_the_first(ns):
    r1, oid = await put(ns, "b", "k", E)
    r2 = await ns.create_name(ObjectRecord("b", "k", size=r1.size, etag=r1.etag, link=r1.link), None, E)
    assert _rows(ns) == [(oid, 2)]
    await ns.delete_name("b", "k", r1.version_id, E)
    assert _rows(ns) == [(oid, 1)] and await ns.gc_pending() == []
    await ns.delete_name("b", "k", r2.version_id, E)
    assert _rows(ns) == [] and await ns.gc_pending() == [(OS_ID, oid)]


async def test_version_1_database_is_upgraded_and_its_rows_still_count(tmp_path, fake_os):
    directory = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(directory, NS_ID)
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    rec, oid = await put(ns, "b", "k", N)
    await ns.close()
    conn = sqlite3.connect(directory / schema.DB_NAME)
    with conn:  # what a version-1 build wrote for the same object
        conn.execute("INSERT INTO segments (object_id, os_id, refs) VALUES (?,?,1)", (oid, OS_ID))
        conn.execute("PRAGMA user_version=1")
    conn.close()
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    try:
        assert ns._rconn.execute("PRAGMA user_version").fetchone()[0] == schema.FORMAT_VERSION
        await ns.delete_name("b", "k", None, N)
        assert await ns.gc_pending() == [(OS_ID, oid)] and _rows(ns) == []
    finally:
        await ns.close()
