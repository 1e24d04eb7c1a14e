"""Single-object operations: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ostor.common.errors import InvalidArgument, InvalidRange, InvalidRequest, NoSuchKey
from ostor.engine.multipart import MAX_PARTS, part_span
from ostor.gateway.body import MAX_OBJECT_SIZE
from ostor.gateway.context import RequestContext
from ostor.gateway.handlers.common import (
    RESPONSE_OVERRIDES, check_read_conditions, checksum_headers, metadata_from, object_headers,
    parse_range, storage_class_from, stored_headers_from, write_condition, written_version_header,
)
from ostor.gateway.zerocopy import SENDFILE_MIN_BYTES, pinned_extents, plain_socket, send_extents
from ostor.nameserver.records import ObjectRecord


def _version(ctx: RequestContext) -> str | None:
    return ctx.query.get("versionId") or None


def _part_number(ctx: RequestContext) -> int | None:
    """The partNumber query parameter (1–10,000), refused together with a Range header, as S3 does."""
    text = ctx.query.get("partNumber")
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                              ArgumentName="partNumber", ArgumentValue=text)
    if "range" in ctx.headers:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
    return number


def _span(ctx: RequestContext, record: ObjectRecord, checksum_mode: bool,
          number: int | None) -> tuple[tuple[int, int] | None, dict[str, str]]:
    """The byte span a Range or partNumber selects (None: everything) and the headers describing it."""
    if number is not None:
        start, length = part_span(record, number)
        headers = object_headers(record, False)
        if checksum_mode and record.checksum_type == "COMPOSITE":
            # A part of a COMPOSITE object carries its own checksum, which the client can verify.
            part = record.parts[number - 1] if record.parts else None
            headers.update(checksum_headers(part.checksums if part else {}, None))
        if record.size == 0:
            return None, headers
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{record.size}"
        return (start, length), headers
    byte_range = parse_range(ctx.headers.get("range"))
    resolved = byte_range.resolve(record.size) if byte_range else None
    if byte_range is not None and resolved is None:
        raise InvalidRange(ActualObjectSize=str(record.size), RangeRequested=ctx.headers["range"])
    # A range's bytes do not have the object's checksum, so it is sent only for whole objects.
    headers = object_headers(record, checksum_mode and resolved is None)
    if resolved is not None:
        headers["Content-Range"] = f"bytes {resolved[0]}-{resolved[0] + resolved[1] - 1}/{record.size}"
    return resolved, headers


async def put_object(ctx: RequestContext) -> web.StreamResponse:
    """PutObject: stream the verified body to the engine; 200 only once data and name are durable.

    Every object gets a FULL_OBJECT checksum: the one the request names, else CRC64NVME (as S3
    does). Content-MD5 is checked by the engine against the MD5 it computes for the ETag.
    """
    ctx.body.check_size(require_length=True)
    metadata = metadata_from(ctx.headers)
    ctx.body.default_checksum()
    # body.computed is filled when the stream ends, before the engine builds the record from it.
    record = await ctx.engine.put_object(
        ctx.bucket, ctx.key, await ctx.body.upload_payload(), owner=ctx.owner_id,
        content_type=ctx.headers.get("content-type") or None, headers=stored_headers_from(ctx),
        metadata=metadata, checksums=ctx.body.computed,
        checksum_type="FULL_OBJECT", storage_class=storage_class_from(ctx),
        condition=write_condition(ctx), max_size=MAX_OBJECT_SIZE, content_md5=ctx.body.md5)
    headers = {"ETag": record.etag, **checksum_headers(record.checksums, record.checksum_type),
               **await written_version_header(ctx, record)}
    return web.Response(status=200, headers=headers)


def _overrides(ctx: RequestContext) -> dict[str, str]:
    found = {header: ctx.query[name] for name, header in RESPONSE_OVERRIDES.items() if name in ctx.query}
    if found and ctx.user is None:
        raise InvalidRequest("Request specific response headers cannot be used for anonymous GET requests.")
    return found


async def get_object(ctx: RequestContext) -> web.StreamResponse:
    """GetObject: conditions (before the range, as RFC 9110 orders them), a single range (206),
    response-* overrides; large plain-HTTP bodies go out with sendfile."""
    overrides = _overrides(ctx)
    number = _part_number(ctx)
    reader = await ctx.engine.get_object(ctx.bucket, ctx.key, _version(ctx))
    record = reader.record
    not_modified = check_read_conditions(ctx.headers, record)
    if not_modified is not None:
        return not_modified
    checksum_mode = ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    span, headers = _span(ctx, record, checksum_mode, number)
    if span is not None:
        reader = dataclasses.replace(reader, start=span[0], length=span[1], partial=True)
    headers.update(overrides)
    status = 206 if reader.partial else 200
    if reader.length < SENDFILE_MIN_BYTES:
        # Small bodies: one pread and one response write (headers and body in a single send).
        return web.Response(status=status, headers=headers, body=await reader.read())
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = reader.length
    writer = await ctx.prepare(response)
    await send_body(ctx.request, response, writer, reader)
    await response.write_eof()
    return response


async def send_body(request: web.BaseRequest, response: web.StreamResponse, writer, reader) -> None:
    """Write the object's bytes: sendfile from the pinned pool-file extents when the range is large and
    the connection is plain, else frame by frame with back-pressure (each write waits for the socket)."""
    if reader.length >= SENDFILE_MIN_BYTES and plain_socket(request) is not None:
        async with pinned_extents(reader) as extents:  # in this process, or leased from the storage process
            if extents is not None and sum(e.length for e in extents) == reader.length:
                await send_extents(request, writer, extents)
                return
    async for frame in reader.frames():
        await response.write(frame)


async def head_object(ctx: RequestContext) -> web.StreamResponse:
    """HeadObject: GetObject's headers, no body."""
    number = _part_number(ctx)
    record = await ctx.engine.head_object(ctx.bucket, ctx.key, _version(ctx))
    not_modified = check_read_conditions(ctx.headers, record)
    if not_modified is not None:
        return not_modified
    checksum_mode = ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    resolved, headers = _span(ctx, record, checksum_mode, number)
    length = record.size if resolved is None else resolved[1]
    headers.update(_overrides(ctx))
    response = web.StreamResponse(status=206 if resolved else 200, headers=headers)
    response.content_length = length
    await ctx.prepare(response)
    await response.write_eof()
    return response


async def delete_object(ctx: RequestContext) -> web.StreamResponse:
    """DeleteObject: 204 whether or not the key existed, as S3 answers.

    x-amz-delete-marker says a marker was created (no versionId) or removed (versionId of a
    marker); x-amz-version-id names the version removed or the marker created, "null" included.
    """
    headers = {}
    try:
        outcome = await ctx.engine.delete_object(ctx.bucket, ctx.key, _version(ctx))
    except NoSuchKey:
        return web.Response(status=204)
    if outcome.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    if outcome.version_id:
        headers["x-amz-version-id"] = outcome.version_id
    return web.Response(status=204, headers=headers)
