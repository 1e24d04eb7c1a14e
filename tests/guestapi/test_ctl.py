"""ostor-ctl instance/image commands as real processes: against a running server and offline."""

from __future__ import annotations

import hashlib
import json

from tests.guestapi.conftest import GuestServer, as_user, ctl, request

VALUES = ["two words", "100% sure", "tab\there", "line one\nline two\n", "ünïcødé ✓ 🚀", "=starts=with=equals", ""]


def test_instance_lifecycle(guest_server):
    data = guest_server.data_dir
    out = ctl(data, "instance", "create", "web-1", "--uid", "23001", "--gid", "23001", "--type", "container")
    assert "web-1" in out.stdout
    for i, value in enumerate(VALUES):
        ctl(data, "instance", "set", "web-1", f"user.v{i}={value}")
        assert ctl(data, "instance", "get", "web-1", f"user.v{i}").stdout == value + "\n"
    ctl(data, "instance", "set", "web-1", "user.kv", "KEY VALUE form = fine")
    assert ctl(data, "instance", "get", "web-1", "user.kv").stdout == "KEY VALUE form = fine\n"
    shown = json.loads(ctl(data, "instance", "show", "web-1").stdout)
    assert shown["name"] == "web-1" and shown["matchers"] == {"uid": 23001, "gid": 23001}
    assert shown["config"]["user.v3"] == VALUES[3] and shown["state"] == "Started"
    # What the guest reads is byte for byte what was set.
    got = as_user(23001, lambda sync, p: [request(p, "GET", f"/1.0/config/user.v{i}")[2] for i in range(len(VALUES))],
                  guest_server.guest_socket)
    assert [g.decode() for g in got] == VALUES
    ctl(data, "instance", "unset", "web-1", "user.v0", "user.v1")
    assert "user.v0" not in json.loads(ctl(data, "instance", "show", "web-1").stdout)["config"]
    ctl(data, "instance", "device", "add", "web-1", "logs", "type=bucket", "bucket=ostor-service", "access=read-write")
    ctl(data, "instance", "device", "add", "web-1", "nic0", "type=nic", "network=br0")
    assert json.loads(ctl(data, "instance", "show", "web-1").stdout)["devices"] == {
        "logs": {"type": "bucket", "bucket": "ostor-service", "access": "read-write"},
        "nic0": {"type": "nic", "network": "br0"}}
    ctl(data, "instance", "device", "remove", "web-1", "nic0")
    listing = ctl(data, "instance", "list").stdout
    assert "web-1" in listing and "container" in listing and "uid=23001,gid=23001" in listing
    ctl(data, "instance", "delete", "web-1")
    assert "web-1" not in ctl(data, "instance", "list").stdout


def test_refusals_and_exit_codes(guest_server):
    data = guest_server.data_dir
    ctl(data, "instance", "create", "refuse", "--uid", "23002")
    cases = [
        (["instance", "create", "refuse", "--uid", "23003"], 1),               # exists
        (["instance", "create", "other", "--uid", "23002"], 2),                # same matchers as refuse
        (["instance", "create", "nomatch"], 2),                                 # no matcher
        (["instance", "create", "9bad_name", "--uid", "1"], 2),
        (["instance", "show", "absent"], 1),
        (["instance", "delete", "absent"], 1),
        (["instance", "set", "refuse", "security.guestapi=maybe"], 2),
        (["instance", "set", "refuse", "novalue"], 2),
        (["instance", "unset", "refuse", "user.never"], 1),
        (["instance", "device", "add", "refuse", "b", "type=bucket"], 2),       # no bucket=
        (["instance", "device", "add", "refuse", "b", "type=bucket", "bucket=ostor-service", "access=all"], 2),
        (["instance", "device", "add", "refuse", "b", "type=bucket", "bucket=no-such-bucket-x"], 1),
        (["instance", "device", "remove", "refuse", "nope"], 1),
        (["image", "delete", "0" * 64], 1),
    ]
    for args, code in cases:
        result = ctl(data, *args, check=False)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert result.stderr.strip() and not result.stdout.strip(), result.stderr
    ctl(data, "instance", "device", "add", "refuse", "d", "type=disk")
    assert ctl(data, "instance", "device", "add", "refuse", "d", "type=disk", check=False).returncode == 1


def test_offline_on_the_data_directory_then_served(tmp_path):
    data = tmp_path / "data"
    server = GuestServer(data).start()  # creates the volume
    server.stop()
    ctl(data, "instance", "create", "offline", "--uid", "23010")
    ctl(data, "instance", "set", "offline", "user.greeting=hello offline")
    image = tmp_path / "img.bin"
    image.write_bytes(b"image bytes" * 1000)
    fingerprint = ctl(data, "image", "import", str(image)).stdout.strip()
    assert fingerprint == hashlib.sha256(image.read_bytes()).hexdigest()
    assert "offline" in ctl(data, "instance", "list").stdout
    server = GuestServer(data).start()
    try:
        ctl(data, "instance", "set", "offline", "security.guestapi.images=true")
        got = as_user(23010, lambda sync, p, fp: (request(p, "GET", "/1.0/config/user.greeting")[2],
                                                  request(p, "GET", f"/1.0/images/{fp}/export")[2]),
                      server.guest_socket, fingerprint)
        assert got == (b"hello offline", image.read_bytes())
        images = json.loads(ctl(data, "image", "list", "--format", "json").stdout)
        assert [i["fingerprint"] for i in images] == [fingerprint]
    finally:
        server.stop()
