"""Bucket operations and listings across every name server."""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Any

from ostor.common.errors import BucketNotEmpty, InvalidArgument
from ostor.engine.listing import merge_pages
from ostor.engine.naming import validate_bucket_name
from ostor.engine.services import LocalServices
from ostor.engine.types import ListObjectsResult, ListVersionsResult
from ostor.nameserver.records import BucketRecord, BucketUsage, ListEntry, Versioning


def _version_resume(entry: ListEntry) -> tuple[str, str]:
    # A common prefix resumes past every version under it; a version resumes right after itself.
    return (entry.key, "") if entry.record is None else (entry.key, entry.record.version_id)


#: How long a cached bucket record is trusted. Changes made through this engine
#: invalidate it at once; changes made by another process are seen within this time
#: (S3 itself documents that bucket configuration changes take time to propagate).
BUCKET_CACHE_SECONDS = 1.0


class BucketOps:
    """Create, find, change, delete and list buckets; list their contents (mixed into Engine)."""

    services: LocalServices
    _bucket_cache: dict[str, tuple[BucketRecord, float]]

    def _bucket_ns(self, bucket: str) -> Any:
        return self.services.name_server(self.services.placement.bucket_name_server(bucket))

    async def create_bucket(self, name: str, owner: str, *, location: str = "", acl: Any = None,
                            attributes: dict[str, Any] | None = None) -> BucketRecord:
        """Create a bucket (InvalidBucketName, BucketAlreadyExists, BucketAlreadyOwnedByYou)."""
        validate_bucket_name(name)
        from ostor.engine.objects import now_ns

        record = BucketRecord(name=name, owner=owner, created_ns=now_ns(), location=location,
                              acl=acl, attributes=dict(attributes or {}))
        self._bucket_cache.pop(name, None)
        return await self._bucket_ns(name).bucket_create(record)

    async def get_bucket(self, name: str) -> BucketRecord:
        """The bucket's record (NoSuchBucket), from a short-lived cache (seed, "Data Caching")."""
        cached = self._bucket_cache.get(name)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        record = await self._bucket_ns(name).bucket_get(name)
        self._bucket_cache[name] = (record, now + BUCKET_CACHE_SECONDS)
        return record

    async def update_bucket(self, name: str, **changes: Any) -> BucketRecord:
        """Change bucket fields; versioning never returns to "none" once enabled (S3)."""
        if "versioning" in changes:
            state = Versioning(changes["versioning"])
            current = await self.get_bucket(name)
            if state is Versioning.NONE and current.versioning is not Versioning.NONE:
                raise InvalidArgument("Versioning cannot be turned off once enabled; suspend it instead.")
            changes["versioning"] = state
        self._bucket_cache.pop(name, None)
        try:
            return await self._bucket_ns(name).bucket_update(name, **changes)
        finally:
            self._bucket_cache.pop(name, None)

    async def list_buckets(self, owner: str | None = None) -> list[BucketRecord]:
        """Every bucket (of ``owner`` if given), sorted by name."""
        per_ns = await asyncio.gather(*(ns.bucket_list(owner) for ns in self.services.name_servers.values()))
        return list(heapq.merge(*per_ns, key=lambda b: b.name))

    async def bucket_is_empty(self, name: str) -> bool:
        """True when no name server holds any version, marker or upload of the bucket."""
        answers = await asyncio.gather(*(ns.bucket_has_content(name)
                                         for ns in self.services.name_servers.values()))
        return not any(answers)

    async def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket (BucketNotEmpty while any version, marker or upload remains)."""
        await self.get_bucket(name)
        if not await self.bucket_is_empty(name):
            raise BucketNotEmpty(BucketName=name)
        self._bucket_cache.pop(name, None)
        try:
            await self._bucket_ns(name).bucket_delete(name)
        finally:
            self._bucket_cache.pop(name, None)

    async def purge_bucket(self, name: str, batch: int = 1000) -> int:
        """Remove everything in a bucket, batch by batch (forced admin delete); returns rows removed."""
        total = 0
        for ns in self.services.name_servers.values():
            while removed := await ns.purge_bucket(name, batch):
                total += removed
        return total

    async def bucket_usage(self, name: str) -> BucketUsage:
        """Objects and bytes in the bucket, plus bytes of unfinished uploads, summed over name servers."""
        parts = await asyncio.gather(*(ns.bucket_usage(name) for ns in self.services.name_servers.values()))
        return BucketUsage(sum(p.objects for p in parts), sum(p.bytes for p in parts),
                           sum(p.upload_bytes for p in parts))

    async def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                           start_after: str = "", max_keys: int = 1000) -> ListObjectsResult:
        """One page of current objects and common prefixes, in UTF-8 byte order, as S3 lists them."""
        await self.get_bucket(bucket)

        def fetcher(ns: Any):
            return lambda after, limit: ns.list_names(bucket, prefix, delimiter, after, limit)

        page = await merge_pages([fetcher(ns) for ns in self.services.name_servers.values()],
                                 start_after, max_keys, lambda e: e.key)
        objects = [e.record for e in page.entries if e.record is not None]
        prefixes = [e.key for e in page.entries if e.record is None]
        return ListObjectsResult(objects, prefixes, page.truncated,
                                 page.entries[-1].key if page.entries else None)

    async def list_versions(self, bucket: str, prefix: str = "", delimiter: str = "",
                            key_marker: str = "", version_id_marker: str = "",
                            max_keys: int = 1000) -> ListVersionsResult:
        """One page of versions and delete markers (keys ascending, newest version first)."""
        await self.get_bucket(bucket)

        def fetcher(ns: Any):
            return lambda start, limit: ns.list_versions(bucket, prefix, delimiter, start[0], start[1], limit)

        page = await merge_pages([fetcher(ns) for ns in self.services.name_servers.values()],
                                 (key_marker, version_id_marker if key_marker else ""),
                                 max_keys, _version_resume)
        versions = [e.record for e in page.entries if e.record is not None]
        prefixes = [e.key for e in page.entries if e.record is None]
        last = page.entries[-1] if page.entries else None
        next_key, next_version = _version_resume(last) if last else (None, None)
        return ListVersionsResult(versions, prefixes, page.truncated, next_key,
                                  next_version if last and last.record is not None else None)
