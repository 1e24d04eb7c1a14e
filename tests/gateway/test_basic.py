"""Buckets and single objects through boto3 at default settings (flexible checksums on)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="life-cycle")
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-cycle")
    assert s3.get_bucket_location(Bucket="life-cycle")["LocationConstraint"] is None
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket="life-cycle")
    assert code(err.value) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    s3.put_object(Bucket="life-cycle", Key="x", Body=b"1")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket="life-cycle")
    assert code(err.value) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle", Key="x")
    s3.delete_bucket(Bucket="life-cycle")
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="life-cycle")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_create_bucket_with_location(s3):
    s3.create_bucket(Bucket="with-location", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    s3.delete_bucket(Bucket="with-location")


def test_missing_bucket_and_key(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert code(err.value) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code(err.value) == "NoSuchKey"
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-id-2"]


@pytest.mark.parametrize("key", ["plain", "with space", "a+b", "100%", "ünïcødé/κλειδί", "//double//slash",
                                 "dir/sub/file.txt", "q?x=1&y", "tilde~#hash"])
def test_put_get_head_delete_keys(s3, bucket, key):
    body = f"data of {key}".encode()
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain",
                        Metadata={"colour": "blue"}, CacheControl="no-cache")
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"colour": "blue"}
    assert got["CacheControl"] == "no-cache"
    assert got.get("ChecksumCRC32") == put.get("ChecksumCRC32")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=key)


def test_empty_and_large_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""
    data = bytes(range(256)) * 12289  # ~3 MiB, not a power of two
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    assert s3.get_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")["Body"].read() == data


def test_ranges(s3, bucket):
    data = b"0123456789" * 100
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert got["Body"].read() == data[10:20]
    assert got["ContentRange"] == "bytes 10-19/1000"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=990-")["Body"].read() == data[990:]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=5000-")
    assert code(err.value) == "InvalidRange"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_conditional_requests(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"nope"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v2"


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="image/png",
                        ResponseContentDisposition="attachment; filename=o.png")
    assert got["ContentType"] == "image/png"
    assert got["ContentDisposition"] == "attachment; filename=o.png"


def test_metadata_too_large(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert code(err.value) == "MetadataTooLarge"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksum_algorithms(s3, bucket, algorithm):
    put = s3.put_object(Bucket=bucket, Key="sum", Body=b"checksummed", ChecksumAlgorithm=algorithm)
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"checksummed"
    assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src key+1", Body=b"copy me", Metadata={"a": "1"}, ContentType="text/x")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src key+1"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me" and got["Metadata"] == {"a": "1"} and got["ContentType"] == "text/x"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src key+1", MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/y")
    got = s3.head_object(Bucket=bucket, Key="dst")
    assert got["Metadata"] == {"b": "2"} and got["ContentType"] == "text/y"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "dst"})
    assert code(err.value) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "dst"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"c": "3"}


def test_delete_objects(s3, bucket):
    keys = [f"del/{i}" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys] + [{"Key": "nope"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(keys + ["nope"])
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert not quiet.get("Deleted") and not quiet.get("Errors")


def test_aborted_upload_is_not_an_error_and_stores_nothing(server, s3, bucket):
    """A client that closes mid-body: nothing stored, no traceback in the log, the server goes on."""
    import socket
    import time
    import urllib.parse

    url = urllib.parse.urlsplit(s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "aborted"}, ExpiresIn=300))
    log_path = server.data_dir.parent / f"server-{server.port}.log"
    before = log_path.stat().st_size
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                     f"Content-Length: {1 << 20}\r\n\r\n".encode() + b"x" * 65536)
    time.sleep(0.5)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="aborted")
    assert err.value.response["Error"]["Code"] == "404"
    s3.put_object(Bucket=bucket, Key="after", Body=b"still serving")
    log = log_path.read_bytes()[before:].decode(errors="replace")
    assert "Error handling request" not in log and "Traceback" not in log
