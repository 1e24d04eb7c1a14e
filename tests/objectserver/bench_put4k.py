"""Micro-benchmark (not a test): durable 4 KiB creates with N concurrent writers, then reads.

Run: .venv/bin/python tests/objectserver/bench_put4k.py [--uvloop] [--count N] [--writers W]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from ostor.common.frames import Frame
from ostor.common.ids import new_object_id
from ostor.objectserver.server import ObjectServer


async def one_frame(data: bytes):
    yield Frame(data, True)


async def bench(count: int, writers: int, directory: Path) -> None:
    ObjectServer.create_service(directory, 0x1000000000000001)
    srv = await ObjectServer.open(directory, 0x1000000000000001)
    data = os.urandom(4096)
    ids = [new_object_id() for _ in range(count)]
    queue = iter(ids)

    async def writer() -> None:
        for oid in queue:
            await srv.create(oid, one_frame(data))

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer() for _ in range(writers)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"create 4 KiB x{count}, {writers} writers: {count / wall:,.0f}/s, "
          f"{cpu / count * 1e6:.0f} us CPU each, {srv.flusher.fdatasync_calls} fdatasyncs "
          f"in {srv.flusher.rounds} rounds")
    wall = time.perf_counter()
    for oid in ids:
        with srv.open_read(oid) as handle:
            handle.read()
    print(f"open_read+read 4 KiB: {count / (time.perf_counter() - wall):,.0f}/s")
    wall = time.perf_counter()
    for oid in ids:
        async for _ in srv.read(oid):
            pass
    print(f"read() 4 KiB: {count / (time.perf_counter() - wall):,.0f}/s")
    wall = time.perf_counter()
    for k in range(0, count, 100):
        await srv.delete(ids[k:k + 100])
    await srv.collect_garbage()
    print(f"delete (batches of 100) + GC: {count / (time.perf_counter() - wall):,.0f}/s")
    await srv.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        coro = bench(args.count, args.writers, Path(tmp) / "svc")
        if args.uvloop:
            import uvloop
            uvloop.run(coro)
        else:
            asyncio.run(coro)


if __name__ == "__main__":
    main()
