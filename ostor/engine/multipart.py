"""Multipart uploads: parts are objects of their own; the completed object is the parts table."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from ostor.common.errors import (
    EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartOrder, MalformedXML, NoSuchUpload,
)
from ostor.engine.listing import merge_pages
from ostor.engine.naming import validate_key
from ostor.engine.objects import Body, now_ns
from ostor.engine.services import LocalServices
from ostor.engine.types import ListUploadsResult
from ostor.nameserver.records import (
    ObjectRecord, PartRecord, UploadEntry, UploadRecord, WriteCondition,
)

MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * 1024 * 1024


def _unquote(etag: str) -> str:
    return etag.strip().strip('"')


def multipart_etag(parts: list[PartRecord]) -> str:
    """S3's multipart ETag: MD5 of the concatenated binary part MD5s, then ``-N``."""
    digest = hashlib.md5(b"".join(bytes.fromhex(_unquote(p.etag)) for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


class MultipartOps:
    """Initiate, upload parts, complete, abort and list multipart uploads (mixed into Engine)."""

    services: LocalServices

    async def create_upload(self, bucket: str, key: str, *, owner: str = "",
                            template: ObjectRecord | None = None,
                            checksum_algorithm: str | None = None,
                            checksum_type: str | None = None) -> UploadRecord:
        """Start an upload; ``template`` carries the metadata the object will have."""
        validate_key(key)
        await self.get_bucket(bucket)  # type: ignore[attr-defined]
        template = template or ObjectRecord(bucket=bucket, key=key)
        template.bucket, template.key, template.owner = bucket, key, owner or template.owner
        record = UploadRecord(upload_id="", bucket=bucket, key=key, initiated_ns=now_ns(), owner=owner,
                              template=template, checksum_algorithm=checksum_algorithm,
                              checksum_type=checksum_type)
        return await self._name_server(bucket, key).upload_create(record)  # type: ignore[attr-defined]

    async def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int, body: Body,
                          *, checksums: dict[str, str] | None = None) -> PartRecord:
        """Store one part (replacing an earlier upload of the same number)."""
        if not 1 <= part_number <= MAX_PARTS:
            raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                                  ArgumentName="partNumber", ArgumentValue=str(part_number))
        name_server = self._name_server(bucket, key)  # type: ignore[attr-defined]
        await name_server.upload_get(bucket, key, upload_id)
        stored = await self.store_data(bucket, key, body, part=part_number)  # type: ignore[attr-defined]
        part = PartRecord(number=part_number, size=stored.segment.size, etag=f'"{stored.md5}"',
                          segment=stored.segment, last_modified_ns=now_ns(),
                          checksums=dict(checksums or {}))
        try:
            await name_server.part_put(bucket, key, upload_id, part, stored.guard)
        except BaseException:
            if stored.guard is not None:
                await asyncio.shield(name_server.release_guard(stored.guard))
            raise
        return part

    async def list_parts(self, bucket: str, key: str, upload_id: str, marker: int = 0,
                         max_parts: int = 1000) -> tuple[list[PartRecord], bool]:
        """One page of an upload's parts, by part number."""
        return await self._name_server(bucket, key).parts_list(  # type: ignore[attr-defined]
            bucket, key, upload_id, marker, max_parts)

    async def _all_parts(self, bucket: str, key: str, upload_id: str) -> dict[int, PartRecord]:
        parts: dict[int, PartRecord] = {}
        marker = 0
        while True:
            page, truncated = await self.list_parts(bucket, key, upload_id, marker, MAX_PARTS)
            parts.update((p.number, p) for p in page)
            if not truncated or not page:
                return parts
            marker = page[-1].number

    async def complete_upload(self, bucket: str, key: str, upload_id: str,
                              chosen: list[tuple[int, str]], *,
                              condition: WriteCondition | None = None) -> ObjectRecord:
        """Complete with the listed ``(part number, ETag)`` pairs; unlisted parts are freed."""
        if not chosen:
            raise MalformedXML("You must specify at least one part.")
        name_server = self._name_server(bucket, key)  # type: ignore[attr-defined]
        upload = await name_server.upload_get(bucket, key, upload_id)
        available = await self._all_parts(bucket, key, upload_id)
        selected: list[PartRecord] = []
        previous = 0
        for number, etag in chosen:
            if number <= previous:
                raise InvalidPartOrder(UploadId=upload_id)
            previous = number
            part = available.get(number)
            if part is None or (etag and _unquote(etag) != _unquote(part.etag)):
                raise InvalidPart(UploadId=upload_id, PartNumber=str(number), ETag=etag)
            selected.append(part)
        for part in selected[:-1]:
            if part.size < MIN_PART_SIZE:
                raise EntityTooSmall(ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART_SIZE),
                                     PartNumber=str(part.number), ETag=part.etag)
        bucket_record = await self.get_bucket(bucket)  # type: ignore[attr-defined]
        template = upload.template
        record = ObjectRecord(
            bucket=bucket, key=key, size=sum(p.size for p in selected), etag=multipart_etag(selected),
            content_type=template.content_type, headers=dict(template.headers),
            metadata=dict(template.metadata), owner=upload.owner or template.owner, acl=template.acl,
            storage_class=template.storage_class, tags=dict(template.tags),
            link=tuple(p.segment for p in selected if p.segment.size), parts=tuple(selected),
        )
        return await name_server.upload_complete(bucket, key, upload_id, record,
                                                 bucket_record.versioning, condition)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort an upload; its parts are freed by GC."""
        await self._name_server(bucket, key).upload_abort(bucket, key, upload_id)  # type: ignore[attr-defined]

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        """The upload's record (NoSuchUpload)."""
        return await self._name_server(bucket, key).upload_get(bucket, key, upload_id)  # type: ignore[attr-defined]

    async def list_uploads(self, bucket: str, prefix: str = "", delimiter: str = "",
                           key_marker: str = "", upload_id_marker: str = "",
                           max_uploads: int = 1000) -> ListUploadsResult:
        """One page of uploads in progress across name servers, ordered by key then initiation."""
        await self.get_bucket(bucket)  # type: ignore[attr-defined]

        def fetcher(ns: Any):
            return lambda start, limit: ns.uploads_list(bucket, prefix, delimiter, start[0], start[1], limit)

        def resume(entry: UploadEntry) -> tuple[str, str]:
            return (entry.key, "") if entry.upload is None else (entry.key, entry.upload.upload_id)

        page = await merge_pages([fetcher(ns) for ns in self.services.name_servers.values()],
                                 (key_marker, upload_id_marker if key_marker else ""), max_uploads, resume)
        last = page.entries[-1] if page.entries else None
        next_key, next_upload = resume(last) if last else (None, None)
        return ListUploadsResult([e.upload for e in page.entries if e.upload is not None],
                                 [e.key for e in page.entries if e.upload is None], page.truncated,
                                 next_key, next_upload if last and last.upload is not None else None)


__all__ = ["MultipartOps", "multipart_etag", "NoSuchUpload"]
