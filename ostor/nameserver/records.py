"""Typed records a name server stores and returns.

These are the fields of the seed's object metadata ("information on object,
user-defined headers, and ACL") plus the link to the data: a tuple of
segments, each one object on one object server. A plain object has one
segment; a completed multipart object has one per part (the parts table *is*
the object, nothing is copied on completion).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Versioning(str, enum.Enum):
    """Bucket versioning state, as ``list-all-buckets`` prints it."""

    NONE = "none"
    ENABLED = "enabled"
    SUSPENDED = "suspended"


NULL_VERSION = "null"


@dataclass(frozen=True, slots=True)
class Segment:
    """One object on one object server: a contiguous run of the object's bytes."""

    os_id: int
    object_id: bytes
    size: int


@dataclass(slots=True)
class PartRecord:
    """One uploaded part of a multipart upload (and, after completion, of the object)."""

    number: int
    size: int
    etag: str  # quoted MD5 hex, as S3 returns it
    segment: Segment
    last_modified_ns: int = 0
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm name -> base64


@dataclass(slots=True)
class ObjectRecord:
    """One version of one object (or a delete marker)."""

    bucket: str
    key: str
    version_id: str = NULL_VERSION
    delete_marker: bool = False
    size: int = 0
    etag: str = ""  # quoted, e.g. '"d41d8cd98f00b204e9800998ecf8427e"' or '"…-3"'
    last_modified_ns: int = 0
    content_type: str | None = None
    #: System headers S3 stores with the object: content-encoding, content-disposition,
    #: content-language, cache-control, expires, x-amz-website-redirect-location, ...
    headers: dict[str, str] = field(default_factory=dict)
    #: User metadata, the x-amz-meta-* headers without their prefix.
    metadata: dict[str, str] = field(default_factory=dict)
    owner: str = ""
    acl: Any = None  # JSON-able ACL document; None means the owner's private default
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"CRC32": "base64"}
    checksum_type: str | None = None  # "FULL_OBJECT" or "COMPOSITE"
    storage_class: str = "STANDARD"
    tags: dict[str, str] = field(default_factory=dict)
    link: tuple[Segment, ...] = ()
    parts: tuple[PartRecord, ...] = ()  # non-empty only for completed multipart uploads
    #: Set by the name server on answers: whether this is the key's current version.
    is_latest: bool = True


@dataclass(slots=True)
class BucketRecord:
    """A bucket and its configuration."""

    name: str
    owner: str
    created_ns: int
    versioning: Versioning = Versioning.NONE
    location: str = ""
    acl: Any = None
    policy: str | None = None
    #: Other per-bucket configuration documents (tagging, CORS, lifecycle, ...) by name.
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Bumped on every change, so cached copies can tell they are stale (seed, "Data Caching").
    epoch: int = 0

    def __post_init__(self) -> None:
        self.versioning = Versioning(self.versioning)


@dataclass(slots=True)
class UploadRecord:
    """A multipart upload in progress; ``template`` holds the metadata given at initiation."""

    upload_id: str
    bucket: str
    key: str
    initiated_ns: int
    owner: str
    template: ObjectRecord
    checksum_algorithm: str | None = None
    checksum_type: str | None = None


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """Conditional-write preconditions checked atomically with the name commit."""

    if_none_match_star: bool = False  # If-None-Match: * (fail when a current version exists)
    if_match: str | None = None  # If-Match: "etag" (fail unless the current version has it)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listing row: an object version, or a common prefix when ``record`` is None."""

    key: str
    record: ObjectRecord | None = None

    @property
    def is_prefix(self) -> bool:
        """True for a common prefix (CommonPrefixes in S3 listings)."""
        return self.record is None


@dataclass(slots=True)
class ListPage:
    """A sorted page of listing rows from one name server."""

    entries: list[ListEntry]
    truncated: bool


@dataclass(frozen=True, slots=True)
class UploadEntry:
    """One row of a multipart-upload listing, or a common prefix when ``upload`` is None."""

    key: str
    upload: UploadRecord | None = None

    @property
    def is_prefix(self) -> bool:
        """True for a common prefix."""
        return self.upload is None


@dataclass(slots=True)
class UploadPage:
    """A sorted page of multipart uploads from one name server."""

    entries: list[UploadEntry]
    truncated: bool


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What a delete did: the version it removed or the marker it created."""

    version_id: str | None
    delete_marker: bool


@dataclass(frozen=True, slots=True)
class BucketUsage:
    """Counters kept in the same transaction as the names they count."""

    objects: int = 0
    bytes: int = 0
    upload_bytes: int = 0  # parts of uploads not yet completed or aborted

