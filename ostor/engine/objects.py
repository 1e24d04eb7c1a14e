"""Object operations: the seed's create (guard, stream, name), read, delete, copy."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from ostor.common.errors import (
    BadDigest, EntityTooLarge, GuardMissingError, InvalidRange, MethodNotAllowed, NoSuchKey, RequestTimeout,
)
from ostor.common.frames import FRAME_SIZE, Frame, OneFrame
from ostor.common.hashing import HASH_BATCH_BYTES, DigestPipe
from ostor.engine.guards import GuardPool
from ostor.engine.naming import validate_key, validate_version_id
from ostor.engine.reader import ObjectReader
from ostor.engine.services import NO_DATA_OS_ID, LocalServices
from ostor.engine.types import ByteRange
from ostor.nameserver.records import (
    BucketRecord, DeleteOutcome, ObjectRecord, Segment, WriteCondition,
)
from ostor.objectserver.types import SyncCalls

Body = bytes | bytearray | memoryview | AsyncIterable[bytes] | Iterable[bytes]
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
try:
    # CPython's own MD5 for small bodies: OpenSSL's lets go of the GIL twice per hash (the
    # digest lookup, and the update of 2 KiB or more), each time a chance for the commit
    # thread to take it from the event loop. Larger bodies keep OpenSSL's, which is faster
    # per byte and lets other threads run while it hashes.
    from _md5 import md5 as _builtin_md5
except ImportError:  # a build without it
    _builtin_md5 = hashlib.md5
#: Bodies up to this size are hashed with _builtin_md5.
BUILTIN_MD5_MAX = 64 << 10


async def _chunks(body: Body) -> AsyncIterator[bytes]:
    """Yield the body's chunks whatever shape it came in."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        yield body
    elif hasattr(body, "__aiter__"):
        async for chunk in body:  # type: ignore[union-attr]
            yield chunk
    else:
        for chunk in body:  # type: ignore[union-attr]
            yield chunk


def owed_syncs(stored: StoredData | None) -> dict[str, SyncCalls]:
    """The ``before_commit`` argument for the name-server request naming ``stored``'s data.

    Empty when nothing is owed, so name servers reached through messages (which take no
    such argument) are called exactly as before.
    """
    return {"before_commit": stored.unsynced} if stored is not None and stored.unsynced else {}


class StoredData:
    """The outcome of streaming a body to an object server under a guard."""

    __slots__ = ("segment", "md5", "guard", "unsynced")

    def __init__(self, segment: Segment, md5: str, guard: bytes | None,
                 unsynced: SyncCalls = ()) -> None:
        self.segment = segment
        self.md5 = md5
        self.guard = guard
        #: The fdatasyncs still owed by a deferred create (see store_data's ``defer_sync``).
        self.unsynced = unsynced


class ObjectOps:
    """Put, get, head, delete and copy of single objects (mixed into Engine)."""

    services: LocalServices
    guards: GuardPool
    hash_executor: Executor | None

    def _name_server(self, bucket: str, key: str) -> Any:
        return self.services.name_server(self.services.placement.name_server_for(bucket, key))

    def _services_for(self, bucket: str, key: str, part: int) -> tuple[int, Any, Any]:
        """The object server id, name server and object server that a name's data goes through."""
        os_id = self.services.placement.object_server_for(bucket, key, part)
        return os_id, self._name_server(bucket, key), self.services.object_server(os_id)

    async def store_data(self, bucket: str, key: str, body: Body, *, part: int = 0,
                         max_size: int | None = None, content_md5: bytes | None = None,
                         defer_sync: bool = False) -> StoredData:
        """Stream ``body`` to its object server under a guard taken on the name's NS.

        Returns the segment, the MD5 and the guard the name commit must present.
        An empty body stores nothing (no blocks, no guard). On any failure the
        guard is released so its data is collected. ``content_md5`` (the client's
        Content-MD5, 16 bytes) is checked against the MD5 computed for the ETag,
        so the body is hashed once: BadDigest, and nothing kept, when they differ.
        ``defer_sync`` (for callers that hand the result's ``unsynced`` calls to the name
        server request naming the data: :meth:`commit_name`, ``upload_part``): when this
        process runs the services, the data's fdatasync is left to the name server's
        commit, one durability wait instead of two.
        """
        if isinstance(body, (bytes, bytearray, memoryview)) and 0 < len(body) < HASH_BATCH_BYTES:
            return await self._store_small(bucket, key, body, part, max_size, content_md5, defer_sync)
        chunks = _chunks(body)
        first = b""
        async for chunk in chunks:
            if chunk:
                first = chunk
                break
        if not first:
            if content_md5 is not None and content_md5 != bytes.fromhex(EMPTY_MD5):
                raise BadDigest()
            return StoredData(Segment(NO_DATA_OS_ID, b"", 0), EMPTY_MD5, None)
        os_id, name_server, object_server = self._services_for(bucket, key, part)
        object_id, guard_expires = await self.guards.take(name_server, os_id)
        md5 = hashlib.md5()
        digests = DigestPipe((md5,), self.hash_executor)
        size = 0

        async def frames() -> AsyncIterator[Frame]:
            nonlocal size, guard_expires
            chunk: bytes | None = first
            while chunk is not None:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise EntityTooLarge(MaxSizeAllowed=str(max_size), ProposedSize=str(size))
                await digests.update(chunk)
                view = memoryview(chunk)
                for start in range(0, len(view), FRAME_SIZE):
                    yield Frame(view[start:start + FRAME_SIZE], False)
                if self.guards.needs_renewal(guard_expires):
                    guard_expires = await name_server.renew_guard(object_id)
                chunk = await anext(chunks, None)
            await digests.finish()
            yield Frame(b"", True)

        stream = frames()
        try:
            result = await self._create(object_server, object_id, stream, defer_sync)
            if content_md5 is not None and md5.digest() != content_md5:
                # The data is stored but unnamed: releasing its guard queues it for GC.
                raise BadDigest()
        except BaseException:
            await asyncio.shield(name_server.release_guard(object_id))
            raise
        finally:
            # The consumer stops at the end-of-data frame; closing here spares asyncio's
            # cross-thread finaliser for half-consumed async generators on every put.
            await stream.aclose()
        return StoredData(Segment(os_id, object_id, result.size), md5.hexdigest(), object_id, result.unsynced)

    async def _create(self, object_server: Any, object_id: bytes, frames: AsyncIterator[Frame],
                      defer_sync: bool) -> Any:
        # Only in-process object servers take defer_sync (see store_data).
        if defer_sync and self.services.deferred_data_sync:
            return await object_server.create(object_id, frames, defer_sync=True)
        return await object_server.create(object_id, frames)

    async def _store_small(self, bucket: str, key: str, body: bytes | bytearray | memoryview, part: int,
                           max_size: int | None, content_md5: bytes | None, defer_sync: bool) -> StoredData:
        """store_data for a small in-memory body: hashed at once, checked before anything is written.

        The streaming path's hash pipe, frame generator and guard renewal checks cost more
        than hashing a small body at once; the result is the same, and a wrong Content-MD5
        is refused before a guard is taken or a block written.
        """
        size = len(body)
        if max_size is not None and size > max_size:
            raise EntityTooLarge(MaxSizeAllowed=str(max_size), ProposedSize=str(size))
        md5 = (_builtin_md5 if size <= BUILTIN_MD5_MAX else hashlib.md5)(body)
        if content_md5 is not None and md5.digest() != content_md5:
            raise BadDigest()
        os_id, name_server, object_server = self._services_for(bucket, key, part)
        object_id, _ = await self.guards.take(name_server, os_id)
        try:
            result = await self._create(object_server, object_id, OneFrame(body), defer_sync)
        except BaseException:
            await asyncio.shield(name_server.release_guard(object_id))
            raise
        return StoredData(Segment(os_id, object_id, result.size), md5.hexdigest(), object_id, result.unsynced)

    async def commit_name(self, record: ObjectRecord, stored: StoredData | None,
                          condition: WriteCondition | None = None,
                          bucket: BucketRecord | None = None) -> ObjectRecord:
        """Commit a name for stored data (the seed's second create request to the NS)."""
        if bucket is None:
            bucket = await self.get_bucket(record.bucket)  # type: ignore[attr-defined]
        name_server = self._name_server(record.bucket, record.key)
        guard = stored.guard if stored else None
        try:
            return await name_server.create_name(record, guard, bucket.versioning, condition,
                                                 **owed_syncs(stored))
        except GuardMissingError:
            # The guard expired while the data was being written; its GC entry may have run
            # before the object existed, so delete the (unnamed) data here.
            assert stored is not None
            await self.services.object_server(stored.segment.os_id).delete([stored.segment.object_id])
            raise RequestTimeout("The upload took longer than its guard allows; please retry.") from None
        except BaseException:
            if guard is not None:
                await asyncio.shield(name_server.release_guard(guard))
            raise

    async def put_object(self, bucket: str, key: str, body: Body, *, owner: str = "",
                         content_type: str | None = None, headers: dict[str, str] | None = None,
                         metadata: dict[str, str] | None = None, acl: Any = None,
                         checksums: dict[str, str] | None = None, checksum_type: str | None = None,
                         tags: dict[str, str] | None = None, storage_class: str = "STANDARD",
                         condition: WriteCondition | None = None,
                         max_size: int | None = None, content_md5: bytes | None = None) -> ObjectRecord:
        """Create (or replace) an object; returns the committed record once data and name are durable.

        ``content_md5``: the body's expected MD5 (raw 16 bytes); BadDigest, and the old
        object untouched, when the body does not match.
        """
        validate_key(key)
        bucket_record = await self.get_bucket(bucket)  # type: ignore[attr-defined]
        stored = await self.store_data(bucket, key, body, max_size=max_size, content_md5=content_md5,
                                       defer_sync=True)
        record = ObjectRecord(
            bucket=bucket, key=key, size=stored.segment.size, etag=f'"{stored.md5}"',
            content_type=content_type, headers=dict(headers or {}), metadata=dict(metadata or {}),
            owner=owner, acl=acl, checksums=dict(checksums or {}), checksum_type=checksum_type,
            storage_class=storage_class, tags=dict(tags or {}),
            link=(stored.segment,) if stored.segment.size else (),
        )
        return await self.commit_name(record, stored, condition, bucket_record)

    async def head_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRecord:
        """The record of the current (or given) version; NoSuchKey for a delete marker."""
        if version_id is not None:
            validate_version_id(version_id)
        try:
            record = await self._name_server(bucket, key).lookup(bucket, key, version_id)
        except NoSuchKey:
            await self.get_bucket(bucket)  # type: ignore[attr-defined]  # NoSuchBucket wins
            raise
        if record.delete_marker:
            marker_headers = {"x-amz-delete-marker": "true", "x-amz-version-id": record.version_id}
            if version_id is None:
                raise NoSuchKey(headers=marker_headers, Key=key)
            raise MethodNotAllowed(headers=marker_headers, Method="GET", ResourceType="DeleteMarker")
        return record

    async def get_object(self, bucket: str, key: str, version_id: str | None = None,
                         byte_range: ByteRange | None = None) -> ObjectReader:
        """An ObjectReader for the object, or the requested range of it (InvalidRange if unsatisfiable)."""
        record = await self.head_object(bucket, key, version_id)
        start, length, partial = 0, record.size, False
        if byte_range is not None:
            resolved = byte_range.resolve(record.size)
            if resolved is None:
                raise InvalidRange(ActualObjectSize=str(record.size))
            (start, length), partial = resolved, True
        return ObjectReader(record, start, length, partial, self.services.object_server)

    async def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> DeleteOutcome:
        """Delete a name (the data is freed later by GC) or add a delete marker, as versioning says."""
        if version_id is not None:
            validate_version_id(version_id)
        bucket_record = await self.get_bucket(bucket)  # type: ignore[attr-defined]
        return await self._name_server(bucket, key).delete_name(
            bucket, key, version_id, bucket_record.versioning)

    async def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *,
                          src_version_id: str | None = None, owner: str = "",
                          replace_fields: dict[str, Any] | None = None,
                          condition: WriteCondition | None = None) -> tuple[ObjectRecord, ObjectRecord]:
        """Copy an object's data and metadata; ``replace_fields`` overrides record fields (REPLACE).

        Returns ``(new record, source record)``. The data is copied, never
        shared, so each name owns its blocks and GC needs no reference counts.
        """
        validate_key(dst_key)
        reader = await self.get_object(src_bucket, src_key, src_version_id)
        source = reader.record
        stored = await self.store_data(dst_bucket, dst_key, reader.frames(), defer_sync=True)
        record = replace(
            source, bucket=dst_bucket, key=dst_key, version_id="", owner=owner or source.owner,
            etag=f'"{stored.md5}"', link=(stored.segment,) if stored.segment.size else (),
            parts=(), last_modified_ns=0, is_latest=True, delete_marker=False,
        )
        if source.parts:
            # A copied multipart object becomes one plain object; composite checksums no longer apply.
            record.checksums, record.checksum_type = {}, None
        if replace_fields:
            record = replace(record, **replace_fields)
        return await self.commit_name(record, stored, condition), source


def now_ns() -> int:
    """Wall-clock time in nanoseconds (the engine's timestamps)."""
    return time.time_ns()
