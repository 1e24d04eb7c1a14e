"""5,000 registered instances and 1,000 simultaneous connections on the one guest socket."""

from __future__ import annotations

import asyncio
import resource
import socket
import time

from ostor.admin.client import call_socket
from tests.guestapi.conftest import as_user, request

INSTANCES = 5000
CONNECTIONS = 1000
BASE_UID = 40000


async def _register(admin_socket, count):
    gate = asyncio.Semaphore(32)

    async def one(i):
        async with gate:
            await call_socket(admin_socket, "instance-create", {"name": f"n{i}", "uid": BASE_UID + i}, None)

    await asyncio.gather(*(one(i) for i in range(count)))


def _many_connections(sync, path, count):
    conns = []
    for _ in range(count):  # every connection open at once before any request
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(path)
        conns.append(sock)
    started = time.monotonic()
    for sock in conns:
        sock.sendall(b"GET /1.0/meta-data HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = []
    for sock in conns:
        buf = b""
        while b"local-hostname" not in buf or not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        answers.append(buf)
    elapsed = time.monotonic() - started
    for sock in conns:
        sock.close()
    return answers, elapsed


def test_5000_instances_1000_connections(guest_server):
    started = time.monotonic()
    asyncio.run(_register(guest_server.data_dir / "admin.sock", INSTANCES))
    print(f"registered {INSTANCES} instances in {time.monotonic() - started:.1f}s")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * CONNECTIONS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * CONNECTIONS), hard))
    last = INSTANCES - 1
    answers, elapsed = as_user(BASE_UID + last, _many_connections, guest_server.guest_socket, CONNECTIONS)
    assert len(answers) == CONNECTIONS
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert f"local-hostname: n{last}\n".encode() in answer
    assert elapsed < 60
    # The lookup does not scan: a request among 5,000 instances stays fast.
    started = time.monotonic()
    for _ in range(200):
        assert request(guest_server.guest_socket, "GET", "/1.0")[0] == 403  # we (root) are a stranger
    assert time.monotonic() - started < 20
    assert as_user(BASE_UID + 1234, lambda sync, p: request(p, "GET", "/1.0/meta-data")[2],
                   guest_server.guest_socket).endswith(b"local-hostname: n1234\n")
