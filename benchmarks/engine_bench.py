"""Engine benchmark: the storage engine alone, no HTTP.

Prints, as its last line:
  engine: get_4k=<ops/s> put_4k=<ops/s> get_256m=<MiB/s> put_256m=<MiB/s> space_overhead=<percent>

put_4k is durable (every create fdatasync'd, group-committed) with 32 concurrent
writers, the median of three runs. get_256m reads the large object a second time
(page cache warm; full 8 MiB pieces are written with O_DIRECT, so the first read
comes from the disk and is printed beside it). space_overhead is (pool files +
name-server databases, as allocated on disk) / (logical object bytes) - 1 for the
mixed size distribution below; it includes the zeros that pools of small blocks
write ahead of need (at most 256 KiB per such pool, see ostor.objectserver.pool).
The disk itself is measured with dd (O_DIRECT + fdatasync) and printed beside.
The process runs with the garbage-collector settings of ``ostor server``
(ostor.common.gctune).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ostor.common.gctune import tune_for_serving
from ostor.engine.engine import Engine

MiB = 1 << 20
#: Mixed sizes for space_overhead: log-uniform between 1 byte and 4 MiB
#: (many small objects, a long tail of large ones), fixed seed.
MIX_MIN, MIX_MAX, MIX_COUNT = 1, 4 * MiB, 3000
#: put_4k is the median of this many runs.
PUT_RUNS = 3


def disk_figure(directory: Path) -> str:
    """Sequential write speed of the disk under ``directory`` as dd reports it."""
    target = directory / "dd.test"
    try:
        out = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=1024",
                              "oflag=direct", "conv=fdatasync"], capture_output=True, text=True).stderr
        return out.strip().splitlines()[-1]
    finally:
        target.unlink(missing_ok=True)


def allocated_bytes(path: Path) -> int:
    """Bytes the filesystem allocated under ``path`` (sparse holes excluded)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


async def put_small(engine: Engine, count: int, writers: int, payload: bytes, first: int = 0) -> float:
    queue = iter(range(first, first + count))

    async def writer() -> None:
        for i in queue:
            await engine.put_object("bench", f"d{i % 64}/obj{i}", payload)

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return count / (time.perf_counter() - start)


async def get_small(engine: Engine, count: int, stored: int, readers: int) -> float:
    keys = [f"d{i % 64}/obj{i}" for i in random.Random(1).choices(range(stored), k=count)]
    queue = iter(keys)

    async def reader() -> None:
        for key in queue:
            obj = await engine.get_object("bench", key)
            data = await obj.read()
            assert len(data) == 4096

    start = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(readers)))
    return count / (time.perf_counter() - start)


async def put_large(engine: Engine, size: int) -> float:
    chunk = os.urandom(MiB)

    async def body():
        for _ in range(size // MiB):
            yield chunk

    start = time.perf_counter()
    await engine.put_object("bench", "large", body())
    return size / MiB / (time.perf_counter() - start)


async def get_large(engine: Engine, size: int) -> float:
    start = time.perf_counter()
    obj = await engine.get_object("bench", "large")
    got = 0
    async for frame in obj.frames():
        got += len(frame)
    assert got == size
    return size / MiB / (time.perf_counter() - start)


async def space_overhead(data_dir: Path) -> tuple[float, int]:
    rnd = random.Random(7)
    sizes = [int(MIX_MIN * (MIX_MAX / MIX_MIN) ** rnd.random()) for _ in range(MIX_COUNT)]
    async with await Engine.open(data_dir) as engine:
        await engine.create_bucket("mix", "bench")
        blob = os.urandom(MIX_MAX)
        for i, size in enumerate(sizes):
            await engine.put_object("mix", f"dir{i % 32}/o{i}", blob[:size])
    logical = sum(sizes)
    return (allocated_bytes(data_dir) / logical - 1) * 100, logical


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20000, help="4 KiB objects to put")
    parser.add_argument("--gets", type=int, default=60000, help="4 KiB gets")
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--dir", default=None, help="where to put the data (default: a temp dir here)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ostor-bench-", dir=args.dir or os.getcwd()))
    try:
        print("disk (dd, 1 GiB, O_DIRECT, fdatasync):", disk_figure(base), flush=True)
        async with await Engine.open(base / "speed") as engine:
            tune_for_serving()  # the collector settings `ostor server` runs the engine with
            await engine.create_bucket("bench", "bench")
            # The median of three runs, each creating new objects: one run varies by ±15% here.
            runs = [await put_small(engine, args.small, args.writers, os.urandom(4096), i * args.small)
                    for i in range(PUT_RUNS)]
            put_4k = statistics.median(runs)
            print(f"put_4k: {put_4k:.0f} ops/s ({args.writers} writers, durable; median of "
                  f"{', '.join(f'{r:.0f}' for r in runs)})", flush=True)
            get_4k = await get_small(engine, args.gets, args.small, args.writers)
            print(f"get_4k: {get_4k:.0f} ops/s", flush=True)
            size = args.large_mib * MiB
            put_big = await put_large(engine, size)
            print(f"put_{args.large_mib}m: {put_big:.0f} MiB/s", flush=True)
            # Large pieces are written with O_DIRECT, so the first read comes from the disk; the
            # figure is the second read (page cache warm), as the gateway benchmark measures get_1g.
            get_cold = await get_large(engine, size)
            get_big = await get_large(engine, size)
            print(f"get_{args.large_mib}m: {get_big:.0f} MiB/s (first read, from the disk: {get_cold:.0f} MiB/s)",
                  flush=True)
        overhead, logical = await space_overhead(base / "space")
        print(f"space_overhead: {overhead:.1f}% over {logical / MiB:.0f} MiB in {MIX_COUNT} objects "
              f"(log-uniform {MIX_MIN} B .. {MIX_MAX // MiB} MiB)", flush=True)
        print(f"engine: get_4k={get_4k:.0f} put_4k={put_4k:.0f} get_256m={get_big:.0f} "
              f"put_256m={put_big:.0f} space_overhead={overhead:.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
