"""Content-MD5 on PutObject and UploadPart: verified by the engine, the body MD5-hashed once.

The real-server tests go through the session's ``ostor server``; the counting tests run the
gateway in this process (aiohttp's test server over an in-memory engine) so that
``hashlib.md5`` can be watched.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading

import pytest
from aiohttp import ClientSession, web
from botocore.exceptions import ClientError
from multidict import CIMultiDict

from ostor.engine.engine import Engine
from ostor.engine.services import LocalServices
from ostor.gateway.app import Gateway
from ostor.gateway.users import UserStore

from .conftest import ACCESS_KEY, SECRET_KEY, raw_request

BAD_MD5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- real server --------------------------------------------------------------------------------


def test_put_with_correct_content_md5(server, s3, bucket):
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one hash batch
    status, headers, body, _ = raw_request(server, "PUT", f"/{bucket}/good", data, {"Content-MD5": md5_b64(data)})
    assert status == 200, body
    assert headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="good")
    assert got["Body"].read() == data and got["ETag"] == headers["ETag"]
    # boto3 sends Content-MD5 itself when asked (ContentMD5=...).
    put = s3.put_object(Bucket=bucket, Key="boto", Body=b"hello", ContentMD5=md5_b64(b"hello"))
    assert put["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'


def test_put_with_wrong_content_md5_stores_nothing(server, s3, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/bad", os.urandom(200_000), {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="bad")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # Empty bodies are checked too (no data, no guard).
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/empty", b"", {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_wrong_content_md5_keeps_existing_object(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"original")
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/keep", b"replacement", {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    got = s3.get_object(Bucket=bucket, Key="keep")
    assert got["Body"].read() == b"original"
    assert got["ETag"] == f'"{hashlib.md5(b"original").hexdigest()}"'


def test_upload_part_content_md5(server, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    data = os.urandom(5 * 1024 * 1024)
    query = f"/{bucket}/mp?partNumber=1&uploadId={upload}"
    status, _, body, _ = raw_request(server, "PUT", query, data, {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload).get("Parts", []) == []
    status, headers, body, _ = raw_request(server, "PUT", query, data, {"Content-MD5": md5_b64(data)})
    assert status == 200, body
    assert headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # A failed retry of the same part number leaves the stored part alone.
    status, _, body, _ = raw_request(server, "PUT", query, b"other", {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, headers["ETag"], len(data))]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": headers["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == data


def test_malformed_content_md5_is_invalid_digest(server, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/x", b"payload", {"Content-MD5": "AAAA"})
    assert status == 400 and b"<Code>InvalidDigest</Code>" in body


# -- in process: how many bytes go through MD5 ------------------------------------------------


class _CountingMd5:
    """hashlib.md5 that records how many bytes it is fed (from any thread)."""

    fed: list[int] = []
    lock = threading.Lock()

    def __init__(self, data: bytes = b"", **kwargs) -> None:
        self._impl = _REAL_MD5(**kwargs)
        if data:
            self.update(data)

    def update(self, data) -> None:
        with self.lock:
            self.fed.append(len(memoryview(data).cast("B")))
        self._impl.update(data)

    def digest(self) -> bytes:
        return self._impl.digest()

    def hexdigest(self) -> str:
        return self._impl.hexdigest()


_REAL_MD5 = hashlib.md5


@pytest.fixture
async def local_gateway():
    engine = Engine(LocalServices.in_memory(2, 2))
    users = await UserStore.open(engine)
    await users.ensure_admin(ACCESS_KEY, SECRET_KEY)
    await engine.create_bucket("bkt", users.admin().user_id)
    runner = Gateway(engine, users).runner()
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]  # the port
    finally:
        await runner.cleanup()
        await engine.close()


async def _signed(port: int, method: str, path: str, data: bytes, headers: dict[str, str]):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"http://127.0.0.1:{port}{path}"
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    async with ClientSession() as session:
        async with session.request(method, url, data=data, headers=dict(request.headers.items())) as resp:
            return resp.status, CIMultiDict(resp.headers), await resp.read()


@pytest.mark.parametrize("size", [100_000, 5 * 1024 * 1024 + 3])
async def test_put_with_content_md5_hashes_body_once(local_gateway, monkeypatch, size):
    data = os.urandom(size)
    good, wrong = md5_b64(data), BAD_MD5
    monkeypatch.setattr(hashlib, "md5", _CountingMd5)
    monkeypatch.setattr(_CountingMd5, "fed", [])
    status, headers, body = await _signed(local_gateway, "PUT", "/bkt/once", data, {"Content-MD5": good})
    assert status == 200, body
    assert headers["ETag"] == f'"{_REAL_MD5(data).hexdigest()}"'
    assert sum(_CountingMd5.fed) == size
    _CountingMd5.fed.clear()
    status, _, body = await _signed(local_gateway, "PUT", "/bkt/once", data, {"Content-MD5": wrong})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert sum(_CountingMd5.fed) == size


async def test_upload_part_with_content_md5_hashes_body_once(local_gateway, monkeypatch):
    data = os.urandom(5 * 1024 * 1024)
    status, _, body = await _signed(local_gateway, "POST", "/bkt/mp?uploads", b"", {})
    assert status == 200, body
    upload = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    good = md5_b64(data)
    monkeypatch.setattr(hashlib, "md5", _CountingMd5)
    monkeypatch.setattr(_CountingMd5, "fed", [])
    status, headers, body = await _signed(local_gateway, "PUT", f"/bkt/mp?partNumber=1&uploadId={upload}", data,
                                          {"Content-MD5": good})
    assert status == 200, body
    assert headers["ETag"] == f'"{_REAL_MD5(data).hexdigest()}"'
    assert sum(_CountingMd5.fed) == len(data)


async def test_delete_objects_still_checks_content_md5_in_gateway(local_gateway):
    doc = b"<Delete><Object><Key>a</Key></Object></Delete>"
    status, _, body = await _signed(local_gateway, "POST", "/bkt?delete", doc, {"Content-MD5": BAD_MD5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, _, body = await _signed(local_gateway, "POST", "/bkt?delete", doc, {"Content-MD5": md5_b64(doc)})
    assert status == 200, body
