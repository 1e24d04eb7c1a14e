"""Listing benchmark: ListObjectsV2 over many keys through a real ``ostor server``.

    .venv/bin/python benchmarks/listing_bench.py [--keys 100000] [--dirs 100] [--data DIR]

The keys (``dirNNN/fileNNNNNNNN``, one byte each) are written through the engine
directly, which is faster than HTTP; ``--data DIR`` keeps them for the next run.
Figures, all for 1000-key pages:
  page_ms       the server's time for one page of a recursive listing (median of 5
                requests over plain HTTP, so the client's own parsing is left out),
  mid_page_ms   the same, resuming in the middle of the key space (start-after),
  delim_page_ms one page with delimiter=/ at the top (the common prefixes),
  walk          keys/s walking the whole bucket, following continuation tokens,
  walk_boto3    keys/s for boto3's paginator (what a Python user sees: botocore's
                XML parsing takes most of it).
Prints, as its last line:
  listing: keys=<N> page_ms=<ms> mid_page_ms=<ms> delim_page_ms=<ms> walk=<keys/s> walk_boto3=<keys/s>
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_bench as gb  # noqa: E402  (the server helpers and bench keys)

BUCKET = "bench"
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")


def key_name(i: int, dirs: int) -> str:
    """The i-th key: spread over ``dirs`` directories, so over every name server."""
    return f"dir{i % dirs:03d}/file{i:08d}"


async def populate(data: Path, keys: int, dirs: int) -> None:
    """Write the keys through the engine (64 at a time)."""
    from ostor.engine.engine import Engine

    async with await Engine.open(data) as engine:
        await engine.create_bucket(BUCKET, "bench")
        gate = asyncio.Semaphore(64)

        async def put(i: int) -> None:
            async with gate:
                await engine.put_object(BUCKET, key_name(i, dirs), b"x")

        await asyncio.gather(*(put(i) for i in range(keys)))


def fetch(url: str) -> bytes:
    """One GET, the body."""
    with urllib.request.urlopen(url) as response:
        return response.read()


def page_ms(url: str, rounds: int = 5) -> float:
    """Median milliseconds of ``rounds`` GETs of ``url``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fetch(url)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def walk(s3) -> int:
    """Walk the bucket over plain HTTP, following continuation tokens; returns the keys seen."""
    seen, token = 0, None
    while True:
        params = {"Bucket": BUCKET, **({"ContinuationToken": token} if token else {})}
        body = fetch(s3.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=3600))
        seen += body.count(b"<Key>")
        found = _TOKEN.search(body)
        if found is None:
            return seen
        token = found.group(1).decode()


def main() -> int:
    """Populate (unless kept), start a server, measure, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys in the bucket")
    parser.add_argument("--dirs", type=int, default=100, help="directories the keys are spread over")
    parser.add_argument("--data", type=Path, help="keep the data here (reused when it exists)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ostor-listing-"))
    data = args.data or workdir / "data"
    try:
        if not data.exists():
            start = time.perf_counter()
            asyncio.run(populate(data, args.keys, args.dirs))
            print(f"wrote {args.keys} keys in {time.perf_counter() - start:.0f} s", flush=True)
        proc, base = gb.start_server(workdir, data)
        try:
            s3 = gb.presigner(base)
            url = lambda **kw: s3.generate_presigned_url(  # noqa: E731
                "list_objects_v2", Params={"Bucket": BUCKET, **kw}, ExpiresIn=3600)
            first = page_ms(url())
            middle = page_ms(url(StartAfter=key_name(args.keys // 2, args.dirs)))
            delimited = page_ms(url(Delimiter="/"))
            start = time.perf_counter()
            walked = walk(s3)
            walk_rate = walked / (time.perf_counter() - start)
            start = time.perf_counter()
            counted = sum(len(page.get("Contents", []))
                          for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET))
            boto_rate = counted / (time.perf_counter() - start)
        finally:
            gb.stop(proc)
        if walked != counted:
            print(f"walks disagree: {walked} over HTTP, {counted} with boto3", file=sys.stderr)
            return 1
        print(f"listing: keys={walked} page_ms={first:.1f} mid_page_ms={middle:.1f} "
              f"delim_page_ms={delimited:.1f} walk={walk_rate:.0f} walk_boto3={boto_rate:.0f}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
