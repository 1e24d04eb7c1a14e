"""Virtual-hosted-style requests (Host: BUCKET.s3.example.com:PORT) next to path-style ones."""

from __future__ import annotations

import socket
import subprocess
import uuid

import pytest

from tests.gateway.conftest import DOMAIN, make_client


@pytest.fixture
def resolve_domain(monkeypatch):
    """Resolve DOMAIN and every BUCKET.DOMAIN to 127.0.0.1 in this process (no DNS needed)."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_virtual_host_boto3(server, s3, resolve_domain, signature):
    vhost = make_client(f"http://{DOMAIN}:{server.port}", signature_version=signature,
                        s3={"addressing_style": "virtual"})
    name = "vh-" + uuid.uuid4().hex[:10]
    vhost.create_bucket(Bucket=name)
    key = "dir/a key+with%odd//chars"
    put = vhost.put_object(Bucket=name, Key=key, Body=b"virtual")
    assert vhost.get_object(Bucket=name, Key=key)["Body"].read() == b"virtual"
    assert vhost.head_object(Bucket=name, Key=key)["ETag"] == put["ETag"]
    assert [o["Key"] for o in vhost.list_objects_v2(Bucket=name)["Contents"]] == [key]
    # The same object path-style.
    assert s3.get_object(Bucket=name, Key=key)["Body"].read() == b"virtual"
    vhost.delete_objects(Bucket=name, Delete={"Objects": [{"Key": key}]})
    vhost.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_virtual_host_presigned_curl(server, s3, bucket, resolve_domain):
    s3.put_object(Bucket=bucket, Key="p", Body=b"curl via vhost")
    vhost = make_client(f"http://{DOMAIN}:{server.port}", s3={"addressing_style": "virtual"})
    url = vhost.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert url.startswith(f"http://{bucket}.{DOMAIN}:{server.port}/p?")
    out = subprocess.run(["curl", "-sf", "--resolve", f"{bucket}.{DOMAIN}:{server.port}:127.0.0.1", url],
                         capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"curl via vhost"
