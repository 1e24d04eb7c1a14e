"""Typed results of engine operations (no HTTP in them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ostor.nameserver.records import ObjectRecord, UploadRecord


@dataclass(frozen=True)
class ByteRange:
    """A requested byte range: ``first``–``last`` inclusive, or the last ``suffix`` bytes.

    ``last`` None means "to the end"; ``suffix`` set means ``bytes=-N``.
    """

    first: int | None = None
    last: int | None = None
    suffix: int | None = None

    def resolve(self, size: int) -> tuple[int, int] | None:
        """Return ``(start, length)`` within an object of ``size`` bytes, or None if unsatisfiable."""
        if self.suffix is not None:
            if self.suffix <= 0 or size == 0:
                return None
            length = min(self.suffix, size)
            return size - length, length
        first = self.first or 0
        if first >= size:
            return None
        last = size - 1 if self.last is None else min(self.last, size - 1)
        if last < first:
            return None
        return first, last - first + 1


@dataclass
class ListObjectsResult:
    """One page of a bucket listing (current versions)."""

    objects: list[ObjectRecord]
    common_prefixes: list[str]
    truncated: bool
    #: The last key or common prefix returned: where the next page starts.
    next_marker: str | None


@dataclass
class ListVersionsResult:
    """One page of a version listing: versions and delete markers, newest first per key."""

    versions: list[ObjectRecord]
    common_prefixes: list[str]
    truncated: bool
    next_key_marker: str | None
    next_version_marker: str | None


@dataclass
class ListUploadsResult:
    """One page of multipart uploads in progress."""

    uploads: list[UploadRecord]
    common_prefixes: list[str]
    truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


@dataclass
class GcReport:
    """What one garbage-collection round did across the volume."""

    guards_expired: int = 0
    objects_deleted: int = 0
    blocks_freed: int = 0
    blocks_moved: int = 0


@dataclass
class PutResult:
    """The committed record and the object's size as the object server stored it."""

    record: ObjectRecord
    replaced: list[str] = field(default_factory=list)
