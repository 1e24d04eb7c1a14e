"""Authentication: wrong keys, anonymous requests, presigned URLs, clock skew, payload hashes."""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.gateway.conftest import ACCESS_KEY, make_client, raw_request


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def test_wrong_secret(server, bucket):
    client = make_client(server.endpoint, secret="wrong" * 8)
    with pytest.raises(ClientError) as err:
        client.list_objects_v2(Bucket=bucket)
    assert code(err.value) == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key(server):
    client = make_client(server.endpoint, access_key="AKIDUNKNOWN000000000")
    with pytest.raises(ClientError) as err:
        client.list_buckets()
    assert code(err.value) == "InvalidAccessKeyId"


def test_anonymous_denied(server, bucket):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.endpoint}/{bucket}")
    assert err.value.code == 403
    body = err.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"<RequestId>" in body and b"<HostId>" in body
    assert err.value.headers["x-amz-request-id"]


def test_presigned_get_and_put(s3, server, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre signed+key"},
                                    ExpiresIn=300)
    request = urllib.request.Request(url, data=b"via presigned put", method="PUT")
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 200
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre signed+key"},
                                    ExpiresIn=300)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"via presigned put"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert err.value.code == 403


def test_presigned_expired(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "old"}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 403
    body = err.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_presigned_too_long(s3, bucket):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=8 * 86400)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 400 and b"AuthorizationQueryParametersError" in err.value.read()


def test_clock_skew(server, bucket):
    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    status, _, body, _ = raw_request(server, "GET", f"/{bucket}", when=skewed)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body


def test_payload_hash_mismatch_stores_nothing(server, s3, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/tampered", b"real body",
                                     payload_hash="0" * 64)
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="tampered")


def test_checksum_mismatch_stores_nothing(server, s3, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/badsum", b"payload",
                                     {"x-amz-checksum-crc32": "AAAAAA=="})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/badmd5", b"payload",
                                     {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/badmd5", b"payload", {"Content-MD5": "nope"})
    assert status == 400 and b"<Code>InvalidDigest</Code>" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_unknown_checksum_algorithm(server, bucket):
    status, _, body, _ = raw_request(server, "PUT", f"/{bucket}/x", b"payload",
                                     {"x-amz-checksum-xxhash64": "AAAAAAAAAAA=",
                                      "x-amz-sdk-checksum-algorithm": "XXHASH64"})
    assert status == 400 and b"<Code>InvalidRequest</Code>" in body


def test_unsigned_payload(server, s3, bucket):
    status, _, _, _ = raw_request(server, "PUT", f"/{bucket}/unsigned", b"unsigned body",
                                  payload_hash="UNSIGNED-PAYLOAD")
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"unsigned body"


def test_access_key_format(server):
    assert len(ACCESS_KEY) == 20
