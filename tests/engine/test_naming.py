"""Bucket and key naming rules."""

import pytest

from ostor.common.errors import InvalidArgument, InvalidBucketName, KeyTooLongError
from ostor.engine.naming import validate_bucket_name, validate_key


@pytest.mark.parametrize("name", ["abc", "my-bucket", "my_bucket.logs", "a" * 63, "1bucket", "b.1.c"])
def test_good_bucket_names(name):
    validate_bucket_name(name)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "Bucket", "-abc", "abc-", "a..b", "a.-b",
                                  "192.168.1.1", "abc/", "ab c", "ab!c", ".abc"])
def test_bad_bucket_names(name):
    with pytest.raises(InvalidBucketName):
        validate_bucket_name(name)


def test_keys():
    validate_key("é" * 512)  # 1024 bytes
    with pytest.raises(KeyTooLongError):
        validate_key("é" * 512 + "x")
    with pytest.raises(InvalidArgument):
        validate_key("")
