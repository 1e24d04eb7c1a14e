"""`ostor-ctl check` as a real process: clean, leaked, damaged and unopenable volumes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from ostor.common.frames import frames_from_bytes
from ostor.common.ids import new_object_id
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig

CONFIG = ServiceConfig(ns_count=2, os_count=2)


def _check(data_dir):
    return subprocess.run([sys.executable, "-m", "ostor.admin.ctl", "check", str(data_dir)],
                          capture_output=True, text=True)


async def _populate(data_dir):
    async with await Engine.open(data_dir, CONFIG, start_workers=False) as engine:
        await engine.create_bucket("bkt", "alice")
        for i in range(20):
            await engine.put_object("bkt", f"d{i % 3}/k{i}", bytes([i]) * (i * 5000 + 1))
        return engine.services.layout


def test_clean_volume(tmp_path):
    asyncio.run(_populate(tmp_path))
    result = _check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout.splitlines()[-1] and "names: 20" in result.stdout


def test_leaked_object_is_reported(tmp_path):
    asyncio.run(_populate(tmp_path))

    async def leak():
        async with await Engine.open(tmp_path, CONFIG, start_workers=False) as engine:
            server = next(iter(engine.services.object_servers.values()))
            oid = new_object_id()
            await server.create(oid, frames_from_bytes(b"orphan" * 1000))
            return oid

    oid = asyncio.run(leak())
    result = _check(tmp_path)
    assert result.returncode == 1
    assert f"LEAKED object {oid.hex()}" in result.stdout and "6000 bytes" in result.stdout


def test_damaged_block_is_reported(tmp_path):
    layout = asyncio.run(_populate(tmp_path))

    async def first_piece():
        async with await Engine.open(tmp_path, CONFIG, start_workers=False) as engine:
            record = await engine.head_object("bkt", "d1/k10")
            segment = record.link[0]
            server = engine.services.object_server(segment.os_id)
            with server.open_read(segment.object_id, 0, 100) as handle:
                extent = handle.extents[0]
                return segment, extent, os.readlink(f"/proc/self/fd/{extent.fd}")

    segment, extent, pool = asyncio.run(first_piece())
    assert pool.startswith(str(layout.service_dir(segment.os_id)))
    with open(pool, "r+b") as fh:
        fh.seek(extent.file_offset + 10)
        fh.write(b"\xff\xfe\xfd")
    result = _check(tmp_path)
    assert result.returncode == 1
    assert f"DAMAGED object {segment.object_id.hex()}" in result.stdout


def test_unopenable_volume_names_the_file(tmp_path):
    asyncio.run(_populate(tmp_path))
    (tmp_path / "volume.json").write_text("{")
    result = _check(tmp_path)
    assert result.returncode == 2 and "volume.json" in result.stderr
    missing = _check(tmp_path / "nothing-here")
    assert missing.returncode == 2 and "no ostor volume" in missing.stderr
