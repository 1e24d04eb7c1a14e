"""`ostor server --workers 2`: a storage process, two gateway processes on one port, boto3 against it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import ServerProcess, make_client

MiB = 1 << 20


def children(pid: int) -> set[int]:
    """PIDs of the processes ``pid`` started (its gateways)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not); it may exit while we look."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def start_workers(data_dir: Path) -> ServerProcess:
    """``ostor server --workers 2``, once the banner says every gateway listens."""
    proc = ServerProcess(data_dir, "--workers", "2").start()
    log = data_dir.parent / f"server-{proc.port}.log"
    wait_for(lambda: b"ostor S3 endpoint" in log.read_bytes())
    assert len(children(proc.proc.pid)) == 2
    return proc


@pytest.fixture
def workers_server(tmp_path):
    proc = start_workers(tmp_path / "data")
    yield proc
    proc.stop()


def fresh_client(server):
    """A client with its own connection pool: SO_REUSEPORT spreads new connections over the gateways."""
    return make_client(server.endpoint, retries={"max_attempts": 3})


def test_data_written_through_any_gateway_is_read_through_any(workers_server):
    fresh_client(workers_server).create_bucket(Bucket="shared")
    for i in range(16):
        fresh_client(workers_server).put_object(Bucket="shared", Key=f"k{i}", Body=f"value {i}".encode())
    for i in range(16):
        body = fresh_client(workers_server).get_object(Bucket="shared", Key=f"k{i}")["Body"].read()
        assert body == f"value {i}".encode()
    keys = [o["Key"] for o in fresh_client(workers_server).list_objects_v2(Bucket="shared")["Contents"]]
    assert sorted(keys) == sorted(f"k{i}" for i in range(16))
    data_dir = workers_server.data_dir
    assert (data_dir / "admin.sock").exists()
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (data_dir / "run").iterdir())


def test_large_objects_and_ranges_cross_processes(workers_server):
    s3 = fresh_client(workers_server)
    s3.create_bucket(Bucket="big")
    data = os.urandom(20 * MiB + 123)
    s3.put_object(Bucket="big", Key="blob", Body=data)
    for _ in range(4):  # several connections: each gateway sends from the leased pool-file extents
        client = fresh_client(workers_server)
        assert client.get_object(Bucket="big", Key="blob")["Body"].read() == data
        part = client.get_object(Bucket="big", Key="blob", Range="bytes=1000-9000999")["Body"].read()
        assert part == data[1000:9001000]


def test_killed_gateway_is_replaced_and_service_continues(workers_server):
    s3 = fresh_client(workers_server)
    s3.create_bucket(Bucket="survive")
    s3.put_object(Bucket="survive", Key="a", Body=b"before")
    parent = workers_server.proc.pid
    first = children(parent)
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(victim))
    for i in range(8):  # the surviving gateway answers every new connection meanwhile
        client = fresh_client(workers_server)
        client.put_object(Bucket="survive", Key=f"during{i}", Body=b"x")
        assert client.get_object(Bucket="survive", Key="a")["Body"].read() == b"before"
    wait_for(lambda: len(children(parent)) == 2 and victim not in children(parent))
    for i in range(8):
        assert fresh_client(workers_server).get_object(Bucket="survive", Key=f"during{i}")["Body"].read() == b"x"


def test_sigterm_stops_every_process_and_restart_finds_everything(tmp_path):
    server = start_workers(tmp_path / "data")
    gateways = children(server.proc.pid)
    s3 = fresh_client(server)
    s3.create_bucket(Bucket="keep")
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket="keep", Key="obj", Body=data)
    assert server.stop() == 0
    assert not any(alive(pid) for pid in gateways)
    assert not list((tmp_path / "data" / "run").iterdir())  # sockets removed
    restarted = start_workers(tmp_path / "data")
    try:
        assert fresh_client(restarted).get_object(Bucket="keep", Key="obj")["Body"].read() == data
    finally:
        restarted.stop()
