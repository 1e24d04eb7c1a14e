"""Multipart uploads: create, upload part, complete, abort, list parts and uploads."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

from aiohttp import web

from ostor.common.errors import InvalidArgument, InvalidRange, InvalidRequest, MalformedXML
from ostor.gateway import checksums
from ostor.gateway.context import RequestContext, xml_response
from ostor.gateway.handlers.batch import check_source_access, parse_copy_source
from ostor.gateway.handlers.buckets import owner_element
from ostor.gateway.handlers.common import (
    check_read_conditions, checksum_headers, metadata_from, storage_class_from, stored_headers_from, write_condition,
    written_version_header,
)
from ostor.gateway.xmlio import child_text, document, element, iso_time, parse, sub
from ostor.nameserver.records import NULL_VERSION, ObjectRecord

MAX_PART_SIZE = 5 * 1024 ** 3
MAX_LISTED = 1000
_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _int_param(ctx: RequestContext, name: str, default: int) -> int:
    text = ctx.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"Provided {name} not an integer or within integer range",
                              ArgumentName=name, ArgumentValue=text) from None


async def create_upload(ctx: RequestContext) -> web.StreamResponse:
    """CreateMultipartUpload: the template keeps the metadata the completed object will carry."""
    algorithm = ctx.headers.get("x-amz-checksum-algorithm")
    algorithm = checksums.check_algorithm(algorithm) if algorithm else None
    template = ObjectRecord(bucket=ctx.bucket, key=ctx.key, content_type=ctx.headers.get("content-type") or None,
                            headers=stored_headers_from(ctx), metadata=metadata_from(ctx.headers),
                            storage_class=storage_class_from(ctx))
    upload = await ctx.engine.create_upload(ctx.bucket, ctx.key, owner=ctx.owner_id, template=template,
                                            checksum_algorithm=algorithm,
                                            checksum_type=ctx.headers.get("x-amz-checksum-type"))
    root = element("InitiateMultipartUploadResult")
    sub(root, "Bucket", ctx.bucket)
    sub(root, "Key", ctx.key)
    sub(root, "UploadId", upload.upload_id)
    headers = {}
    if upload.checksum_algorithm:
        headers = {"x-amz-checksum-algorithm": upload.checksum_algorithm,
                   "x-amz-checksum-type": upload.checksum_type or "COMPOSITE"}
    return xml_response(document(root), headers=headers)


async def _hashing(body: AsyncIterator[bytes], algorithm: str, into: dict[str, str]) -> AsyncIterator[bytes]:
    """Pass ``body`` through, recording its ``algorithm`` checksum in ``into`` when it ends."""
    hasher = checksums.Hasher(algorithm)
    async for chunk in body:
        hasher.update(chunk)
        yield chunk
    into[algorithm] = hasher.b64()


def _part_body(upload, body: AsyncIterator[bytes], spec_algorithm: str | None,
               computed: dict[str, str]) -> AsyncIterator[bytes]:
    """The part's body, hashed with the upload's algorithm when the request did not bring that checksum."""
    algorithm = upload.checksum_algorithm
    if not algorithm:
        return body
    if spec_algorithm is not None and spec_algorithm != algorithm:
        raise InvalidRequest(f"Checksum Type mismatch occurred, expected checksum Type: {algorithm.lower()}, "
                             f"actual checksum Type: {spec_algorithm.lower()}")
    return body if spec_algorithm == algorithm else _hashing(body, algorithm, computed)


async def upload_part(ctx: RequestContext) -> web.StreamResponse:
    """UploadPart: a verified body stored as one part (Content-MD5 is checked by the engine)."""
    ctx.body.check_size(require_length=True, max_size=MAX_PART_SIZE)
    number = _int_param(ctx, "partNumber", 0)
    upload = await ctx.engine.get_upload(ctx.bucket, ctx.key, ctx.query["uploadId"])
    spec = ctx.body.checksum
    body = _part_body(upload, ctx.body.stream(check_md5=False), spec.algorithm if spec else None,
                      ctx.body.computed)
    # body.computed is filled when the stream ends, before the engine builds the part record.
    part = await ctx.engine.upload_part(ctx.bucket, ctx.key, upload.upload_id, number, body,
                                        checksums=ctx.body.computed, upload=upload, content_md5=ctx.body.md5)
    headers = {"ETag": part.etag, **checksum_headers(part.checksums, None)}
    return web.Response(status=200, headers=headers)


async def upload_part_copy(ctx: RequestContext) -> web.StreamResponse:
    """UploadPartCopy: a part made of (a range of) an existing object, read through the engine."""
    src_bucket, src_key, src_version = parse_copy_source(ctx.headers["x-amz-copy-source"])
    number = _int_param(ctx, "partNumber", 0)
    upload = await ctx.engine.get_upload(ctx.bucket, ctx.key, ctx.query["uploadId"])
    await check_source_access(ctx, src_bucket)
    reader = await ctx.engine.get_object(src_bucket, src_key, src_version)
    check_read_conditions(ctx.headers, reader.record, prefix="x-amz-copy-source-if-")
    text = ctx.headers.get("x-amz-copy-source-range")
    if text is not None:
        found = _COPY_RANGE.match(text.strip())
        if found is None:
            raise InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                  "where first and last are the zero-based offsets of the first and last "
                                  "bytes to copy", ArgumentName="x-amz-copy-source-range", ArgumentValue=text)
        first, last = int(found.group(1)), int(found.group(2))
        if first > last or last >= reader.record.size:
            raise InvalidRange(ActualObjectSize=str(reader.record.size), RangeRequested=text)
        reader = dataclasses.replace(reader, start=first, length=last - first + 1, partial=True)
    if reader.length > MAX_PART_SIZE:
        raise InvalidRequest("The specified copy source is larger than the maximum allowable size for a "
                             f"copy source: {MAX_PART_SIZE}")
    computed: dict[str, str] = {}
    body = _part_body(upload, reader.frames(), None, computed)
    part = await ctx.engine.upload_part(ctx.bucket, ctx.key, upload.upload_id, number, body,
                                        checksums=computed, upload=upload)
    root = element("CopyPartResult")
    sub(root, "LastModified", iso_time(part.last_modified_ns))
    sub(root, "ETag", part.etag)
    for alg, value in part.checksums.items():
        sub(root, f"Checksum{alg}", value)
    headers = {}
    if reader.record.version_id and reader.record.version_id != NULL_VERSION:
        headers["x-amz-copy-source-version-id"] = reader.record.version_id
    return xml_response(document(root), headers=headers)


def _claimed_object_checksum(ctx: RequestContext) -> tuple[str, str] | None:
    # On Complete, x-amz-checksum-<alg> is the whole object's checksum, never the XML body's.
    spec = ctx.body.checksum
    ctx.body.checksum = None
    if spec is None or spec.expected is None:
        return None
    return spec.algorithm, spec.expected


async def complete_upload(ctx: RequestContext) -> web.StreamResponse:
    """CompleteMultipartUpload: the listed parts (ETags and any part checksums must match)."""
    claimed_object = _claimed_object_checksum(ctx)
    size_text = ctx.headers.get("x-amz-mp-object-size")
    try:
        object_size = int(size_text) if size_text is not None else None
    except ValueError:
        raise InvalidArgument("x-amz-mp-object-size must be an integer", ArgumentName="x-amz-mp-object-size",
                              ArgumentValue=size_text) from None
    root = parse(await ctx.body.read(ctx.config.max_xml_bytes))
    if root.tag != "CompleteMultipartUpload":
        raise MalformedXML()
    upload_id = ctx.query["uploadId"]
    chosen, claimed = [], {}
    for node in root.iterfind("Part"):
        try:
            number = int(child_text(node, "PartNumber") or "")
        except ValueError:
            raise MalformedXML() from None
        chosen.append((number, child_text(node, "ETag") or ""))
        values = {}
        for child in node:
            if child.tag.startswith("Checksum") and child.tag[8:] in checksums.ALGORITHMS:
                values[child.tag[8:]] = (child.text or "").strip()
        claimed[number] = values
    record = await ctx.engine.complete_upload(ctx.bucket, ctx.key, upload_id, chosen,
                                              condition=write_condition(ctx), part_checksums=claimed,
                                              claimed_checksum=claimed_object, object_size=object_size)
    result = element("CompleteMultipartUploadResult")
    sub(result, "Location", f"/{ctx.bucket}/{ctx.key}")
    sub(result, "Bucket", ctx.bucket)
    sub(result, "Key", ctx.key)
    sub(result, "ETag", record.etag)
    for alg, value in record.checksums.items():
        sub(result, f"Checksum{alg}", value)
    if record.checksum_type:
        sub(result, "ChecksumType", record.checksum_type)
    return xml_response(document(result), headers=await written_version_header(ctx, record))


async def abort_upload(ctx: RequestContext) -> web.StreamResponse:
    """AbortMultipartUpload: parts are freed by GC."""
    await ctx.engine.abort_upload(ctx.bucket, ctx.key, ctx.query["uploadId"])
    return web.Response(status=204)


async def list_parts(ctx: RequestContext) -> web.StreamResponse:
    """ListParts: one page by part number."""
    upload_id = ctx.query["uploadId"]
    marker = _int_param(ctx, "part-number-marker", 0)
    max_parts = min(max(_int_param(ctx, "max-parts", MAX_LISTED), 0), MAX_LISTED)
    upload = await ctx.engine.get_upload(ctx.bucket, ctx.key, upload_id)
    parts, truncated = await ctx.engine.list_parts(ctx.bucket, ctx.key, upload_id, marker, max_parts)
    root = element("ListPartsResult")
    for tag, value in (("Bucket", ctx.bucket), ("Key", ctx.key), ("UploadId", upload_id),
                       ("PartNumberMarker", marker)):
        sub(root, tag, value)
    if parts:
        sub(root, "NextPartNumberMarker", parts[-1].number)
    sub(root, "MaxParts", max_parts)
    sub(root, "IsTruncated", "true" if truncated else "false")
    root.append(owner_element(ctx, upload.owner, "Initiator"))
    root.append(owner_element(ctx, upload.owner))
    sub(root, "StorageClass", upload.template.storage_class)
    if upload.checksum_algorithm:
        sub(root, "ChecksumAlgorithm", upload.checksum_algorithm)
    for part in parts:
        node = sub(root, "Part")
        sub(node, "PartNumber", part.number)
        sub(node, "LastModified", iso_time(part.last_modified_ns))
        sub(node, "ETag", part.etag)
        sub(node, "Size", part.size)
        for alg, value in part.checksums.items():
            sub(node, f"Checksum{alg}", value)
    return xml_response(document(root))


async def list_uploads(ctx: RequestContext) -> web.StreamResponse:
    """ListMultipartUploads: uploads in progress, by key then initiation."""
    q = ctx.query
    max_uploads = min(max(_int_param(ctx, "max-uploads", MAX_LISTED), 0), MAX_LISTED)
    result = await ctx.engine.list_uploads(ctx.bucket, q.get("prefix", ""), q.get("delimiter", ""),
                                           q.get("key-marker", ""), q.get("upload-id-marker", ""), max_uploads)
    root = element("ListMultipartUploadsResult")
    for tag, value in (("Bucket", ctx.bucket), ("KeyMarker", q.get("key-marker", "")),
                       ("UploadIdMarker", q.get("upload-id-marker", "")), ("Prefix", q.get("prefix", ""))):
        sub(root, tag, value)
    if result.truncated:
        sub(root, "NextKeyMarker", result.next_key_marker or "")
        sub(root, "NextUploadIdMarker", result.next_upload_id_marker or "")
    if q.get("delimiter"):
        sub(root, "Delimiter", q["delimiter"])
    sub(root, "MaxUploads", max_uploads)
    sub(root, "IsTruncated", "true" if result.truncated else "false")
    for upload in result.uploads:
        node = sub(root, "Upload")
        sub(node, "Key", upload.key)
        sub(node, "UploadId", upload.upload_id)
        node.append(owner_element(ctx, upload.owner, "Initiator"))
        node.append(owner_element(ctx, upload.owner))
        sub(node, "StorageClass", upload.template.storage_class)
        sub(node, "Initiated", iso_time(upload.initiated_ns))
        if upload.checksum_algorithm:
            sub(node, "ChecksumAlgorithm", upload.checksum_algorithm)
    for prefix in result.common_prefixes:
        sub(sub(root, "CommonPrefixes"), "Prefix", prefix)
    return xml_response(document(root))
