"""Large plainly framed bodies (read past aiohttp's parser, ostor.gateway.bodyreceiver) are stored exactly."""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import time
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from ostor.gateway.bodyreceiver import DIRECT_MIN_BYTES
from tests.gateway.conftest import raw_request

MiB = 1 << 20


@pytest.fixture(scope="module")
def blob() -> bytes:
    """Larger than the direct-path threshold and not a multiple of the 8 MiB buffer."""
    return random.Random(11).randbytes(DIRECT_MIN_BYTES + 3 * MiB + 12345)


def _presigned_request(s3, method: str, bucket: str, key: str, length: int, extra: str = "") -> bytes:
    url = s3.generate_presigned_url(f"{method.lower()}_object", Params={"Bucket": bucket, "Key": key},
                                    ExpiresIn=600)
    parts = urlsplit(url)
    return (f"{method} {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head of one response, and everything after it until the server closes."""
    data = b""
    sock.settimeout(30)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_signed_put_is_stored_exactly_and_closes_the_connection(server, s3, bucket, blob):
    status, headers, body, _ = raw_request(server, "PUT", f"/{bucket}/big", blob,
                                           {"Content-MD5": base64.b64encode(hashlib.md5(blob).digest()).decode()})
    assert status == 200, body
    assert headers["ETag"] == f'"{hashlib.md5(blob).hexdigest()}"'
    assert headers["Connection"] == "close"
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == blob


def test_boto3_put_and_upload_part(s3, bucket, blob):
    s3.put_object(Bucket=bucket, Key="b3", Body=blob)
    got = s3.get_object(Bucket=bucket, Key="b3", ChecksumMode="ENABLED")
    assert got["Body"].read() == blob
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=blob)["ETag"]
    assert etag == f'"{hashlib.md5(blob).hexdigest()}"'
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == blob


def test_wrong_payload_hash_stores_nothing(server, s3, bucket, blob):
    wrong = hashlib.sha256(b"something else").hexdigest()
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/bad", blob, payload_hash=wrong)
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="bad")
    assert err.value.response["Error"]["Code"] == "404"


def test_wrong_content_md5_keeps_the_old_version(server, s3, bucket, blob):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"old")
    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/keep", blob, {"Content-MD5": md5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"old"


def test_client_gone_mid_body_stores_nothing(server, s3, bucket, blob):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_presigned_request(s3, "PUT", bucket, "gone", len(blob)))
        sock.sendall(blob[:len(blob) // 2])
        time.sleep(0.3)  # the server is reading the body directly by now
    time.sleep(0.5)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="gone")
    assert err.value.response["Error"]["Code"] == "404"
    s3.put_object(Bucket=bucket, Key="after", Body=b"still serving")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"still serving"


def test_bytes_after_the_body_are_not_read(server, s3, bucket, blob):
    """A request pipelined behind a large body is neither stored in it nor served."""
    pipelined = _presigned_request(s3, "PUT", bucket, "second", 5) + b"hello"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_presigned_request(s3, "PUT", bucket, "first", len(blob)) + blob + pipelined)
        head, rest = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"connection: close" in head.lower()
    assert b"HTTP/1.1" not in rest  # one response, then the server closed the connection
    assert s3.get_object(Bucket=bucket, Key="first")["Body"].read() == blob
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="second")


def test_small_bodies_keep_the_connection_alive(server, s3, bucket):
    """Below the threshold nothing changes: two PUTs on one connection."""
    small = b"z" * (DIRECT_MIN_BYTES - 1)
    first = _presigned_request(s3, "PUT", bucket, "s1", len(small)) + small
    second = _presigned_request(s3, "PUT", bucket, "s2", 2, "Connection: close\r\n") + b"ok"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(first + second)
        head, rest = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and rest.count(b"HTTP/1.1 200") == 1
    assert s3.head_object(Bucket=bucket, Key="s1")["ContentLength"] == len(small)
    assert s3.get_object(Bucket=bucket, Key="s2")["Body"].read() == b"ok"
