"""Bucket versioning through real HTTP, checked against Amazon S3's documented results."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.gateway.conftest import raw_request


def _code(err) -> str:
    return err.value.response["Error"]["Code"]


@pytest.fixture
def vbucket(s3):
    """A bucket with versioning enabled; every version and marker is removed afterwards."""
    name = "v-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed})
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


def _versions(s3, bucket, **kw):
    listed = s3.list_object_versions(Bucket=bucket, **kw)
    return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in listed.get("Versions", [])],
            [(m["Key"], m["VersionId"], m["IsLatest"]) for m in listed.get("DeleteMarkers", [])])


def test_versioning_life_cycle(s3, bucket):
    # A new bucket has never been versioned: no Status at all.
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="doc", Body=b"v0")  # the pre-versioning object is the null version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # Overwrite: a new version, the null version stays.
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v2")["VersionId"]
    assert len({v1, v2, "null"}) == 3
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v2"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"v1"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId="null")["Body"].read() == b"v0"
    assert s3.head_object(Bucket=bucket, Key="doc")["VersionId"] == v2
    versions, markers = _versions(s3, bucket)
    assert versions == [("doc", v2, True), ("doc", v1, False), ("doc", "null", False)] and markers == []
    # DELETE without a version id adds a delete marker.
    deleted = s3.delete_object(Bucket=bucket, Key="doc")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="doc")
    assert _code(err) == "NoSuchKey"
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="doc")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    # GET or HEAD of the marker itself is 405 MethodNotAllowed.
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert _code(err) == "MethodNotAllowed"
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    versions, markers = _versions(s3, bucket)
    assert markers == [("doc", marker, True)] and [v[2] for v in versions] == [False, False, False]
    # Deleting the marker restores the previous version.
    restored = s3.delete_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert restored["DeleteMarker"] is True and restored["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v2"
    # Deleting a version permanently removes it; the next newest becomes current.
    gone = s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert gone["VersionId"] == v2 and "DeleteMarker" not in gone
    assert s3.get_object(Bucket=bucket, Key="doc")["VersionId"] == v1
    # Suspend: new writes are the null version, replacing the old null version; v1 survives.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    put = s3.put_object(Bucket=bucket, Key="doc", Body=b"n1")
    assert put["VersionId"] == "null"  # S3 names the null version in a suspended bucket
    s3.put_object(Bucket=bucket, Key="doc", Body=b"n2")
    versions, _ = _versions(s3, bucket)
    assert versions == [("doc", "null", True), ("doc", v1, False)]
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId="null")["Body"].read() == b"n2"
    # A delete under Suspended is a null delete marker that replaces the null version.
    deleted = s3.delete_object(Bucket=bucket, Key="doc")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    versions, markers = _versions(s3, bucket)
    assert versions == [("doc", v1, False)] and markers == [("doc", "null", True)]
    # A bucket with versions or markers left cannot be deleted.
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert _code(err) == "BucketNotEmpty"
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "doc", "VersionId": v1},
                                                         {"Key": "doc", "VersionId": "null"}]})
    assert _versions(s3, bucket) == ([], [])


def test_never_back_to_unversioned_and_mfa_delete(server, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    body = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b'<Status>Disabled</Status></VersioningConfiguration>')
    status, _, text, _ = raw_request(server, "PUT", f"/{bucket}?versioning", body)
    assert status == 400 and b"IllegalVersioningConfigurationException" in text
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    assert _code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=bucket, MFA="arn:aws:iam::1:mfa/root 123456",
                                 VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    assert _code(err) == "NotImplemented"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended", "MFADelete": "Disabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")  # a null marker, which the bucket fixture would not see
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": "null"}]})


def test_list_object_versions_paging_prefix_delimiter(s3, vbucket):
    expected = []
    for key in ["a/1", "a/2", "b", "c d+e", "z/x/y"]:
        ids = [s3.put_object(Bucket=vbucket, Key=key, Body=key.encode() * n)["VersionId"] for n in (1, 2)]
        expected += [(key, ids[1]), (key, ids[0])]
    marker = s3.delete_object(Bucket=vbucket, Key="b")["VersionId"]
    expected.insert(expected.index(("b", [i for k, i in expected if k == "b"][0])), ("b", marker))
    # Walk the whole listing two entries at a time with key-marker/version-id-marker.
    walked, kw = [], {}
    while True:
        page = s3.list_object_versions(Bucket=vbucket, MaxKeys=2, **kw)
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        entries.sort(key=lambda e: ([k for k, _ in expected].index(e["Key"]),
                                    [i for _, i in expected].index(e["VersionId"])))
        walked += [(e["Key"], e["VersionId"]) for e in entries]
        assert len(entries) <= 2
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert walked == expected
    page = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "z/"]
    assert {v["Key"] for v in page["Versions"]} == {"b", "c d+e"} and page["DeleteMarkers"][0]["Key"] == "b"
    page = s3.list_object_versions(Bucket=vbucket, Prefix="a/", KeyMarker="a/1")
    assert [v["Key"] for v in page["Versions"]] == ["a/2", "a/2"]
    # botocore asks for encoding-type=url itself and decodes; asked explicitly, it leaves keys encoded.
    assert s3.list_object_versions(Bucket=vbucket, Prefix="c")["Versions"][0]["Key"] == "c d+e"
    page = s3.list_object_versions(Bucket=vbucket, Prefix="c", EncodingType="url")
    assert page["Versions"][0]["Key"] == "c%20d%2Be" and page["EncodingType"] == "url"
    with pytest.raises(ClientError) as err:
        s3.list_object_versions(Bucket=vbucket, VersionIdMarker="abc")
    assert _code(err) == "InvalidArgument"


def test_copy_from_version_and_batch_delete_with_versions(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"second")
    copied = s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1})
    assert copied["CopySourceVersionId"] == v1 and copied["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"first"
    result = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}]})
    markers = {d["Key"]: d for d in result["Deleted"]}
    assert markers["src"]["DeleteMarker"] is True and markers["src"]["DeleteMarkerVersionId"]
    marker_id = markers["src"]["DeleteMarkerVersionId"]
    result = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "src", "VersionId": marker_id}, {"Key": "src", "VersionId": v1}]})
    by_version = {d["VersionId"]: d for d in result["Deleted"]}
    assert by_version[marker_id]["DeleteMarker"] is True and by_version[marker_id]["DeleteMarkerVersionId"] == marker_id
    assert "DeleteMarker" not in by_version[v1]
    assert s3.get_object(Bucket=vbucket, Key="src")["Body"].read() == b"second"


def test_multipart_completion_into_versioned_bucket(s3, vbucket):
    old = s3.put_object(Bucket=vbucket, Key="mp", Body=b"old")["VersionId"]
    upload = s3.create_multipart_upload(Bucket=vbucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=vbucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"new")["ETag"]
    done = s3.complete_multipart_upload(Bucket=vbucket, Key="mp", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert done["VersionId"] and done["VersionId"] != old
    assert s3.head_object(Bucket=vbucket, Key="mp")["VersionId"] == done["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="mp", VersionId=old)["Body"].read() == b"old"
    attrs = s3.get_object_attributes(Bucket=vbucket, Key="mp", VersionId=old, ObjectAttributes=["ObjectSize"])
    assert attrs["ObjectSize"] == 3 and attrs["VersionId"] == old


def test_malformed_version_id_is_400(s3, bucket):
    import botocore.exceptions
    import pytest as _pytest

    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    with _pytest.raises(botocore.exceptions.ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="k", Body=b"2")  # never versioned: no header
