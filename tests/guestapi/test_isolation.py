"""Real processes under different uids against a real server: each sees only its own instance."""

from __future__ import annotations

import json
import os
import socket

from tests.guestapi.conftest import Child, UnixHTTPConnection, as_user, ctl, request

UID_A, UID_B, STRANGER = 21001, 21002, 21009
ENDPOINTS = ["/", "/1.0", "/1.0/config", "/1.0/config/user.secret", "/1.0/devices", "/1.0/meta-data",
             "/1.0/images/" + "0" * 64 + "/export", "/nope"]


def _get_all(sync, path):
    return {url: request(path, "GET", url) for url in ENDPOINTS}


def test_two_instances_and_a_stranger(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "alpha", "--uid", str(UID_A))
    ctl(data, "instance", "create", "beta", "--uid", str(UID_B), "--type", "virtual-machine")
    ctl(data, "instance", "set", "alpha", "user.secret=alpha-only", "user.meta-data=zone: a",
        "limits.cpu=2", "cloud-init.vendor-data=#cloud-config")
    ctl(data, "instance", "set", "beta", "user.secret=beta-only")
    ctl(data, "instance", "device", "add", "alpha", "data", "type=bucket", "bucket=ostor-service",
        "access=read-only")
    ctl(data, "instance", "device", "add", "beta", "gpu", "type=gpu", "vendor=x y")

    a = as_user(UID_A, _get_all, sock)
    b = as_user(UID_B, _get_all, sock)
    stranger = as_user(STRANGER, _get_all, sock)

    assert json.loads(a["/"][2]) == ["/1.0"]
    info = json.loads(a["/1.0"][2])
    assert info == {"api_version": "1.0", "location": socket.gethostname(), "instance_type": "container",
                    "state": "Started"}
    assert json.loads(b["/1.0"][2])["instance_type"] == "virtual-machine"
    assert json.loads(a["/1.0/config"][2]) == ["/1.0/config/cloud-init.vendor-data", "/1.0/config/user.meta-data",
                                                "/1.0/config/user.secret"]
    assert a["/1.0/config/user.secret"][2] == b"alpha-only"
    assert b["/1.0/config/user.secret"][2] == b"beta-only"
    assert json.loads(a["/1.0/devices"][2]) == {"data": {"type": "bucket", "bucket": "ostor-service",
                                                         "access": "read-only"}}
    assert json.loads(b["/1.0/devices"][2]) == {"gpu": {"type": "gpu", "vendor": "x y"}}
    meta = a["/1.0/meta-data"][2].decode()
    assert meta.startswith("#cloud-config\ninstance-id: ") and meta.endswith("\nlocal-hostname: alpha\nzone: a")
    assert "local-hostname: beta\n" in b["/1.0/meta-data"][2].decode()
    for status, headers, _ in (a["/1.0"], a["/1.0/config"], a["/1.0/devices"]):
        assert status == 200 and headers["Content-Type"] == "application/json"
    assert a["/nope"][0] == 404
    assert a["/1.0/images/" + "0" * 64 + "/export"][0] == 403  # images are off by default

    # The stranger gets an error, as plain text, and nothing about anyone.
    for url, (status, headers, body) in stranger.items():
        assert status == 403, url
        assert headers["Content-Type"] == "text/plain; charset=utf-8" and body.endswith(b"\n")
        assert b"alpha" not in body and b"beta" not in body


def _config_and_state(sync, path):
    out = {"limits": request(path, "GET", "/1.0/config/limits.cpu")[0],
           "security": request(path, "GET", "/1.0/config/security.guestapi")[0],
           "missing-outside": request(path, "GET", "/1.0/config/nothing.here")[0],
           "missing-user": request(path, "GET", "/1.0/config/user.none")}
    out["patch-ready"] = request(path, "PATCH", "/1.0", b'{"state": "Ready"}')
    out["patch-lower"] = request(path, "PATCH", "/1.0", b'{"state": "ready"}')
    out["patch-bad-json"] = request(path, "PATCH", "/1.0", b'{"state": ')
    out["post"] = request(path, "POST", "/1.0", b"{}")[0]
    out["put"] = request(path, "PUT", "/1.0", b"{}")[0]
    out["after"] = json.loads(request(path, "GET", "/1.0")[2])["state"]
    # The query string and headers cannot pick another instance.
    out["spoof"] = request(path, "GET", "/1.0/config/user.secret?instance=beta",
                           headers={"X-Incus-Instance": "beta", "Host": "beta"})[2]
    return out


def test_config_rules_and_state(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "gamma", "--uid", "21003")
    ctl(data, "instance", "create", "delta", "--uid", "21004")
    ctl(data, "instance", "set", "gamma", "user.secret=gamma", "limits.cpu=4")
    ctl(data, "instance", "set", "delta", "user.secret=delta")
    out = as_user(21003, _config_and_state, sock)
    assert out["limits"] == 403 and out["security"] == 403 and out["missing-outside"] == 403
    status, headers, body = out["missing-user"]
    assert status == 404 and headers["Content-Type"] == "text/plain; charset=utf-8" and body.endswith(b"\n")
    assert out["patch-ready"][0] == 200 and out["patch-ready"][2] == b""
    assert out["patch-lower"][0] == 400 and out["patch-lower"][2] == b'Invalid state "ready"\n'
    assert out["patch-bad-json"][0] == 400
    assert out["post"] == 405 and out["put"] == 405
    assert out["after"] == "Ready"
    assert out["spoof"] == b"gamma"
    listed = json.loads(ctl(data, "instance", "list", "--format", "json").stdout)
    assert {d["name"]: d["state"] for d in listed}["gamma"] == "Ready"
    assert "gamma" in ctl(data, "instance", "list").stdout and "Ready" in ctl(data, "instance", "list").stdout


def _keepalive_until_revoked(sync, path):
    conn = UnixHTTPConnection(path)
    conn.request("GET", "/1.0")
    first = conn.getresponse()
    first_status, first_body = first.status, first.read()
    sock_before = conn.sock
    stream = UnixHTTPConnection(path)
    stream.request("GET", "/1.0/events")
    events = stream.getresponse()
    sync.ready()
    sync.wait_go()
    conn.request("GET", "/1.0")
    second = conn.getresponse()
    second_body = second.read()
    same_connection = conn.sock is sock_before
    tail = events.read()  # the event stream ends when the instance goes
    return first_status, first_body, second.status, second_body, same_connection, events.status, tail


def test_revocation_hits_open_connections(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "epsilon", "--uid", "21005")
    child = Child(21005, 21005, _keepalive_until_revoked, sock)
    child.wait_ready()
    ctl(data, "instance", "delete", "epsilon")
    child.go()
    first_status, first_body, second_status, second_body, same, events_status, tail = child.result()
    assert first_status == 200 and b"Started" in first_body
    assert same, "the second request must reuse the kept-alive connection"
    assert second_status == 403 and b"epsilon" not in second_body
    assert events_status == 200 and tail == b""
    assert "epsilon" not in ctl(data, "instance", "list").stdout


def _root_and_api(sync, path):
    return request(path, "GET", "/")[0], request(path, "GET", "/1.0")[0], request(path, "GET", "/1.0/meta-data")[0]


def test_guestapi_off_refuses_everything(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "zeta", "--uid", "21006")
    assert as_user(21006, _root_and_api, sock) == (200, 200, 200)
    ctl(data, "instance", "set", "zeta", "security.guestapi=false")
    assert as_user(21006, _root_and_api, sock) == (403, 403, 403)
    ctl(data, "instance", "set", "zeta", "security.guestapi=true")
    assert as_user(21006, _root_and_api, sock) == (200, 200, 200)


def _meta(sync, path):
    return request(path, "GET", "/1.0/meta-data")


def test_pid_and_cgroup_matchers(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    # --pid: register the child by its process ID once it exists.
    child = Child(21007, 21007, lambda sync, path: (sync.ready(), sync.wait_go(), _meta(sync, path))[2], sock)
    child.wait_ready()
    ctl(data, "instance", "create", "by-pid", "--pid", str(child.pid), "--type", "process")
    child.go()
    status, _, body = child.result()
    assert status == 200 and b"local-hostname: by-pid\n" in body
    # --cgroup (with --uid): children live in our cgroups; a cgroup they are not in does not match.
    with open("/proc/self/cgroup") as handle:
        paths = [line.strip().split(":", 2)[2] for line in handle if line.strip()]
    ours = max(paths, key=len)
    ctl(data, "instance", "create", "by-cgroup", "--cgroup", ours, "--uid", "21008")
    ctl(data, "instance", "create", "elsewhere", "--cgroup", "/no/such/cgroup", "--uid", "21010")
    status, _, body = as_user(21008, _meta, sock)
    assert status == 200 and b"local-hostname: by-cgroup\n" in body
    assert as_user(21010, _meta, sock)[0] == 403


def test_malformed_http_gets_400_and_serving_goes_on(guest_server):
    data, sock = guest_server.data_dir, guest_server.guest_socket
    ctl(data, "instance", "create", "eta", "--uid", "21011")
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n", b"\x00\xff\r\n\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(10)
        raw.connect(sock)
        raw.sendall(garbage)
        answer = raw.recv(4096)
        raw.close()
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer
    assert as_user(21011, _root_and_api, sock) == (200, 200, 200)


def test_socket_mode(guest_server):
    assert oct(os.stat(guest_server.guest_socket).st_mode & 0o777) == oct(0o666)
