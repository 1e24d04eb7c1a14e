"""`ostor-s3-admin` as a real process against a real `ostor server` (admin socket) and offline."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.gateway.conftest import ServerProcess, make_client

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

VOLUME = "0100000000000001"
BUCKET_ROW = re.compile(r"^(\S+)\s+([0-9a-f]{16})  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\s+"
                        r"(none|enabled|suspended)\s+(\d+)$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("s3admin") / "data").start()
    yield proc
    proc.stop()


def admin(server, *args, check=True):
    """Run ostor-s3-admin on the server's data directory; returns the CompletedProcess."""
    env = dict(os.environ, OSTOR_DATA=str(server.data_dir))
    result = subprocess.run([sys.executable, "-m", "ostor.admin.s3admin", *args, "-V", VOLUME],
                            capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def create_user(server, email=None):
    """create-user; returns (user id, access key, secret) parsed from its output."""
    email = email or f"u{uuid.uuid4().hex[:8]}@example.com"
    out = admin(server, "create-user", "-e", email).stdout
    fields = dict(re.findall(r"^(UserId|KeyPair\[0\]:S3AccessKeyId|KeyPair\[0\]:S3SecretAccessKey):(\S+)$",
                             out, re.M))
    user_id, key, secret = (fields["UserId"], fields["KeyPair[0]:S3AccessKeyId"],
                            fields["KeyPair[0]:S3SecretAccessKey"])
    assert re.fullmatch(r"[0-9a-f]{16}", user_id)
    assert re.fullmatch(user_id + r"[A-Z0-9]{4}", key) and len(secret) == 40
    return user_id, key, secret


def client(server, key, secret):
    return make_client(server.endpoint, key, secret)


def error_code(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"]


def enable_versioning(s3, bucket) -> bool:
    """Turn versioning on through S3 if the gateway implements it yet (its own issue)."""
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotImplemented":
            raise
        return False
    return True


def new_bucket():
    return "adm-" + uuid.uuid4().hex[:12]


def test_admin_socket_is_private(server):
    mode = os.stat(server.data_dir / "admin.sock").st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_new_user_works_and_users_are_isolated(server):
    uid_a, key_a, secret_a = create_user(server)
    _, key_b, secret_b = create_user(server)
    s3a, s3b = client(server, key_a, secret_a), client(server, key_b, secret_b)
    name = new_bucket()
    s3a.create_bucket(Bucket=name)
    s3a.put_object(Bucket=name, Key="k", Body=b"hello")
    assert s3a.get_object(Bucket=name, Key="k")["Body"].read() == b"hello"
    assert [b["Name"] for b in s3a.list_buckets()["Buckets"]] == [name]
    assert error_code(s3b.get_object, Bucket=name, Key="k") == "AccessDenied"
    assert error_code(s3b.list_objects_v2, Bucket=name) == "AccessDenied"
    assert error_code(s3b.put_object, Bucket=name, Key="x", Body=b"x") == "AccessDenied"
    # The service bucket is not listed and not reachable by ordinary users.
    assert error_code(s3a.list_objects_v2, Bucket="ostor-service") == "AccessDenied"
    listed = admin(server, "list-all-buckets").stdout
    assert "ostor-service" not in listed
    table = admin(server, "query-users").stdout.splitlines()
    row = next(line for line in table if line.startswith(uid_a))
    assert row.split() == [uid_a, key_a, "***", row.split()[-1]]
    assert secret_a not in "\n".join(table)
    assert secret_a in admin(server, "query-users", "-a").stdout
    log = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    assert secret_a not in log and secret_b not in log  # secrets never reach the server's output


def test_query_users_xml_and_user_info(server):
    email = f"x{uuid.uuid4().hex[:6]}@example.com"
    uid, key, secret = create_user(server, email)
    doc = admin(server, "query-users", "-X").stdout.strip()
    assert doc.startswith('<?xml version="1.0" encoding="UTF-8"?><QueryUsersResult><Users><User>')
    user = next(u for u in ET.fromstring(doc).iter("User") if u.findtext("Id") == uid)
    assert user.findtext("Email") == email
    assert user.findtext("Keys/KeyPair/S3AccessKeyId") == key
    assert user.find("Keys/KeyPair/S3SecretAccessKey") is None
    with_secrets = ET.fromstring(admin(server, "query-users", "-a", "-X").stdout)
    found = next(u for u in with_secrets.iter("User") if u.findtext("Id") == uid)
    assert found.findtext("Keys/KeyPair/S3SecretAccessKey") == secret
    info = admin(server, "query-user-info", "-e", email).stdout.splitlines()
    assert info == [f"Query user: user id={uid}, user email={email}",
                    f"Key pair[0]: access key id={key},", f"secret access key={secret}"]
    assert admin(server, "query-user-info", "-i", uid).stdout.splitlines() == info
    missing = admin(server, "query-user-info", "-e", "nobody@example.com", check=False)
    assert missing.returncode == 1 and "nobody@example.com" in missing.stderr


def test_disable_user_is_refused_at_once(server):
    uid, key, secret = create_user(server)
    s3 = client(server, key, secret)
    s3.list_buckets()
    assert admin(server, "disable-user", "-i", uid).stdout.strip() == f"Disabled user: user id={uid}"
    assert error_code(s3.list_buckets) == "AccessDenied"
    admin(server, "enable-user", "-i", uid)
    s3.list_buckets()


def test_keys_generate_revoke_and_limit(server):
    uid, key1, secret1 = create_user(server)
    out = admin(server, "gen-access-key", "-i", uid).stdout.splitlines()
    match = re.fullmatch(rf"Generate access key: user id={uid}, access key id=({uid}[A-Z0-9]{{4}}),", out[0])
    assert match and out[1].startswith("secret access key=")
    key2, secret2 = match.group(1), out[1].split("=", 1)[1]
    third = admin(server, "gen-access-key", "-i", uid, check=False)
    assert third.returncode == 1 and "2 active access key pairs" in third.stderr
    s3_old, s3_new = client(server, key1, secret1), client(server, key2, secret2)
    s3_old.list_buckets()
    out = admin(server, "revoke-access-key", "-i", uid, "-k", key1).stdout.strip()
    assert out == f"Revoke access key: user id={uid}, access key id={key1}"
    assert error_code(s3_old.list_buckets) == "InvalidAccessKeyId"
    s3_new.list_buckets()
    again = admin(server, "revoke-access-key", "-i", uid, "-k", key1, check=False)
    assert again.returncode == 1
    admin(server, "revoke-access-key", "-i", uid, "-k", key2)
    row = next(l for l in admin(server, "query-users").stdout.splitlines() if l.startswith(uid))
    assert row.split()[1:3] == ["-", "-"]


def test_delete_user_refused_while_owning_buckets(server):
    uid, key, secret = create_user(server)
    s3 = client(server, key, secret)
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    refused = admin(server, "delete-user", "-i", uid, check=False)
    assert refused.returncode == 1 and name in refused.stderr and refused.stdout == ""
    s3.delete_bucket(Bucket=name)
    assert admin(server, "delete-user", "-i", uid).stdout.strip() == f"Deleted user: user id={uid}"
    assert error_code(s3.list_buckets) == "InvalidAccessKeyId"
    assert admin(server, "query-user-info", "-i", uid, check=False).returncode == 1


def test_bucket_listing_info_and_owner_change(server):
    uid_a, key_a, secret_a = create_user(server)
    uid_b, key_b, secret_b = create_user(server)
    s3a, s3b = client(server, key_a, secret_a), client(server, key_b, secret_b)
    plain, versioned = new_bucket(), new_bucket()
    s3a.create_bucket(Bucket=plain)
    s3a.put_object(Bucket=plain, Key="a", Body=b"x" * 1000)
    s3a.create_bucket(Bucket=versioned)
    state = "enabled" if enable_versioning(s3a, versioned) else "none"
    s3a.create_multipart_upload(Bucket=versioned, Key="big")
    lines = admin(server, "list-all-buckets", "-i", uid_a).stdout.splitlines()
    assert lines[0] == "Total 2 buckets"
    rows = {m.group(1): m.groups() for m in map(BUCKET_ROW.match, lines[1:])}
    assert rows[plain][1:] == (uid_a, rows[plain][2], "none", "1000")
    assert rows[versioned][3] == state
    everything = admin(server, "list-all-buckets").stdout.splitlines()
    assert int(everything[0].split()[1]) == len(everything) - 1 >= 2
    doc = ET.fromstring(admin(server, "list-all-buckets", "-X", "-i", uid_a).stdout)
    sizes = {b.findtext("Name"): (b.findtext("Owner"), b.findtext("Versioning"), b.findtext("TotalSize"))
             for b in doc.iter("Bucket")}
    assert sizes == {plain: (uid_a, "none", "1000"), versioned: (uid_a, state, "0")}
    info = admin(server, "query-bucket-info", "-b", plain).stdout.splitlines()
    assert re.fullmatch(rf"{plain}  {uid_a}  \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z  none {{8}}1000", info[0])
    assert info[1] == ""
    assert info[2] == f"ACL: {uid_a}: FULL_CONTROL"
    out = admin(server, "change-bucket-owner", "-b", plain, "-i", uid_b).stdout.strip()
    assert out == f"Changed owner of the bucket {plain}. New owner {uid_b}"
    assert s3b.get_object(Bucket=plain, Key="a")["Body"].read() == b"x" * 1000
    assert error_code(s3a.get_object, Bucket=plain, Key="a") == "AccessDenied"
    missing = admin(server, "query-bucket-info", "-b", "no-such-bucket-here", check=False)
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr


def test_delete_bucket_removes_everything(server):
    _, key, secret = create_user(server)
    s3 = client(server, key, secret)
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    versioned = enable_versioning(s3, name)
    for i in range(30):
        s3.put_object(Bucket=name, Key=f"d{i % 3}/k{i}", Body=os.urandom(100 + i))
    for i in range(5):
        s3.put_object(Bucket=name, Key="d0/k0", Body=b"v%d" % i)
    s3.delete_object(Bucket=name, Key="d1/k1")
    upload = s3.create_multipart_upload(Bucket=name, Key="mp")
    s3.upload_part(Bucket=name, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 5000)
    result = admin(server, "delete-bucket", "-b", name)
    assert name in result.stdout
    assert error_code(s3.head_bucket, Bucket=name) in ("404", "NoSuchBucket")
    assert name not in admin(server, "list-all-buckets").stdout
    s3.create_bucket(Bucket=name)  # the name is free again and the bucket is empty
    assert s3.list_objects_v2(Bucket=name).get("Contents") is None
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads") is None
    if versioned:
        assert s3.list_object_versions(Bucket=name).get("Versions") is None
    s3.delete_bucket(Bucket=name)


def test_wrong_volume_is_refused(server):
    env = dict(os.environ, OSTOR_DATA=str(server.data_dir))
    result = subprocess.run([sys.executable, "-m", "ostor.admin.s3admin", "query-users", "-V", "0100000000000009"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "0100000000000009" in result.stderr


def _usage(server, *args):
    doc = ET.fromstring(admin(server, "usage", "-X", *args).stdout)
    return {(u.findtext("Bucket"), u.findtext("Operation")):
            (int(u.findtext("Requests")), int(u.findtext("BytesIn")), int(u.findtext("BytesOut")))
            for u in doc.iter("Usage")}


def test_usage_counts_requests_and_bytes_and_survives_restart(server):
    uid, key, secret = create_user(server)
    s3 = client(server, key, secret)
    name = new_bucket()
    s3.create_bucket(Bucket=name)
    body = os.urandom(50_000)
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=body)
    for i in range(2):
        assert s3.get_object(Bucket=name, Key="k0")["Body"].read() == body
    # Large enough for the zero-copy GET and for the PUT body read past aiohttp's parser.
    from ostor.gateway.bodyreceiver import DIRECT_MIN_BYTES
    big = os.urandom(DIRECT_MIN_BYTES + (1 << 20))
    s3.put_object(Bucket=name, Key="big", Body=big)
    assert s3.get_object(Bucket=name, Key="big")["Body"].read() == big
    usage = _usage(server, "-i", uid)
    assert usage[(name, "PutObject")][0] == 4 and usage[(name, "PutObject")][1] >= 3 * len(body) + len(big)
    assert usage[(name, "GetObject")][0] == 3 and usage[(name, "GetObject")][2] >= 2 * len(body) + len(big)
    assert usage[(name, "CreateBucket")][0] == 1
    assert set(_usage(server, "-b", name)) >= {(name, "PutObject"), (name, "GetObject")}
    table = admin(server, "usage", "-i", uid).stdout
    assert "PutObject" in table and "Total" in table
    server.stop()
    server.start()
    after = _usage(server, "-i", uid)
    assert after[(name, "PutObject")] == usage[(name, "PutObject")]
    assert after[(name, "GetObject")] == usage[(name, "GetObject")]


def test_offline_mode_and_restart(server):
    uid, key, secret = create_user(server)
    server.stop()
    assert not (server.data_dir / "admin.sock").exists()
    # A socket left behind by a killed server (nobody listening) means "no server".
    import socket
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(server.data_dir / "admin.sock"))
    stale.close()
    offline = admin(server, "query-users").stdout
    assert uid in offline and key in offline
    uid2, key2, secret2 = create_user(server)
    assert uid2 in admin(server, "query-users").stdout
    server.start()  # replaces the stale socket
    assert stat.S_ISSOCK(os.stat(server.data_dir / "admin.sock").st_mode)
    assert uid2 in admin(server, "query-users").stdout
    client(server, key2, secret2).list_buckets()
    client(server, key, secret).list_buckets()


def test_offline_delete_bucket_with_versions_and_uploads(server):
    """Versions made through the engine (independent of the S3 versioning API), deleted offline."""
    import asyncio

    from ostor.engine.engine import Engine

    uid, _, _ = create_user(server)
    server.stop()
    name = new_bucket()

    async def populate():
        async with await Engine.open(server.data_dir, start_workers=False, create=False) as engine:
            await engine.create_bucket(name, uid)
            await engine.update_bucket(name, versioning="enabled")
            for i in range(4):
                await engine.put_object(name, "same", b"v%d" % i * 1000)
            for i in range(20):
                await engine.put_object(name, f"d{i % 4}/k{i}", os.urandom(10 + i))
            await engine.delete_object(name, "d1/k1")
            upload = await engine.create_upload(name, "mp", owner=uid)
            await engine.upload_part(name, "mp", upload.upload_id, 1, b"p" * 6000)

    asyncio.run(populate())
    lines = admin(server, "list-all-buckets", "-i", uid).stdout.splitlines()
    row = BUCKET_ROW.match(lines[1])
    assert lines[0] == "Total 1 buckets" and row.group(4) == "enabled" and int(row.group(5)) >= 4000 + 6000
    deleted = admin(server, "delete-bucket", "-b", name)
    assert name in deleted.stdout
    assert admin(server, "list-all-buckets", "-i", uid).stdout.splitlines() == ["Total 0 buckets"]
    assert admin(server, "delete-user", "-i", uid).returncode == 0

    async def gone():
        async with await Engine.open(server.data_dir, start_workers=False, create=False) as engine:
            return [b.name for b in await engine.list_buckets()], await engine.bucket_is_empty(name)

    buckets, empty = asyncio.run(gone())
    assert name not in buckets and empty
    server.start()
