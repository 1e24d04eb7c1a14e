"""Shared fixtures and helpers for the object server tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ostor.common.frames import Frame, frames_from_bytes
from ostor.common.ids import new_object_id
from ostor.objectserver.server import ObjectServer
from ostor.objectserver.types import ObjectServerConfig

SERVICE_ID = 0x1000000000000001
FAST = ObjectServerConfig(fsync=False, gc_interval=0.05, defrag_interval=0.05)


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    d = tmp_path / "services" / f"{SERVICE_ID:016x}"
    ObjectServer.create_service(d, SERVICE_ID)
    return d


@pytest.fixture
async def server(service_dir: Path):
    srv = await ObjectServer.open(service_dir, SERVICE_ID, FAST)
    yield srv
    await srv.close()


async def put(srv, data: bytes, object_id: bytes | None = None, frame_size: int | None = None) -> bytes:
    """Create an object from bytes; returns its id."""
    oid = object_id or new_object_id()
    frames = frames_from_bytes(data) if frame_size is None else frames_from_bytes(data, frame_size)
    result = await srv.create(oid, frames)
    assert result.size == len(data)
    return oid


async def get(srv, oid: bytes, offset: int = 0, length: int | None = None) -> bytes:
    """Read an object (range) through the streaming read API, checking frame rules."""
    frames = [f async for f in srv.read(oid, offset, length)]
    assert frames and frames[-1].eod and not any(f.eod for f in frames[:-1])
    assert all(len(f.data) <= (1 << 20) for f in frames)
    return b"".join(bytes(f.data) for f in frames)


def payload(size: int) -> bytes:
    """Random bytes (so a misplaced block can never compare equal)."""
    return os.urandom(size)


async def truncated_frames(data: bytes, frame_size: int = 1 << 20):
    """A stream that stops without an end-of-data frame."""
    for pos in range(0, len(data), frame_size):
        yield Frame(data[pos:pos + frame_size], False)
