"""The embedded engine's PUT: the data is made durable in the commit that names it, and first."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading

import pytest

from ostor.common.errors import NoSuchKey
from ostor.engine.check import check_volume
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig
from ostor.nameserver.schema import DB_NAME
from ostor.objectserver.pool import Pool


def committed(engine, bucket: str, key: str) -> bool:
    """Whether a separate connection to the key's name-server database sees the name."""
    ns_id = engine.services.placement.name_server_for(bucket, key)
    conn = sqlite3.connect(engine.services.local_name_servers[ns_id].directory / DB_NAME)
    try:
        return conn.execute("SELECT 1 FROM objects WHERE bucket=? AND key=?",
                            (bucket, key.encode())).fetchone() is not None
    finally:
        conn.close()


async def test_put_syncs_its_pools_before_the_name_commits(disk_engine, monkeypatch):
    assert disk_engine.services.deferred_data_sync
    seen: list[tuple[int, bool]] = []
    real = Pool.sync_data

    def sync_data(pool, mark):
        seen.append((pool.block_size, committed(disk_engine, "bkt", "dir/obj")))
        real(pool, mark)

    monkeypatch.setattr(Pool, "sync_data", sync_data)
    data = os.urandom(129 * 1024)
    await disk_engine.put_object("bkt", "dir/obj", data)
    assert sorted(size for size, _ in seen) == [4096, 128 * 1024]
    assert not any(visible for _, visible in seen)  # each sync ran while the name was uncommitted
    assert committed(disk_engine, "bkt", "dir/obj")
    assert await (await disk_engine.get_object("bkt", "dir/obj")).read() == data


async def test_copy_syncs_before_naming_too(disk_engine, monkeypatch):
    await disk_engine.put_object("bkt", "src", b"x" * 5000)
    seen = []
    real = Pool.sync_data

    def sync_data(pool, mark):
        seen.append(committed(disk_engine, "bkt", "dst"))
        real(pool, mark)

    monkeypatch.setattr(Pool, "sync_data", sync_data)
    await disk_engine.copy_object("bkt", "src", "bkt", "dst")
    assert seen and not any(seen)
    assert await (await disk_engine.get_object("bkt", "dst")).read() == b"x" * 5000


def part_recorded(engine, bucket: str, key: str, upload_id: str, number: int) -> bool:
    """Whether a separate connection sees the upload's part row (committed)."""
    ns_id = engine.services.placement.name_server_for(bucket, key)
    conn = sqlite3.connect(engine.services.local_name_servers[ns_id].directory / DB_NAME)
    try:
        return conn.execute("SELECT 1 FROM parts WHERE upload_id=? AND number=?",
                            (upload_id, number)).fetchone() is not None
    finally:
        conn.close()


async def test_upload_part_syncs_before_the_part_is_recorded(disk_engine, monkeypatch):
    upload = await disk_engine.create_upload("bkt", "mp", owner="alice")
    seen = []
    real = Pool.sync_data

    def sync_data(pool, mark):
        seen.append(part_recorded(disk_engine, "bkt", "mp", upload.upload_id, 1))
        real(pool, mark)

    monkeypatch.setattr(Pool, "sync_data", sync_data)
    await disk_engine.upload_part("bkt", "mp", upload.upload_id, 1, b"p" * 10_000)
    assert seen and not any(seen)
    assert part_recorded(disk_engine, "bkt", "mp", upload.upload_id, 1)


async def test_a_failed_part_sync_records_no_part(disk_engine, monkeypatch):
    upload = await disk_engine.create_upload("bkt", "mp", owner="alice")

    def broken(pool, mark):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Pool, "sync_data", broken)
    with pytest.raises(OSError):
        await disk_engine.upload_part("bkt", "mp", upload.upload_id, 1, b"p" * 10_000)
    monkeypatch.undo()
    assert not part_recorded(disk_engine, "bkt", "mp", upload.upload_id, 1)
    await disk_engine.abort_upload("bkt", "mp", upload.upload_id)
    await disk_engine.collect_garbage()
    report = await check_volume(disk_engine.services)
    assert report.clean and report.pending == 0, "\n".join(report.lines())


async def test_a_failed_data_sync_fails_the_put_and_names_nothing(disk_engine, monkeypatch):
    await disk_engine.put_object("bkt", "k", b"old")

    def broken(pool, mark):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Pool, "sync_data", broken)
    with pytest.raises(OSError):
        await disk_engine.put_object("bkt", "k", b"new bytes")
    with pytest.raises(OSError):
        await disk_engine.put_object("bkt", "fresh", b"new bytes")
    monkeypatch.undo()
    assert await (await disk_engine.get_object("bkt", "k")).read() == b"old"  # the old version stands
    with pytest.raises(NoSuchKey):
        await disk_engine.head_object("bkt", "fresh")
    # The unnamed data had its guards released: GC frees it, and nothing leaks.
    await disk_engine.collect_garbage()
    report = await check_volume(disk_engine.services)
    assert report.clean and report.pending == 0, "\n".join(report.lines())


def _commit_threads() -> list:
    return [t for t in threading.enumerate() if t.name.endswith("-commit") and t.is_alive()]


async def test_every_name_server_of_the_volume_commits_through_one_thread(tmp_path):
    before = len(_commit_threads())
    engine = await Engine.open(tmp_path / "data", ServiceConfig(ns_count=4, os_count=4), start_workers=False)
    try:
        assert len(_commit_threads()) == before + 1
        await engine.create_bucket("bkt", "alice")
        keys = [f"d{i}/k{i}" for i in range(40)]
        used = {engine.services.placement.name_server_for("bkt", k) for k in keys}
        assert len(used) == 4  # every name server takes part
        await asyncio.gather(*(engine.put_object("bkt", k, k.encode()) for k in keys))
        assert all(committed(engine, "bkt", k) for k in keys)
    finally:
        await engine.close()
    assert len(_commit_threads()) == before  # closed with the volume, after its last commits
