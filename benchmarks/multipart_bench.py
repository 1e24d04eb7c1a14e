"""Multipart benchmark: a real `ostor server` driven by ``rawhttp`` threads and an asyncio client.

* put_1g_8parallel: a multipart upload of 1 GiB as 8 parts of 128 MiB, each sent by
  its own thread at the same time with ``sendfile`` (presigned UploadPart URLs, so the
  payload is UNSIGNED-PAYLOAD: the server hashes only MD5 for the ETag); the clock runs
  from CreateMultipartUpload to the end of CompleteMultipartUpload. The figure is the
  median of three such uploads (three keys).
* get_1g: GETs of the completed 1 GiB object (8 segments), received by ``rawhttp`` (see
  gateway_bench: curl's copy would be the bottleneck); the median of three after one
  that warms the page cache.
* complete_10000_parts: CompleteMultipartUpload of an upload with 10,000 parts, timed
  around the POST alone. 10,000 parts of S3's 5 MiB minimum would be 49 GiB, and
  completion copies no data (the object *is* the parts table), so this server process
  runs with the minimum lowered to 1 byte and the parts are 1 KiB; nothing else differs.

The last line is:

  multipart: put_1g_8parallel=<MiB/s> get_1g=<MiB/s> complete_10000_parts=<seconds>
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rawhttp
from gateway_bench import MiB, presigner, start_server as start_bench_server, stop  # noqa: E402

BUCKET = "mpbench"
#: Runs `ostor server` with S3's 5 MiB part minimum lowered (see the module docstring).
LOW_MINIMUM_SERVER = ("import sys, ostor.engine.multipart as m; m.MIN_PART_SIZE = 1; "
                      "from ostor.cli import main; sys.argv[0] = 'ostor'; main()")


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    """`ostor server` on a free port (the part minimum lowered for the 10,000-part upload)."""
    return start_bench_server(workdir, launcher=("-c", LOW_MINIMUM_SERVER))


def complete_xml(etags: list[str]) -> bytes:
    """A CompleteMultipartUpload document for parts 1…N."""
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
                    for n, etag in enumerate(etags, 1))
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


def post(url: str, body: bytes) -> bytes:
    """POST ``body`` to a presigned URL; returns the response body (raises on an HTTP error)."""
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read()


def put_parallel(s3, base: str, parts: list[Path], key: str = "big") -> float:
    """MiB/s of a multipart upload whose parts go up in parallel, one thread (sendfile) each."""
    size = sum(p.stat().st_size for p in parts)
    started = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    urls = [s3.generate_presigned_url("upload_part", Params={"Bucket": BUCKET, "Key": key, "UploadId": upload_id,
                                                             "PartNumber": n}, ExpiresIn=3600)
            for n in range(1, len(parts) + 1)]
    with ThreadPoolExecutor(len(parts)) as pool:
        etags = [headers["etag"] for headers in pool.map(rawhttp.put_file, urls, map(str, parts))]
    post(s3.generate_presigned_url("complete_multipart_upload", Params={
        "Bucket": BUCKET, "Key": key, "UploadId": upload_id}, ExpiresIn=3600), complete_xml(etags))
    return size / MiB / (time.perf_counter() - started)


async def upload_small_parts(urls: list[str], body: bytes, concurrency: int = 16) -> None:
    """PUT ``body`` to every URL with ``concurrency`` requests in flight (aiohttp)."""
    import aiohttp

    queue = list(reversed(urls))

    async def worker(session) -> None:
        while queue:
            url = queue.pop()
            async with session.put(url, data=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"part upload answered {response.status}: {await response.text()}")
                await response.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def complete_many(s3, count: int) -> float:
    """Seconds CompleteMultipartUpload takes for an upload of ``count`` 1 KiB parts."""
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="many")["UploadId"]
    body = os.urandom(1024)
    urls = [s3.generate_presigned_url("upload_part", Params={"Bucket": BUCKET, "Key": "many", "UploadId": upload_id,
                                                             "PartNumber": n}, ExpiresIn=3600)
            for n in range(1, count + 1)]
    started = time.perf_counter()
    asyncio.run(upload_small_parts(urls, body))
    print(f"  uploaded {count} parts in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    url = s3.generate_presigned_url("complete_multipart_upload", Params={
        "Bucket": BUCKET, "Key": "many", "UploadId": upload_id}, ExpiresIn=3600)
    document = complete_xml([etag] * count)
    started = time.perf_counter()
    answer = post(url, document)
    elapsed = time.perf_counter() - started
    if f"-{count}".encode() not in answer:
        raise RuntimeError(f"unexpected CompleteMultipartUpload answer: {answer[:300]!r}")
    return elapsed


def main() -> None:
    """Run the three measurements and print the figures line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large object")
    parser.add_argument("--streams", type=int, default=8, help="parallel part uploads")
    parser.add_argument("--parts", type=int, default=10000, help="parts of the upload to complete")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ostor-mpbench-", dir=args.dir))
    proc = None
    try:
        part_size = args.size_mib * MiB // args.streams
        block = os.urandom(part_size)
        parts = []
        for n in range(args.streams):
            path = workdir / f"part{n}.bin"
            path.write_bytes(n.to_bytes(8, "big") + block[8:])  # distinct, incompressible parts
            parts.append(path)
        del block
        proc, base = start_server(workdir)
        s3 = presigner(base)
        s3.create_bucket(Bucket=BUCKET)
        put = statistics.median(put_parallel(s3, base, parts, f"big{i}") for i in range(3))
        get_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "big0"}, ExpiresIn=3600)
        size = sum(p.stat().st_size for p in parts)
        get = rawhttp.warm_get_rate(get_url, size)
        complete = complete_many(s3, args.parts)
        print(f"multipart: put_1g_{args.streams}parallel={put:.0f} get_1g={get:.0f} "
              f"complete_{args.parts}_parts={complete:.2f}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
