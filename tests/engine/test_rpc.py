"""The message protocol over Unix sockets: the engine works with its services in another process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ostor.common.errors import ServiceUnavailableError
from ostor.common.frames import Frame
from ostor.common.ids import new_object_id
from ostor.engine.remote import open_remote_engine, socket_path

from .test_messages import BEHAVIOUR

ROOT = Path(__file__).resolve().parents[2]


def host_main(data_dir: str) -> None:
    """Child process: open the volume, serve its services on sockets, stop on SIGTERM."""
    from ostor.engine.remote import ServiceHost
    from ostor.engine.services import LocalServices, ServiceConfig

    async def run() -> None:
        services = await LocalServices.open(Path(data_dir), ServiceConfig(ns_count=3, os_count=2))
        host = ServiceHost(services, Path(data_dir))
        await host.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await host.stop()
        await services.close()

    asyncio.run(run())


class Host:
    """A storage process we started (stopped by its PID)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.engine.test_rpc", str(self.data_dir)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path / "data")
    h.start()
    yield h
    h.stop()


@pytest.fixture
async def engine(host):
    eng = await open_remote_engine(host.data_dir)
    await eng.create_bucket("bkt", "alice")
    yield eng
    await eng.close()


@pytest.mark.parametrize("behaviour", BEHAVIOUR, ids=[t.__name__ for t in BEHAVIOUR])
async def test_engine_behaviour_over_sockets(engine, behaviour):
    await behaviour(engine)


async def test_sockets_are_private(host, engine):
    for service_id in engine.services.placement.object_servers:
        assert os.stat(socket_path(host.data_dir, service_id)).st_mode & 0o777 == 0o600


async def test_concurrent_calls_use_several_connections(engine):
    data = [os.urandom(3000 + i) for i in range(24)]
    await asyncio.gather(*(engine.put_object("bkt", f"k{i}", d) for i, d in enumerate(data)))

    async def get(key: str) -> bytes:
        return await (await engine.get_object("bkt", key)).read()

    got = await asyncio.gather(*(get(f"k{i}") for i in range(24)))
    assert got == data
    assert max(len(t._idle) for t in engine.services._transports) > 1


async def test_large_read_through_a_lease(engine):
    data = os.urandom(9 * 1024 * 1024 + 5)
    await engine.put_object("bkt", "big", data)
    reader = await engine.get_object("bkt", "big")
    (piece,) = reader.slices
    server = engine.services.object_server(piece.segment.os_id)
    async with server.lease_extents(piece.segment.object_id, 100, len(data) - 200) as extents:
        got = b"".join(os.pread(e.fd, e.length, e.file_offset) for e in extents)
        assert got == data[100:-100]
        await engine.delete_object("bkt", "big")
        await engine.collect_garbage(defragment=True)  # pinned: the blocks stay where they are
        assert b"".join(os.pread(e.fd, e.length, e.file_offset) for e in extents) == data[100:-100]


async def test_broken_connection_fails_calls_and_is_replaced(host, engine):
    await engine.put_object("bkt", "before", b"x" * 10)
    os_id = engine.services.placement.object_servers[0]
    client = engine.services.object_server(os_id)

    async def slow_frames():
        yield Frame(b"a" * 1000, False)
        host.stop(signal.SIGKILL)  # the storage process dies mid-call
        await asyncio.sleep(0.2)
        yield Frame(b"b" * 1000, True)

    with pytest.raises(ServiceUnavailableError):
        await client.create(new_object_id(), slow_frames())
    with pytest.raises(ServiceUnavailableError):  # nobody listens: a clear error, not a hang
        await engine.get_object("bkt", "before")
    host.start()  # restarted: the next calls open fresh connections
    assert await (await engine.get_object("bkt", "before")).read() == b"x" * 10


async def test_abandoned_read_stream_does_not_poison_the_pool(engine):
    data = os.urandom(3 * 1024 * 1024)
    await engine.put_object("bkt", "three", data)
    for _ in range(3):
        reader = await engine.get_object("bkt", "three")
        frames = reader.frames()
        assert len(await frames.__anext__()) > 0
        await frames.aclose()  # the caller stops after the first frame
    assert await (await engine.get_object("bkt", "three")).read() == data


if __name__ == "__main__":
    host_main(sys.argv[1])
