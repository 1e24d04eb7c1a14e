"""Events in order and filtered per instance; image export; cloud-init's LXD datasource on our socket."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import uuid

import pytest

from tests.guestapi.conftest import Child, UnixHTTPConnection, as_user, ctl, request

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
ODD_VALUE = "spaces and 100% \t tab\nnew line ünïcødé 🚀"


def _read_stream(sync, path, query, until):
    conn = UnixHTTPConnection(path)
    conn.request("GET", "/1.0/events" + query)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    sync.ready()
    events = []
    while True:
        line = resp.readline()
        assert line, "stream ended early"
        events.append(json.loads(line))
        if events[-1]["type"] == "config" and events[-1]["metadata"]["key"] == until:
            return resp.getheader("Content-Type"), events


def _open_websocket(path, query=""):
    """Upgrade a new connection on /1.0/events to a WebSocket; returns the socket and bytes already read."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(path)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /1.0/events{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, buf


def _read_websocket(sync, path, query, until):
    sock, buf = _open_websocket(path, query)
    sync.ready()
    events = []

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            assert chunk, "websocket closed early"
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    while True:
        b0, b1 = need(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(need(2), "big")
        elif length == 127:
            length = int.from_bytes(need(8), "big")
        payload = need(length)
        if b0 & 0x0F == 1:  # text frame: one event
            events.append(json.loads(payload))
            if events[-1]["type"] == "config" and events[-1]["metadata"]["key"] == until:
                return "websocket", events


def _meta(events):
    return [(e["type"], e["metadata"]) for e in events]


@pytest.mark.parametrize("reader", [_read_stream, _read_websocket], ids=["stream", "websocket"])
def test_events_in_order_filtered_and_private(guest_server, reader):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    tag = uuid.uuid4().hex[:6]
    one, two = f"ev1-{tag}", f"ev2-{tag}"
    uid_one, uid_two = (22001, 22002) if reader is _read_stream else (22003, 22004)
    ctl(data, "instance", "create", one, "--uid", str(uid_one))
    ctl(data, "instance", "create", two, "--uid", str(uid_two))
    ctl(data, "instance", "set", one, "user.a=old")
    configs = Child(uid_one, uid_one, reader, sock, "?type=config", "user.end")
    everything = Child(uid_two, uid_two, reader, sock, "", "user.end")
    configs.wait_ready()
    everything.wait_ready()

    ctl(data, "instance", "set", one, "user.a=new", "limits.memory=1GiB", "cloud-init.user-data=#x")
    ctl(data, "instance", "set", two, "user.b=1")
    ctl(data, "instance", "device", "add", one, "disk0", "type=disk", "path=/srv")
    ctl(data, "instance", "device", "add", two, "bkt", "type=bucket", "bucket=ostor-service")
    ctl(data, "instance", "set", one, f"user.odd={ODD_VALUE}")
    ctl(data, "instance", "set", one, "user.odd", ODD_VALUE)  # unchanged: no event
    ctl(data, "instance", "device", "set", two, "bkt", "access=read-write")
    ctl(data, "instance", "unset", one, "user.a")
    ctl(data, "instance", "device", "remove", two, "bkt")
    ctl(data, "instance", "set", two, "user.b=2")
    ctl(data, "instance", "set", one, "user.end=1")
    ctl(data, "instance", "set", two, "user.end=1")

    kind, got_one = configs.result()
    _, got_two = everything.result()
    assert kind in ("application/json", "websocket")
    for event in got_one + got_two:
        assert set(event) == {"timestamp", "type", "metadata"} and TIMESTAMP.match(event["timestamp"])
    assert _meta(got_one) == [
        ("config", {"key": "user.a", "old_value": "old", "value": "new"}),
        ("config", {"key": "user.odd", "old_value": "", "value": ODD_VALUE}),
        ("config", {"key": "user.a", "old_value": "new", "value": ""}),
        ("config", {"key": "user.end", "old_value": "", "value": "1"}),
    ]
    bucket = {"type": "bucket", "bucket": "ostor-service"}
    assert _meta(got_two) == [
        ("config", {"key": "user.b", "old_value": "", "value": "1"}),
        ("device", {"action": "added", "name": "bkt", "config": bucket}),
        ("device", {"action": "updated", "name": "bkt", "config": {**bucket, "access": "read-write"}}),
        ("device", {"action": "removed", "name": "bkt", "config": {**bucket, "access": "read-write"}}),
        ("config", {"key": "user.b", "old_value": "1", "value": "2"}),
        ("config", {"key": "user.end", "old_value": "", "value": "1"}),
    ]
    assert as_user(uid_one, lambda sync, p: request(p, "GET", "/1.0/config/user.odd")[2], sock).decode() == ODD_VALUE
    assert ctl(data, "instance", "get", one, "user.odd").stdout == ODD_VALUE + "\n"


def _export(sync, path, fingerprint):
    status, headers, body = request(path, "GET", f"/1.0/images/{fingerprint}/export")
    return status, headers, hashlib.sha256(body).hexdigest(), len(body)


def test_image_export(guest_server, tmp_path):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    image = tmp_path / "image.tar.xz"
    image.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    fingerprint = ctl(data, "image", "import", str(image), "--alias", "test-image").stdout.strip()
    assert fingerprint == hashlib.sha256(image.read_bytes()).hexdigest()
    assert fingerprint in ctl(data, "image", "list").stdout
    ctl(data, "instance", "create", "imgs", "--uid", "22010")
    assert as_user(22010, _export, sock, fingerprint)[0] == 403
    ctl(data, "instance", "set", "imgs", "security.guestapi.images=true")
    status, headers, digest, size = as_user(22010, _export, sock, fingerprint)
    assert status == 200 and digest == fingerprint and size == image.stat().st_size
    assert headers["Content-Length"] == str(size)
    assert headers["Content-Disposition"] == f"inline;filename={fingerprint}"
    assert as_user(22010, _export, sock, "f" * 64)[0] == 404
    ctl(data, "image", "delete", fingerprint)
    assert as_user(22010, _export, sock, fingerprint)[0] == 404
    assert fingerprint not in ctl(data, "image", "list").stdout


CLOUD_INIT_READER = r"""
import json, sys
from cloudinit import helpers
from cloudinit.sources import DataSourceLXD as lxd
lxd.LXD_SOCKET_PATH = sys.argv[1]   # where our socket is (the module reads this name at call time)
raw = lxd.read_metadata()
ds = lxd.DataSourceLXD(sys_cfg={}, distro=None, paths=helpers.Paths({"cloud_dir": "/tmp", "run_dir": "/tmp"}))
ok = ds._get_data()
print(json.dumps({"raw": raw, "ok": ok, "metadata": ds.metadata, "userdata": ds.userdata_raw,
                  "same_id": ds.check_instance_id({})}))
"""


def test_cloud_init_lxd_datasource_reads_our_socket(guest_server):
    if not os.path.exists("/usr/lib/python3/dist-packages/cloudinit/sources/DataSourceLXD.py"):
        pytest.skip("Debian package cloud-init is not installed (scripts/install-debian-deps.sh)")
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "ci-guest", "--uid", "22020")
    user_data = "#cloud-config\npackages:\n  - htop\n"
    ctl(data, "instance", "set", "ci-guest", f"cloud-init.user-data={user_data}", "user.meta-data=region: r1",
        "user.note=50% done", "limits.cpu=1")
    ctl(data, "instance", "device", "add", "ci-guest", "store", "type=bucket", "bucket=ostor-service",
        "access=read-write")
    result = subprocess.run(["/usr/bin/python3", "-c", CLOUD_INIT_READER, sock], capture_output=True, text=True,
                            user=22020, group=22020, cwd="/", timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["same_id"] is True
    assert out["metadata"]["local-hostname"] == "ci-guest" and out["metadata"]["region"] == "r1"
    assert out["userdata"] == user_data
    assert out["raw"]["config"] == {"cloud-init.user-data": user_data, "user.meta-data": "region: r1",
                                    "user.note": "50% done"}
    assert out["raw"]["devices"] == {"store": {"type": "bucket", "bucket": "ostor-service",
                                               "access": "read-write"}}
    first_id = out["metadata"]["instance-id"]
    # Changing cloud-init user data gives the instance a new ID (so cloud-init runs again).
    ctl(data, "instance", "set", "ci-guest", "cloud-init.user-data=#cloud-config\n")
    again = subprocess.run(["/usr/bin/python3", "-c", CLOUD_INIT_READER, sock], capture_output=True, text=True,
                           user=22020, group=22020, cwd="/", timeout=60)
    assert json.loads(again.stdout)["metadata"]["instance-id"] != first_id


def _await_ping(sync, path):
    """Open the events WebSocket and wait for the server's first ping (opcode 0x9)."""
    import time

    sock, buf = _open_websocket(path)
    opened = time.monotonic()
    while len(buf) < 2:
        chunk = sock.recv(4096)
        assert chunk, "websocket closed before any ping"
        buf += chunk
    return buf[0] & 0x0F, time.monotonic() - opened


def test_websocket_is_pinged_every_ten_seconds(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    name = f"ping-{uuid.uuid4().hex[:6]}"
    ctl(data, "instance", "create", name, "--uid", "22011")
    opcode, waited = as_user(22011, _await_ping, sock)
    assert opcode == 0x9, f"first frame was opcode {opcode:#x}, not a ping"
    assert 8 <= waited <= 15, f"first ping after {waited:.1f} s"
