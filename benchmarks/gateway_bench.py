"""Gateway benchmark: a real `ostor server` (one gateway process, durable PUTs) driven by wrk and curl.

4 KiB PUTs and GETs: wrk, 16 connections, each request a distinct presigned
(SigV4) URL prepared in Python beforehand and fed to wrk through a Lua script.
1 GiB PUT and GET: one presigned URL each, driven by ``rawhttp`` (a sendfile
upload, and a download the kernel discards without copying: curl's own copy
caps it near 2 GB/s here, whatever the server does); put_1g is the median of
three PUTs (three keys), get_1g the median of three GETs after one that warms
the page cache (one 1 GiB transfer varies by +-40% on the 2-core VM), and
curl's GET figure goes to stderr for comparison. The same load against a bare
aiohttp+uvloop server (no storage: GET answers 4 KiB, PUT reads and discards
the body) is printed first, for scale, with what the client receives from a
bare blocking sendfile of the 1 GiB file (the ceiling for get_1g).
``--workers N`` runs ``ostor server --workers N``. The last line is:

  gateway: put_4k=<ops/s> get_4k=<ops/s> put_1g=<MiB/s> get_1g=<MiB/s>
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rawhttp

MiB = 1 << 20
ACCESS_KEY = "OSTORBENCHADMIN0KEY1"
SECRET_KEY = "ostor-bench-secret-0123456789abcdefghijk"
BUCKET = "bench"

BARE_SERVER = textwrap.dedent('''
    import sys, uvloop
    from aiohttp import web
    BODY = b"x" * 4096
    async def handle(request):
        if request.method == "PUT":
            async for _ in request.content.iter_any():
                pass
            return web.Response(status=200)
        return web.Response(body=BODY)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
''')

#: A bare blocking sendfile server for one file: what curl can take from a socket on this machine.
SENDFILE_SERVER = textwrap.dedent('''
    import os, socket, sys
    path, port = sys.argv[1], int(sys.argv[2])
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    server = socket.create_server(("127.0.0.1", port))
    while True:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\\r\\n\\r\\n" not in request:
                data = conn.recv(65536)
                if not data:
                    break  # a readiness probe
                request += data
            if not request.endswith(b"\\r\\n\\r\\n"):
                continue
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % size)
            offset = 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), fd, offset, size - offset)
''')

LUA = textwrap.dedent('''
    local paths = {}
    for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
    local method, body = "%(method)s", %(body)s
    local threads, counter = %(threads)d, 0
    function setup(thread) thread:set("id", counter); counter = counter + 1 end
    function init(args) n = id end
    function request()
        local path = paths[n %% #paths + 1]
        n = n + threads
        if body then
            return wrk.format(method, path, {["Content-Length"] = tostring(#body)}, body)
        end
        return wrk.format(method, path)
    end
''')


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Poll ``url`` until it answers (RuntimeError when the process dies or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process we started (by PID), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_server(workdir: Path, data: Path | None = None, args: Sequence[str] = (),
                 launcher: Sequence[str] = ("-m", "ostor.cli")) -> tuple[subprocess.Popen, str]:
    """`ostor server` on a free port of 127.0.0.1 with the bench keys, its log in
    ``workdir/server.log``; returns the process and its endpoint once it answers."""
    port = free_port()
    env = dict(os.environ, OSTOR_ROOT_ACCESS_KEY=ACCESS_KEY, OSTOR_ROOT_SECRET_KEY=SECRET_KEY)
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, *launcher, "server", str(data or workdir / "data"),
                                 "--address", f"127.0.0.1:{port}", *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/minio/health/ready", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, base


#: wrk threads: one thread drives 16 connections at well over 15,000 requests/s and leaves the
#: second core of a 2-core machine to the server (--wrk-threads changes it).
WRK_THREADS = 1


def wrk(base: str, paths: list[str], method: str, workdir: Path, seconds: int, connections: int = 16,
        threads: int | None = None) -> tuple[float, int]:
    """Run wrk over ``paths``; returns (requests/s, non-2xx responses)."""
    threads = threads or WRK_THREADS
    tag = f"{method.lower()}-{len(paths)}"
    (workdir / f"{tag}.paths").write_text("\n".join(paths) + "\n")
    body = 'string.rep("x", 4096)' if method == "PUT" else "nil"
    (workdir / f"{tag}.lua").write_text(LUA % {"paths": workdir / f"{tag}.paths", "method": method,
                                                "body": body, "threads": threads})
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "-s", str(workdir / f"{tag}.lua"), base], capture_output=True, text=True, check=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    errors = re.search(r"Socket errors:.*", out.stdout)
    if errors:
        print(f"  wrk {method}: {errors.group(0)}", file=sys.stderr)
    return rate, int(bad.group(1)) if bad else 0


def curl_rate(args: list[str], size: int) -> float:
    """MiB/s of one curl transfer of ``size`` bytes (fails on an HTTP error)."""
    start = time.perf_counter()
    out = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", *args],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"curl failed: {out.stderr.strip()} {out.stdout}")
    return size / MiB / elapsed


def make_big_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data (16 MiB random blocks, each tagged)."""
    block = os.urandom(16 * MiB)
    with open(path, "wb") as handle:
        for i in range(size // len(block)):
            handle.write(i.to_bytes(8, "big") + block[8:])
        # On disk before any load runs: its writeback would otherwise compete with the
        # durable 4 KiB PUTs measured next.
        handle.flush()
        os.fsync(handle.fileno())


def bare_figures(workdir: Path, seconds: int, big: Path) -> str:
    """The same load against a bare aiohttp+uvloop server."""
    port = free_port()
    script = workdir / "bare.py"
    script.write_text(BARE_SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/", proc)
        paths = [f"/bench/k{i}" for i in range(1000)]
        put, _ = wrk(base, paths, "PUT", workdir, seconds)
        get, _ = wrk(base, paths, "GET", workdir, seconds)
        put_1g = rawhttp.put_rate(base + "/bench/big", str(big))
    finally:
        stop(proc)
    return (f"bare aiohttp+uvloop: put_4k={put:.0f} get_4k={get:.0f} put_1g={put_1g:.0f} "
            f"(bare sendfile get_1g={sendfile_figure(workdir, big):.0f})")


def sendfile_figure(workdir: Path, big: Path) -> float:
    """MiB/s received from a blocking os.sendfile of the big file (the ceiling for get_1g)."""
    port = free_port()
    script = workdir / "sendfile.py"
    script.write_text(SENDFILE_SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(big), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return rawhttp.warm_get_rate(f"http://127.0.0.1:{port}/big", big.stat().st_size)
    finally:
        stop(proc)


def presigner(endpoint: str):
    """A boto3 client that presigns SigV4 URLs for the bench user."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def gateway_figures(workdir: Path, seconds: int, big: Path, count: int, workers: int = 1) -> str:
    """Start `ostor server` (``--workers``), run the load, return the figures line."""
    proc, base = start_server(workdir, args=("--workers", str(workers)))
    try:
        while b"ostor S3 endpoint" not in (workdir / "server.log").read_bytes():  # every gateway listens
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.1)
        s3 = presigner(base)
        s3.create_bucket(Bucket=BUCKET)

        def presign(method: str, key: str) -> str:
            url = s3.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=3600)
            return url[len(base):]

        started = time.perf_counter()
        put_paths = [presign("put_object", f"obj/{i:07d}") for i in range(count)]
        print(f"  presigned {count} PUT URLs in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        put_4k, bad = wrk(base, put_paths, "PUT", workdir, seconds)
        if bad:
            print(f"  PUT: {bad} non-2xx responses", file=sys.stderr)
        written = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                         for o in page.get("Contents", []))
        get_paths = [presign("get_object", key) for key in written[:count]]
        get_4k, bad = wrk(base, get_paths, "GET", workdir, seconds)
        if bad:
            print(f"  GET: {bad} non-2xx responses", file=sys.stderr)
        size = big.stat().st_size
        put_1g = statistics.median(rawhttp.put_rate(base + presign("put_object", f"big{i}"), str(big))
                                   for i in range(3))
        get_url = base + presign("get_object", "big0")
        get_1g = rawhttp.warm_get_rate(get_url, size)  # page cache warmed, as for the 4 KiB objects
        print(f"  (curl receives the same GET at {curl_rate([get_url], size):.0f} MiB/s)", file=sys.stderr)
        print(f"  ({len(written)} objects written by the PUT run)", file=sys.stderr)
        return f"gateway: put_4k={put_4k:.0f} get_4k={get_4k:.0f} put_1g={put_1g:.0f} get_1g={get_1g:.0f}"
    finally:
        stop(proc)


def main() -> None:
    """Run the bare and gateway measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--urls", type=int, default=60000, help="distinct presigned URLs per wrk run")
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large object")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes (ostor server --workers)")
    parser.add_argument("--wrk-threads", type=int, default=WRK_THREADS, help="wrk threads")
    parser.add_argument("--skip-bare", action="store_true", help="do not measure the bare servers")
    args = parser.parse_args()
    globals()["WRK_THREADS"] = args.wrk_threads
    for tool in ("wrk", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"gateway_bench: {tool} is not installed (make debian-deps)")
    workdir = Path(tempfile.mkdtemp(prefix="ostor-gwbench-", dir=args.dir))
    try:
        big = workdir / "big.bin"
        make_big_file(big, args.size_mib * MiB)
        if not args.skip_bare:
            print(bare_figures(workdir, args.seconds, big), flush=True)
        print(gateway_figures(workdir, args.seconds, big, args.urls, args.workers), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
