"""Version IDs locate their own rows; the null version is found among a key's versions; format 2 upgrades."""

from __future__ import annotations

import sqlite3

import pytest

from ostor.common.errors import NoSuchVersion
from ostor.nameserver import schema
from ostor.nameserver.records import NULL_VERSION, Versioning
from ostor.nameserver.server import NameServer
from ostor.nameserver.versions import VERSION_ID_CHARS, new_version_id, version_vseq

from .conftest import NS_ID, put

E, S, N = Versioning.ENABLED, Versioning.SUSPENDED, Versioning.NONE


def test_a_version_id_names_the_commit_time_it_was_made_for():
    ns = 1_763_800_000_123_456_789
    vid = new_version_id(ns)
    assert len(vid) == VERSION_ID_CHARS and vid.isascii() and "=" not in vid
    assert version_vseq(vid) == -ns
    assert new_version_id(ns) != vid  # the random tail keeps IDs of one instant apart


@pytest.mark.parametrize("text", [NULL_VERSION, "", "x" * 19, "x" * 21, "!" * 20, "abc def ghi jkl mnop"])
def test_what_new_version_id_never_makes_names_no_row(text):
    assert version_vseq(text) is None


def _indexes(ns) -> set[str]:
    return {row[0] for row in ns._rconn.execute("SELECT name FROM sqlite_master WHERE type='index'")}


async def test_every_version_is_found_by_its_id_and_a_forged_one_is_not(ns):
    versions = [(await put(ns, "b", "k", E, size=i + 1))[0] for i in range(40)]
    for rec in versions:
        got = await ns.lookup("b", "k", rec.version_id)
        assert (got.version_id, got.size) == (rec.version_id, rec.size)
    # same commit time, other random tail: the seek finds the row, the ID check refuses it
    real = versions[7].version_id
    forged = new_version_id(-version_vseq(real))
    with pytest.raises(NoSuchVersion):
        await ns.lookup("b", "k", forged)
    with pytest.raises(NoSuchVersion):
        await ns.lookup("b", "other", real)
    assert "objects_version" not in _indexes(ns)


async def test_the_null_version_is_found_behind_newer_versions_and_replaced_in_place(ns):
    null, _ = await put(ns, "b", "k", N, size=1)
    newer = [(await put(ns, "b", "k", E, size=10 + i))[0] for i in range(5)]
    assert (await ns.lookup("b", "k", NULL_VERSION)).size == 1
    # suspended: a put replaces the null version and leaves the versioned ones alone
    await put(ns, "b", "k", S, size=2)
    page = await ns.list_versions("b", "", "", "", "", 100)
    sizes = sorted(e.record.size for e in page.entries)
    assert sizes == [2, 10, 11, 12, 13, 14]
    assert (await ns.lookup("b", "k", NULL_VERSION)).size == 2
    await ns.delete_name("b", "k", NULL_VERSION, S)
    with pytest.raises(NoSuchVersion):
        await ns.lookup("b", "k", NULL_VERSION)
    assert (await ns.lookup("b", "k", newer[2].version_id)).size == 12


async def test_a_format_2_database_drops_its_version_and_expiry_indexes(tmp_path, fake_os):
    directory = tmp_path / "services" / f"{NS_ID:016x}"
    NameServer.create_service(directory, NS_ID)
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    recs = [(await put(ns, "b", "k", E, size=i + 1))[0] for i in range(3)]
    await ns.close()
    conn = sqlite3.connect(directory / schema.DB_NAME)
    with conn:  # the indexes a format-2 build made
        conn.execute("CREATE UNIQUE INDEX objects_version ON objects (bucket, key, version_id)")
        conn.execute("CREATE INDEX guards_expiry ON guards (expires_at)")
        conn.execute("PRAGMA user_version=2")
    conn.close()
    ns = await NameServer.open(directory, NS_ID, lambda os_id: fake_os)
    try:
        assert ns._rconn.execute("PRAGMA user_version").fetchone()[0] == schema.FORMAT_VERSION == 3
        assert not {"objects_version", "guards_expiry"} & _indexes(ns)
        for rec in recs:
            assert (await ns.lookup("b", "k", rec.version_id)).size == rec.size
    finally:
        await ns.close()

