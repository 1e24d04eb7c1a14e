"""S3's default checksum: a PutObject that names no checksum is stored with a CRC64NVME FULL_OBJECT one."""

from __future__ import annotations

import base64
import os
import urllib.request

from awscrt import checksums as crt

from .conftest import raw_request


def crc64nvme_b64(data: bytes) -> str:
    return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()


def _presigned_put(s3, bucket: str, key: str, data: bytes) -> dict[str, str]:
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    request = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
        return {k.lower(): v for k, v in resp.getheaders()}


def test_presigned_put_gets_crc64nvme(s3, bucket):
    data = os.urandom(3 * 1024 * 1024 + 123)  # several hash batches
    headers = _presigned_put(s3, bucket, "plain", data)
    expected = crc64nvme_b64(data)
    assert headers["x-amz-checksum-crc64nvme"] == expected
    assert headers["x-amz-checksum-type"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == expected and head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC64NVME"] == expected and got["ChecksumType"] == "FULL_OBJECT"
    assert "ChecksumCRC32" not in got
    # Without checksum mode the checksum is not sent.
    assert "ChecksumCRC64NVME" not in s3.head_object(Bucket=bucket, Key="plain")


def test_signed_put_without_checksum_headers(server, s3, bucket):
    """A hand-signed PUT as curl --aws-sigv4 sends it: no checksum header, no SDK hint."""
    for key, data in (("small", b"hello world"), ("empty", b"")):
        status, headers, body, _ = raw_request(server, "PUT", f"/{bucket}/{key}", data)
        assert status == 200, body
        assert headers["x-amz-checksum-crc64nvme"] == crc64nvme_b64(data)
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumCRC64NVME"] == crc64nvme_b64(data) and head["ChecksumType"] == "FULL_OBJECT"


def test_boto3_default_crc32_stays_crc32(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="crc32", Body=b"checksummed by the SDK")
    assert "ChecksumCRC32" in put and "ChecksumCRC64NVME" not in put
    got = s3.get_object(Bucket=bucket, Key="crc32", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ChecksumCRC64NVME" not in got and got["ChecksumType"] == "FULL_OBJECT"


def test_explicit_crc64nvme_still_verified(server, s3, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/bad", b"payload",
                                     {"x-amz-checksum-crc64nvme": crc64nvme_b64(b"other")})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    put = s3.put_object(Bucket=bucket, Key="good", Body=b"payload", ChecksumAlgorithm="CRC64NVME")
    assert put["ChecksumCRC64NVME"] == crc64nvme_b64(b"payload")


def test_checksum_algorithm_header_names_the_algorithm(server, s3, bucket):
    status, headers, body, _ = raw_request(server, "PUT", f"/{bucket}/sha", b"payload",
                                           {"x-amz-checksum-algorithm": "SHA256"})
    assert status == 200, body
    assert "x-amz-checksum-sha256" in headers and "x-amz-checksum-crc64nvme" not in headers
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" in head and "ChecksumCRC64NVME" not in head


def test_copy_keeps_default_checksum(s3, bucket):
    data = b"copied " * 1000
    _presigned_put(s3, bucket, "src", data)
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ChecksumCRC64NVME"] == crc64nvme_b64(data)
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == crc64nvme_b64(data) and head["ChecksumType"] == "FULL_OBJECT"
