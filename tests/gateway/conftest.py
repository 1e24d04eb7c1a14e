"""Fixtures: a real `ostor server` subprocess on a free port and boto3 clients for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

ACCESS_KEY = "OSTORTESTADMIN00KEY1"
SECRET_KEY = "ostor-test-secret-0123456789abcdefghijkl"
#: The session server's virtual-host domain (requests with Host: BUCKET.DOMAIN).
DOMAIN = "s3.example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """An `ostor server` child process; stopped by its PID only."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        env = dict(os.environ, OSTOR_ROOT_ACCESS_KEY=ACCESS_KEY, OSTOR_ROOT_SECRET_KEY=SECRET_KEY)
        self.log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ostor.cli", "server", str(self.data_dir), "--address", f"127.0.0.1:{self.port}",
             *self.args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ostor server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.endpoint + "/minio/health/live", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("ostor server did not become ready")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        finally:
            self.log.close()


def make_client(endpoint: str, access_key: str = ACCESS_KEY, secret: str = SECRET_KEY, **config):
    options = {"signature_version": "s3v4", "s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1},
               **config}
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret, region_name="us-east-1", config=Config(**options))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("ostor") / "data", "--domain", DOMAIN).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server.endpoint)


@pytest.fixture
def bucket(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    # Empty and remove it so the server stays tidy between tests.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


def raw_request(server, method: str, path: str, body=b"", headers: dict | None = None, *,
                payload_hash: str | None = None, access_key: str = ACCESS_KEY, secret: str = SECRET_KEY,
                chunked: bool = False, sign: bool = True, when=None, make_body=None):
    """Send one hand-built request (signed by botocore's SigV4 signer); returns (status, headers, body, auth).

    ``payload_hash`` forces x-amz-content-sha256 (e.g. a STREAMING-* mode); ``chunked`` sends the body
    as a list of pieces with Transfer-Encoding: chunked and no Content-Length.
    """
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class _Signer(S3SigV4Auth):
        def payload(self, request):
            return payload_hash if payload_hash is not None else super().payload(request)

    data = b"" if make_body else b"".join(body) if chunked else body
    request = AWSRequest(method=method, url=server.endpoint + path, data=data, headers=dict(headers or {}))
    if sign:
        from unittest import mock

        signer = _Signer(Credentials(access_key, secret), "s3", "us-east-1")
        if when is None:
            signer.add_auth(request)
        else:
            with mock.patch("botocore.auth.get_current_datetime", return_value=when):
                signer.add_auth(request)
    send_headers = {k: v for k, v in request.headers.items()}
    if make_body is not None:  # a body that depends on the signature (signed aws-chunked)
        body = make_body(send_headers)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            send_headers.pop("Content-Length", None)
            conn.request(method, path, body=iter(body), headers=send_headers, encode_chunked=True)
        else:
            conn.request(method, path, body=data, headers=send_headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read(), request.headers.get("Authorization")
    finally:
        conn.close()
