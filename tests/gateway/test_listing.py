"""ListObjects v1 and v2: prefix, delimiter, pagination, encoding-type=url."""

from __future__ import annotations

KEYS = ["a/1", "a/2", "a/b/3", "b", "c+d", "c d", "c/1", "d%", "e"]


def _fill(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_list_v2_all_and_prefix(s3, bucket):
    _fill(s3, bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == sorted(KEYS)
    result = s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in result["Contents"]] == ["a/1", "a/2", "a/b/3"]
    result = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == ["a/", "c/"]
    assert [o["Key"] for o in result["Contents"]] == ["b", "c d", "c+d", "d%", "e"]
    result = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/", FetchOwner=True)
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == ["a/b/"]
    assert result["Contents"][0]["Owner"]["ID"]


def test_list_v2_pagination(s3, bucket):
    _fill(s3, bucket)
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 5
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(KEYS)
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                              PaginationConfig={"PageSize": 1}))
    seen = [o["Key"] for p in pages for o in p.get("Contents", [])] + \
        [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert sorted(seen) == ["a/", "b", "c d", "c+d", "c/", "d%", "e"]
    result = s3.list_objects_v2(Bucket=bucket, StartAfter="c/1")
    assert [o["Key"] for o in result["Contents"]] == ["d%", "e"]


def test_list_v1_pagination(s3, bucket):
    _fill(s3, bucket)
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(KEYS)
    result = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert result["IsTruncated"] and result["NextMarker"] == "b"
    result = s3.list_objects(Bucket=bucket, Marker="c/1")
    assert [o["Key"] for o in result["Contents"]] == ["d%", "e"]
