"""Multipart uploads: parts are objects of their own; the completed object is the parts table."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from ostor.common.errors import (
    BadDigest, EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartNumber, InvalidPartOrder, InvalidRequest,
    MalformedXML, NoSuchUpload,
)
from ostor.engine import crc
from ostor.engine.listing import merge_pages
from ostor.engine.naming import validate_key
from ostor.engine.objects import Body, now_ns, owed_syncs
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


def checksum_type_for(algorithm: str | None, checksum_type: str | None) -> str | None:
    """The checksum type an upload gets, with S3's defaults and rules (InvalidRequest).

    CRC64NVME exists only as FULL_OBJECT; CRC32/CRC32C default to COMPOSITE and may be
    FULL_OBJECT; SHA1/SHA256 are COMPOSITE only. A type without an algorithm is refused.
    """
    if checksum_type is not None and checksum_type not in ("COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if algorithm is None:
        if checksum_type is not None:
            raise InvalidRequest("The x-amz-checksum-type header can only be used with the "
                                 "x-amz-checksum-algorithm header.")
        return None
    if checksum_type is None:
        return "FULL_OBJECT" if algorithm not in crc.COMPOSITE_ALGORITHMS else "COMPOSITE"
    allowed = crc.FULL_OBJECT_ALGORITHMS if checksum_type == "FULL_OBJECT" else crc.COMPOSITE_ALGORITHMS
    if algorithm not in allowed:
        raise InvalidRequest(f"The {checksum_type} checksum type cannot be used with the "
                             f"{algorithm.lower()} checksum algorithm.")
    return checksum_type


def part_span(record: ObjectRecord, part_number: int) -> tuple[int, int]:
    """``(start, length)`` of part ``part_number`` of an object (InvalidPartNumber past the last).

    An object that was not uploaded in parts has exactly one part, itself.
    """
    if not record.parts:
        if part_number != 1:
            raise InvalidPartNumber(PartNumberRequested=str(part_number), ActualPartCount="1")
        return 0, record.size
    if not 1 <= part_number <= len(record.parts):
        raise InvalidPartNumber(PartNumberRequested=str(part_number), ActualPartCount=str(len(record.parts)))
    start = sum(p.size for p in record.parts[:part_number - 1])
    return start, record.parts[part_number - 1].size


def object_checksum(upload: UploadRecord, parts: list[PartRecord]) -> dict[str, str]:
    """The completed object's checksum from its parts' checksums (empty when a part lacks one)."""
    algorithm = upload.checksum_algorithm
    if not algorithm or any(algorithm not in p.checksums for p in parts):
        return {}
    if upload.checksum_type == "FULL_OBJECT":
        return {algorithm: crc.full_object(algorithm, [(p.checksums[algorithm], p.size) for p in parts])}
    return {algorithm: crc.composite(algorithm, [p.checksums[algorithm] for p in parts])}


class MultipartOps:
    """Initiate, upload parts, complete, abort and list multipart uploads (mixed into Engine)."""

    services: LocalServices

    async def create_upload(self, bucket: str, key: str, *, owner: str = "",
                            template: ObjectRecord | None = None,
                            checksum_algorithm: str | None = None,
                            checksum_type: str | None = None) -> UploadRecord:
        """Start an upload; ``template`` carries the metadata the object will have."""
        validate_key(key)
        checksum_type = checksum_type_for(checksum_algorithm, checksum_type)
        await self.get_bucket(bucket)  # type: ignore[attr-defined]
        template = template or ObjectRecord(bucket=bucket, key=key)
        template.bucket, template.key, template.owner = bucket, key, owner or template.owner
        record = UploadRecord(upload_id="", bucket=bucket, key=key, initiated_ns=now_ns(), owner=owner,
                              template=template, checksum_algorithm=checksum_algorithm,
                              checksum_type=checksum_type)
        return await self._name_server(bucket, key).upload_create(record)  # type: ignore[attr-defined]

    async def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int, body: Body,
                          *, checksums: dict[str, str] | None = None,
                          upload: UploadRecord | None = None,
                          content_md5: bytes | None = None) -> PartRecord:
        """Store one part (replacing an earlier upload of the same number).

        ``checksums`` may be filled while ``body`` streams (the gateway's verified values);
        ``upload``, when the caller already looked it up, spares a second lookup;
        ``content_md5`` the part's expected MD5 (BadDigest, and no part stored, on mismatch).
        """
        if not 1 <= part_number <= MAX_PARTS:
            raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                                  ArgumentName="partNumber", ArgumentValue=str(part_number))
        name_server = self._name_server(bucket, key)  # type: ignore[attr-defined]
        if upload is None:
            await name_server.upload_get(bucket, key, upload_id)
        stored = await self.store_data(bucket, key, body, part=part_number,  # type: ignore[attr-defined]
                                       content_md5=content_md5, defer_sync=True)
        part = PartRecord(number=part_number, size=stored.segment.size, etag=f'"{stored.md5}"',
                          segment=stored.segment, last_modified_ns=now_ns(),
                          checksums=dict(checksums or {}))
        try:
            # The part's data is made durable by the commit that records it.
            await name_server.part_put(bucket, key, upload_id, part, stored.guard, **owed_syncs(stored))
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
                              condition: WriteCondition | None = None,
                              part_checksums: dict[int, dict[str, str]] | None = None,
                              claimed_checksum: tuple[str, str] | None = None,
                              object_size: int | None = None) -> ObjectRecord:
        """Complete with the listed ``(part number, ETag)`` pairs; unlisted parts are freed.

        ``part_checksums`` are the per-part checksums the client listed (each must match the
        stored one; for a COMPOSITE upload each part's is required, as S3 requires it);
        ``claimed_checksum`` an ``(algorithm, value)`` the whole object must have; ``object_size``
        the size it must have (x-amz-mp-object-size). The object's checksum is computed from
        the part checksums alone: COMPOSITE, or FULL_OBJECT by combining the part CRCs.
        """
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
        self._check_part_checksums(upload, selected, part_checksums)
        for part in selected[:-1]:
            if part.size < MIN_PART_SIZE:
                raise EntityTooSmall(ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART_SIZE),
                                     PartNumber=str(part.number), ETag=part.etag)
        size = sum(p.size for p in selected)
        if object_size is not None and object_size != size:
            raise InvalidRequest(f"The provided x-amz-mp-object-size {object_size} does not match the "
                                 f"object size {size}.")
        checksums = object_checksum(upload, selected)
        if claimed_checksum is not None:
            algorithm, value = claimed_checksum
            if algorithm != upload.checksum_algorithm:
                raise InvalidRequest(f"The upload was created using the {upload.checksum_algorithm or 'null'} "
                                     f"checksum algorithm, not {algorithm.lower()}.")
            if checksums.get(algorithm) not in (value, None):
                raise BadDigest(f"The {algorithm} you specified did not match the calculated checksum.")
        bucket_record = await self.get_bucket(bucket)  # type: ignore[attr-defined]
        template = upload.template
        record = ObjectRecord(
            bucket=bucket, key=key, size=size, etag=multipart_etag(selected),
            checksums=checksums, checksum_type=upload.checksum_type if checksums else None,
            content_type=template.content_type, headers=dict(template.headers),
            metadata=dict(template.metadata), owner=upload.owner or template.owner, acl=template.acl,
            storage_class=template.storage_class, tags=dict(template.tags),
            link=tuple(p.segment for p in selected if p.segment.size), parts=tuple(selected),
        )
        return await name_server.upload_complete(bucket, key, upload_id, record,
                                                 bucket_record.versioning, condition)

    @staticmethod
    def _check_part_checksums(upload: UploadRecord, selected: list[PartRecord],
                              claimed: dict[int, dict[str, str]] | None) -> None:
        if claimed is None:
            return
        algorithm = upload.checksum_algorithm
        for part in selected:
            values = claimed.get(part.number, {})
            for name, value in values.items():
                if part.checksums.get(name, value) != value:
                    raise InvalidPart(UploadId=upload.upload_id, PartNumber=str(part.number))
            if algorithm and upload.checksum_type == "COMPOSITE" and algorithm not in values:
                raise InvalidRequest(f"The upload was created using a {algorithm.lower()} checksum. The complete "
                                     "request must include the checksum for each part. It was missing for part "
                                     f"{part.number} in the request.")

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


__all__ = ["MultipartOps", "multipart_etag", "part_span", "checksum_type_for", "NoSuchUpload"]
