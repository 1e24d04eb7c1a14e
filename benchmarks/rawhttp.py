"""A minimal HTTP/1.1 client for the large-object benchmarks, so the client is not the bottleneck.

On the 2-core machine curl receives from a loopback socket at ~2 GB/s whatever sends:
copying every byte out of the kernel is its limit, not the server's. This client
discards a response body inside the kernel (``recv`` with ``MSG_TRUNC``, which Linux
TCP supports), so a GET measures how fast the server puts bytes on the socket; it
receives 3–6.5 GB/s from a bare blocking ``sendfile``. Uploads go out with ``sendfile``
straight from the page cache instead of curl's read-and-write. Either way, nearly all
the CPU and memory bandwidth of the machine is left to the server being measured.
Status and Content-Length are checked, so a failed or short transfer raises.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from urllib.parse import urlsplit

MiB = 1 << 20
BUFFER = 8 * MiB


def _connect(url: str) -> tuple[socket.socket, str, str]:
    """A connected socket, the Host header value and the request target of ``url``."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80))
    target = parts.path + ("?" + parts.query if parts.query else "")
    return sock, parts.netloc, target


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and whatever body bytes came with the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def get_rate(url: str, size: int) -> float:
    """MiB/s of one GET of ``url`` whose body must be ``size`` bytes (RuntimeError otherwise)."""
    start = time.perf_counter()
    sock, host, target = _connect(url)
    with sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = _read_head(sock)
        if status != 200:
            raise RuntimeError(f"GET answered {status}: {body[:500]!r}")
        expected = int(headers["content-length"])
        received = len(body)
        view = memoryview(bytearray(BUFFER))
        while received < expected:
            # MSG_TRUNC: Linux TCP drops the bytes in the kernel instead of copying them out.
            count = sock.recv_into(view, min(BUFFER, expected - received), socket.MSG_TRUNC)
            if not count:
                break
            received += count
    elapsed = time.perf_counter() - start
    if received != size or expected != size:
        raise RuntimeError(f"GET returned {received} of {expected} bytes, expected {size}")
    return size / MiB / elapsed


def warm_get_rate(url: str, size: int, runs: int = 3) -> float:
    """Median MiB/s of ``runs`` GETs after one that warms the page cache.

    One 1 GiB transfer on loopback varies by ±40% from run to run on the 2-core VM
    (bare sendfile included); the median of three is a steadier figure.
    """
    get_rate(url, size)
    return statistics.median(get_rate(url, size) for _ in range(runs))


def put_file(url: str, path: str) -> dict[str, str]:
    """PUT the file at ``path`` to ``url``; the response headers (RuntimeError unless 200)."""
    size = os.path.getsize(path)
    sock, host, target = _connect(url)
    with sock, open(path, "rb") as source:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        offset = 0
        while offset < size:
            offset += os.sendfile(sock.fileno(), source.fileno(), offset, size - offset)
        status, headers, body = _read_head(sock)
    if status != 200:
        raise RuntimeError(f"PUT answered {status}: {body[:500]!r}")
    return headers


def put_rate(url: str, path: str) -> float:
    """MiB/s of one PUT of the file at ``path`` to ``url``."""
    start = time.perf_counter()
    put_file(url, path)
    return os.path.getsize(path) / MiB / (time.perf_counter() - start)
