"""Large GETs (the sendfile path): whole objects, multipart objects and ranges are byte-exact."""

from __future__ import annotations

import hashlib
import http.client
import os
import random

import pytest
from botocore.exceptions import ClientError

from tests.gateway.conftest import raw_request

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def blobs():
    rng = random.Random(7)
    # 9 MiB + 129 KiB + 5 bytes: pieces from several pools (8 MiB, 1 MiB, 128 KiB, 4 KiB ...).
    single = rng.randbytes(9 * MiB + 129 * 1024 + 5)
    parts = [rng.randbytes(5 * MiB + 3), rng.randbytes(5 * MiB + 4097), rng.randbytes(300 * 1024 + 1)]
    return single, parts


def _get(s3, bucket, key, rng=None):
    kwargs = {"Range": rng} if rng else {}
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def test_multi_piece_object(s3, bucket, blobs):
    single, _ = blobs
    s3.put_object(Bucket=bucket, Key="big", Body=single)
    assert hashlib.md5(_get(s3, bucket, "big")).digest() == hashlib.md5(single).digest()
    for first, last in ((0, 0), (1, 300 * 1024), (8 * MiB - 10, 8 * MiB + 10), (300_000, len(single) - 1),
                        (8 * MiB, 9 * MiB + 128 * 1024 + 3)):
        assert _get(s3, bucket, "big", f"bytes={first}-{last}") == single[first:last + 1], (first, last)
    assert _get(s3, bucket, "big", "bytes=-700000") == single[-700000:]
    assert _get(s3, bucket, "big", f"bytes={len(single) - 400000}-") == single[-400000:]


def test_multipart_object(s3, bucket, blobs):
    _, parts = blobs
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = []
    for number, data in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    assert _get(s3, bucket, "mp") == whole
    boundary = len(parts[0])
    for first, last in ((boundary - 300_000, boundary + 300_000), (0, len(whole) - 1),
                        (boundary - 1, len(whole) - 2)):
        assert _get(s3, bucket, "mp", f"bytes={first}-{last}") == whole[first:last + 1]


def test_keep_alive_after_sendfile(server, s3, bucket, blobs):
    """Two large GETs and a small one on one connection: framing stays intact."""
    single, _ = blobs
    s3.put_object(Bucket=bucket, Key="ka", Body=single)
    s3.put_object(Bucket=bucket, Key="small", Body=b"tiny")
    urls = [s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": k}, ExpiresIn=60)
            for k in ("ka", "small", "ka")]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for url, expected in zip(urls, (single, b"tiny", single)):
            conn.request("GET", url.split(str(server.port), 1)[1])
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == expected
    finally:
        conn.close()


def test_conditions_before_range(s3, server, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"0123456789")["ETag"]
    status, _, _, _ = raw_request(server, "GET", f"/{bucket}/c", headers={"Range": "bytes=50-", "If-None-Match": etag})
    assert status == 304
    status, _, _, _ = raw_request(server, "GET", f"/{bucket}/c", headers={"Range": "bytes=50-", "If-Match": '"nope"'})
    assert status == 412
    status, _, body, _ = raw_request(server, "GET", f"/{bucket}/c", headers={"Range": "bytes=50-"})
    assert status == 416 and b"<Code>InvalidRange</Code>" in body
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="c", Range="bytes=10-")


def test_client_disconnect_mid_body(server, s3, bucket, blobs):
    """A client that hangs up during a large body does not disturb the server."""
    single, _ = blobs
    s3.put_object(Bucket=bucket, Key="cut", Body=single)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "cut"}, ExpiresIn=60)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", url.split(str(server.port), 1)[1])
    resp = conn.getresponse()
    resp.read(1000)
    conn.sock.close()
    conn.close()
    assert _get(s3, bucket, "cut", "bytes=5-9") == single[5:10]
    assert os.environ.get("AIOHTTP_NOSENDFILE") is None
