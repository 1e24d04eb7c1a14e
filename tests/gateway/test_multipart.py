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


# -- checksums, parts, listings, versioned sources, concurrency, restarts ---------------------------
import base64  # noqa: E402
import concurrent.futures  # noqa: E402
import hashlib  # noqa: E402
import signal  # noqa: E402

from awscrt import checksums as crt  # noqa: E402

from tests.gateway.conftest import ServerProcess, make_client  # noqa: E402

MiB = 1024 * 1024
_CRC = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


def _b64crc(algorithm: str, data: bytes) -> str:
    fn, width = _CRC[algorithm]
    return base64.b64encode(fn(data).to_bytes(width, "big")).decode()


def _b64(algorithm: str, data: bytes) -> str:
    if algorithm in _CRC:
        return _b64crc(algorithm, data)
    return base64.b64encode(hashlib.new(algorithm.lower(), data).digest()).decode()


def _upload(s3, bucket, key, datas, **create):
    algorithm = create.get("ChecksumAlgorithm")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for number, data in enumerate(datas, 1):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra)
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        if algorithm:
            part[f"Checksum{algorithm}"] = answer[f"Checksum{algorithm}"]
            assert answer[f"Checksum{algorithm}"] == _b64(algorithm, data)
        parts.append(part)
    return upload_id, parts


@pytest.mark.parametrize("algorithm,kind", [("CRC32", None), ("CRC32C", "COMPOSITE"), ("SHA1", None),
                                            ("SHA256", None), ("CRC32", "FULL_OBJECT"),
                                            ("CRC32C", "FULL_OBJECT"), ("CRC64NVME", None)])
def test_multipart_checksums(s3, bucket, algorithm, kind):
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB + 1), b"end"]
    create = {"ChecksumAlgorithm": algorithm, **({"ChecksumType": kind} if kind else {})}
    upload_id, parts = _upload(s3, bucket, "ck", datas, **create)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    whole = b"".join(datas)
    if algorithm == "CRC64NVME" or kind == "FULL_OBJECT":
        expected, expected_type = _b64crc(algorithm, whole), "FULL_OBJECT"
    else:
        raw = b"".join(base64.b64decode(_b64(algorithm, d)) for d in datas)
        expected, expected_type = f"{_b64(algorithm, raw)}-3", "COMPOSITE"
    assert done[f"Checksum{algorithm}"] == expected and done["ChecksumType"] == expected_type
    # botocore validates a FULL_OBJECT checksum against the body (and skips composite "-N" ones).
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == expected and got["ChecksumType"] == expected_type
    assert got["Body"].read() == whole
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected and head["PartsCount"] == 3
    attrs = s3.get_object_attributes(Bucket=bucket, Key="ck",
                                     ObjectAttributes=["ETag", "Checksum", "ObjectParts", "ObjectSize"])
    assert attrs["ETag"] == done["ETag"].strip('"') and attrs["ObjectSize"] == len(whole)
    assert attrs["Checksum"] == {f"Checksum{algorithm}": expected, "ChecksumType": expected_type}
    assert [(p["PartNumber"], p["Size"], p[f"Checksum{algorithm}"]) for p in attrs["ObjectParts"]["Parts"]] == [
        (n, len(d), _b64(algorithm, d)) for n, d in enumerate(datas, 1)]
    paged = s3.get_object_attributes(Bucket=bucket, Key="ck", ObjectAttributes=["ObjectParts"], MaxParts=1,
                                     PartNumberMarker=1)["ObjectParts"]
    assert [p["PartNumber"] for p in paged["Parts"]] == [2] and paged["IsTruncated"] is True


def test_checksum_errors_on_complete(s3, bucket):
    datas = [os.urandom(5 * MiB), b"tail"]
    upload_id, parts = _upload(s3, bucket, "bad", datas, ChecksumAlgorithm="CRC32")
    with pytest.raises(ClientError) as err:  # a COMPOSITE upload needs every part's checksum
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={
            "Parts": [parts[0], {**parts[1], "ChecksumCRC32": "AAAAAA=="}]})
    assert err.value.response["Error"]["Code"] == "InvalidPart"
    with pytest.raises(ClientError) as err:  # a part with another algorithm than the upload's
        s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload_id, PartNumber=3, Body=b"x",
                       ChecksumAlgorithm="SHA256")
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.create_multipart_upload(Bucket=bucket, Key="bad", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={"Parts": parts})
    # The FULL_OBJECT value a client claims on Complete (x-amz-checksum-crc32) is checked, not the XML's.
    upload_id, parts = _upload(s3, bucket, "full", datas, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    whole = _b64crc("CRC32", b"".join(datas))
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id, ChecksumCRC32="AAAAAA==",
                                     ChecksumType="FULL_OBJECT", MultipartUpload={"Parts": parts})
    assert err.value.response["Error"]["Code"] == "BadDigest"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id, ChecksumCRC32=whole,
                                        ChecksumType="FULL_OBJECT", MpuObjectSize=5 * MiB + 4,
                                        MultipartUpload={"Parts": parts})
    assert done["ChecksumCRC32"] == whole


def test_get_and_head_by_part_number(s3, bucket):
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB + 7), b"last part"]
    upload_id, parts = _upload(s3, bucket, "parts", datas)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    start = 0
    for number, data in enumerate(datas, 1):
        got = s3.get_object(Bucket=bucket, Key="parts", PartNumber=number)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206 and got["PartsCount"] == 3
        assert got["ContentRange"] == f"bytes {start}-{start + len(data) - 1}/{5 * MiB * 2 + 7 + 9}"
        assert got["ETag"] == done["ETag"] and got["Body"].read() == data
        head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=number)
        assert head["ContentLength"] == len(data) and head["PartsCount"] == 3
        start += len(data)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=4)
    assert err.value.response["Error"]["Code"] == "InvalidPartNumber"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=1, Range="bytes=0-1")
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    s3.put_object(Bucket=bucket, Key="single", Body=b"whole")
    got = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert got["Body"].read() == b"whole" and "PartsCount" not in got
    # A range across the part boundary comes back whole.
    got = s3.get_object(Bucket=bucket, Key="parts", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert got["Body"].read() == datas[0][-10:] + datas[1][:10]


def test_list_uploads_and_parts_paging(s3, bucket):
    ids = {}
    for key in ["a/1", "a/2", "b", "b", "c/d"]:
        ids.setdefault(key, []).append(s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    page = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in page["Uploads"]] == ["b", "b"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "c/"]
    walked, kw = [], {}
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **kw)
        walked += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    assert sorted(walked) == sorted((k, u) for k, us in ids.items() for u in us) and len(walked) == 5
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")["Uploads"]] == ["a/1", "a/2"]
    upload_id = ids["c/d"][0]
    for number in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="c/d", UploadId=upload_id, PartNumber=number, Body=b"p%d" % number)
    numbers, marker = [], 0
    while True:
        page = s3.list_parts(Bucket=bucket, Key="c/d", UploadId=upload_id, MaxParts=3, PartNumberMarker=marker)
        numbers += [p["PartNumber"] for p in page["Parts"]]
        if not page["IsTruncated"]:
            break
        marker = page["NextPartNumberMarker"]
    assert numbers == list(range(1, 8))


def test_parallel_part_uploads_from_threads(s3, bucket):
    datas = [os.urandom(5 * MiB + n) for n in range(12)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="par", ChecksumAlgorithm="CRC32")["UploadId"]

    def put(number: int) -> dict:
        answer = s3.upload_part(Bucket=bucket, Key="par", UploadId=upload_id, PartNumber=number,
                                Body=datas[number - 1], ChecksumAlgorithm="CRC32")
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]}

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        parts = list(pool.map(put, reversed(range(1, len(datas) + 1))))
    parts.sort(key=lambda p: p["PartNumber"])
    done = s3.complete_multipart_upload(Bucket=bucket, Key="par", UploadId=upload_id, MultipartUpload={"Parts": parts})
    md5s = b"".join(hashlib.md5(d).digest() for d in datas)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-12"'
    assert s3.get_object(Bucket=bucket, Key="par")["Body"].read() == b"".join(datas)


def test_upload_part_copy_from_versioned_source(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first, second = os.urandom(6 * MiB), os.urandom(6 * MiB)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=first)["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=second)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32")["UploadId"]
    source = {"Bucket": bucket, "Key": "src", "VersionId": v1}
    one = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1, CopySource=source,
                              CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert one["CopySourceVersionId"] == v1
    two = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2,
                              CopySource={"Bucket": bucket, "Key": "src"},
                              CopySourceIfMatch=f'"{hashlib.md5(second).hexdigest()}"')
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=3, CopySource=source,
                            CopySourceIfNoneMatch=f'"{hashlib.md5(first).hexdigest()}"')
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    parts = [{"PartNumber": 1, "ETag": one["CopyPartResult"]["ETag"],
              "ChecksumCRC32": one["CopyPartResult"]["ChecksumCRC32"]},
             {"PartNumber": 2, "ETag": two["CopyPartResult"]["ETag"],
              "ChecksumCRC32": two["CopyPartResult"]["ChecksumCRC32"]}]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert done["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == first[:5 * MiB] + second
    # Clean the versions so the bucket fixture can delete the bucket.
    for listed in s3.list_object_versions(Bucket=bucket).get("Versions", []) + \
            s3.list_object_versions(Bucket=bucket).get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=listed["Key"], VersionId=listed["VersionId"])


def test_upload_survives_server_restart(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        s3 = make_client(server.endpoint)
        s3.create_bucket(Bucket="restart")
        first, second = os.urandom(5 * MiB), os.urandom(1234)
        upload_id = s3.create_multipart_upload(Bucket="restart", Key="k", ChecksumAlgorithm="CRC32")["UploadId"]
        one = s3.upload_part(Bucket="restart", Key="k", UploadId=upload_id, PartNumber=1, Body=first,
                             ChecksumAlgorithm="CRC32")
        # A hard stop: nothing gets a chance to flush more than what was acknowledged.
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server.log.close()
        server.start()
        s3 = make_client(server.endpoint)
        assert [p["PartNumber"] for p in s3.list_parts(Bucket="restart", Key="k", UploadId=upload_id)["Parts"]] == [1]
        two = s3.upload_part(Bucket="restart", Key="k", UploadId=upload_id, PartNumber=2, Body=second,
                             ChecksumAlgorithm="CRC32")
        s3.complete_multipart_upload(Bucket="restart", Key="k", UploadId=upload_id, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": one["ETag"], "ChecksumCRC32": one["ChecksumCRC32"]},
            {"PartNumber": 2, "ETag": two["ETag"], "ChecksumCRC32": two["ChecksumCRC32"]}]})
        assert s3.get_object(Bucket="restart", Key="k")["Body"].read() == first + second
    finally:
        server.stop()
