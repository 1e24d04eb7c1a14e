"""Multipart uploads through boto3's transfer manager and the low-level calls."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError


def test_upload_file_20mib(s3, bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024 + 123))
    s3.upload_file(str(source), bucket, "big/file.bin")
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].endswith('-3"')
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big/file.bin", str(target))
    assert target.read_bytes() == source.read_bytes()
    got = s3.get_object(Bucket=bucket, Key="big/file.bin", Range="bytes=8388600-8388620")
    assert got["Body"].read() == source.read_bytes()[8388600:8388621]


def test_low_level_flow(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    upload_id = upload["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload_id]
    part1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1,
                           Body=b"a" * (5 * 1024 * 1024), ChecksumAlgorithm="CRC32")
    part2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=2, Body=b"tail",
                           ChecksumAlgorithm="CRC32")
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": part1["ETag"], "ChecksumCRC32": part1["ChecksumCRC32"]},
            {"PartNumber": 2, "ETag": part2["ETag"], "ChecksumCRC32": part2["ChecksumCRC32"]}]})
    assert done["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"a" * (5 * 1024 * 1024) + b"tail"


def test_abort_and_errors(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload_id, PartNumber=1, Body=b"x")
    p2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload_id, PartNumber=2, Body=b"y")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    assert err.value.response["Error"]["Code"] == "EntityTooSmall"


def test_upload_part_copy(s3, bucket):
    import os as _os

    source = _os.urandom(6 * 1024 * 1024 + 11)
    s3.put_object(Bucket=bucket, Key="src obj+1", Body=source)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src obj+1"},
                                CopySourceRange=f"bytes=0-{5 * 1024 * 1024 - 1}")
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "src obj+1"})
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]})
    body = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert body == source[:5 * 1024 * 1024] + source
    import pytest as _pytest
    from botocore.exceptions import ClientError as _ClientError

    upload = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    with _pytest.raises(_ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="bad", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src obj+1"}, CopySourceRange="bytes=5-1")
    assert err.value.response["Error"]["Code"] == "InvalidRange"
    s3.abort_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload)
