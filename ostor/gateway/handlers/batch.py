"""CopyObject and DeleteObjects: operations that touch more than one name."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from aiohttp import web

from ostor.common.errors import AccessDenied, InvalidArgument, InvalidRequest, MalformedXML, NoSuchKey, S3Error
from ostor.gateway.body import MAX_OBJECT_SIZE
from ostor.gateway.context import RequestContext, xml_response
from ostor.gateway.handlers.common import (
    check_read_conditions, checksum_headers, metadata_from, storage_class_from, stored_headers_from,
    write_condition, written_version_header,
)
from ostor.gateway.xmlio import child_text, document, element, iso_time, parse, sub
from ostor.nameserver.records import NULL_VERSION

MAX_DELETE_KEYS = 1000
DELETE_CONCURRENCY = 16


def parse_copy_source(header: str) -> tuple[str, str, str | None]:
    """``[/]bucket/key[?versionId=…]`` (URL-encoded) into bucket, key and version."""
    source, _, query = header.partition("?")
    version = None
    if query:
        name, _, value = query.partition("=")
        if name != "versionId":
            raise InvalidArgument("Unsupported copy source parameter.", ArgumentName="x-amz-copy-source",
                                  ArgumentValue=header)
        version = unquote(value)
    bucket, _, key = unquote(source).removeprefix("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                              ArgumentName="x-amz-copy-source", ArgumentValue=header)
    return bucket, key, version


async def check_source_access(ctx: RequestContext, bucket: str) -> None:
    """The requester must be allowed to read the copy source too (owner-only until ACLs/policies)."""
    user = ctx.user
    if user is not None and user.admin:
        return
    if user is None or (await ctx.engine.get_bucket(bucket)).owner != user.user_id:
        raise AccessDenied()


async def copy_object(ctx: RequestContext) -> web.StreamResponse:
    """CopyObject: metadata directive COPY or REPLACE; onto itself only with REPLACE."""
    src_bucket, src_key, src_version = parse_copy_source(ctx.headers["x-amz-copy-source"])
    directive = ctx.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown metadata directive.", ArgumentName="x-amz-metadata-directive",
                              ArgumentValue=directive)
    if (src_bucket, src_key) == (ctx.bucket, ctx.key) and directive == "COPY" \
            and "x-amz-storage-class" not in ctx.headers and src_version is None:
        raise InvalidRequest("This copy request is illegal because it is trying to copy an object to itself "
                             "without changing the object's metadata, storage class, website redirect "
                             "location or encryption attributes.")
    await check_source_access(ctx, src_bucket)
    source = await ctx.engine.head_object(src_bucket, src_key, src_version)
    check_read_conditions(ctx.headers, source, prefix="x-amz-copy-source-if-")
    if source.size > MAX_OBJECT_SIZE:
        raise InvalidRequest("The specified copy source is larger than the maximum allowable size for a "
                             f"copy source: {MAX_OBJECT_SIZE}")
    fields: dict = {}
    if directive == "REPLACE":
        fields = {"content_type": ctx.headers.get("content-type") or None,
                  "headers": stored_headers_from(ctx), "metadata": metadata_from(ctx.headers)}
    if "x-amz-storage-class" in ctx.headers:
        fields["storage_class"] = storage_class_from(ctx)
    record, source = await ctx.engine.copy_object(
        src_bucket, src_key, ctx.bucket, ctx.key, src_version_id=src_version, owner=ctx.owner_id,
        replace_fields=fields or None, condition=write_condition(ctx))
    root = element("CopyObjectResult")
    sub(root, "LastModified", iso_time(record.last_modified_ns))
    sub(root, "ETag", record.etag)
    for algorithm, value in record.checksums.items():
        sub(root, f"Checksum{algorithm}", value)
    headers = dict(checksum_headers(record.checksums, record.checksum_type))
    if source.version_id and source.version_id != NULL_VERSION:
        headers["x-amz-copy-source-version-id"] = source.version_id
    headers.update(await written_version_header(ctx, record))
    return xml_response(document(root), headers=headers)


async def delete_objects(ctx: RequestContext) -> web.StreamResponse:
    """DeleteObjects: up to 1000 keys, per-key errors, Quiet; Content-MD5 or a flexible checksum."""
    if ctx.body.md5 is None and ctx.body.checksum is None:
        raise InvalidRequest("Missing required header for this request: Content-MD5")
    root = parse(await ctx.body.read(ctx.config.max_xml_bytes))
    if root.tag != "Delete":
        raise MalformedXML()
    quiet = (child_text(root, "Quiet", "false") or "").strip().lower() == "true"
    targets = []
    for node in root.findall("Object"):
        key = child_text(node, "Key")
        if not key:
            raise MalformedXML()
        targets.append((key, child_text(node, "VersionId") or None))
    if not targets or len(targets) > MAX_DELETE_KEYS:
        raise MalformedXML()
    await ctx.engine.get_bucket(ctx.bucket)
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def one(key: str, version: str | None):
        async with limit:
            try:
                return await ctx.engine.delete_object(ctx.bucket, key, version)
            except NoSuchKey:
                return None
            except S3Error as exc:
                return exc

    outcomes = await asyncio.gather(*(one(k, v) for k, v in targets))
    result = element("DeleteResult")
    for (key, version), outcome in zip(targets, outcomes):
        if isinstance(outcome, S3Error):
            node = sub(result, "Error")
            sub(node, "Key", key)
            if version:
                sub(node, "VersionId", version)
            sub(node, "Code", outcome.code)
            sub(node, "Message", outcome.message)
            continue
        if quiet:
            continue
        node = sub(result, "Deleted")
        sub(node, "Key", key)
        if version:
            sub(node, "VersionId", version)
        if outcome is not None and outcome.delete_marker:
            sub(node, "DeleteMarker", "true")
            sub(node, "DeleteMarkerVersionId", outcome.version_id)
    return xml_response(document(result))
