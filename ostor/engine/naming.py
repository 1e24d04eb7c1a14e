"""Bucket and key naming rules (seed, "Bucket and Key Naming Policies")."""

from __future__ import annotations

import ipaddress
import re

from ostor.common.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")
#: Version ids the name servers hand out: 15 bytes in URL-safe base64, or "null".
_VERSION_ID = re.compile(r"null|[A-Za-z0-9_-]{20}")


def validate_bucket_name(name: str) -> None:
    """Raise InvalidBucketName unless ``name`` follows the seed's DNS-style rules.

    3–63 characters; lower-case letters, digits, '.', '-', '_'; starts and ends
    with a letter or digit; a series of such labels separated by single periods;
    not shaped like an IPv4 address (S3 forbids that too).
    """
    def bad(why: str) -> InvalidBucketName:
        return InvalidBucketName(f"The specified bucket is not valid: {why}.", BucketName=name)

    if not 3 <= len(name) <= 63:
        raise bad("a bucket name is 3 to 63 characters long")
    if not all(_LABEL.match(label) for label in name.split(".")):
        raise bad("use lower-case letters, digits, '.', '-' and '_', starting and ending "
                  "each dot-separated part with a letter or digit")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return
    raise bad("a bucket name must not look like an IP address")


def validate_key(key: str) -> None:
    """Raise KeyTooLongError for keys over 1024 UTF-8 bytes, InvalidArgument for empty ones."""
    if not key:
        raise InvalidArgument("An object key must not be empty.")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=str(len(key.encode("utf-8", "surrogatepass"))),
                              MaxSizeAllowed=str(MAX_KEY_BYTES))


def validate_version_id(version_id: str) -> None:
    """Raise InvalidArgument for a version id no name server could have issued (S3 answers 400)."""
    if not _VERSION_ID.fullmatch(version_id):
        raise InvalidArgument("Invalid version id specified", ArgumentName="versionId",
                              ArgumentValue=version_id)
