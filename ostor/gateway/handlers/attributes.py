"""GetObjectAttributes: ETag, Checksum, ObjectParts, StorageClass and ObjectSize without the body."""

from __future__ import annotations

from aiohttp import web

from ostor.common.errors import InvalidArgument, InvalidRequest
from ostor.gateway.context import RequestContext, xml_response
from ostor.gateway.xmlio import document, element, http_time, sub
from ostor.nameserver.records import NULL_VERSION

ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})
MAX_PARTS_LISTED = 1000


def _int_header(ctx: RequestContext, name: str, default: int) -> int:
    text = ctx.headers.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidArgument(f"{name} must be a non-negative integer", ArgumentName=name, ArgumentValue=text)
    return value


async def get_object_attributes(ctx: RequestContext) -> web.StreamResponse:
    """GetObjectAttributes: the attributes x-amz-object-attributes names, for the current or given version."""
    wanted = {a.strip() for a in ctx.headers.get("x-amz-object-attributes", "").split(",") if a.strip()}
    if not wanted:
        raise InvalidRequest("Missing required header for this request: x-amz-object-attributes")
    unknown = wanted - ATTRIBUTES
    if unknown:
        raise InvalidArgument("Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                              ArgumentValue=sorted(unknown)[0])
    max_parts = min(_int_header(ctx, "x-amz-max-parts", MAX_PARTS_LISTED), MAX_PARTS_LISTED)
    marker = _int_header(ctx, "x-amz-part-number-marker", 0)
    record = await ctx.engine.head_object(ctx.bucket, ctx.key, ctx.query.get("versionId") or None)
    root = element("GetObjectAttributesResponse")
    if "ETag" in wanted:
        sub(root, "ETag", record.etag.strip('"'))  # S3 answers the ETag unquoted here
    if "Checksum" in wanted and record.checksums:
        node = sub(root, "Checksum")
        for algorithm, value in record.checksums.items():
            sub(node, f"Checksum{algorithm}", value)
        if record.checksum_type:
            sub(node, "ChecksumType", record.checksum_type)
    if "ObjectParts" in wanted and record.parts:
        node = sub(root, "ObjectParts")
        later = [p for p in record.parts if p.number > marker]
        page = later[:max_parts]
        sub(node, "PartsCount", len(record.parts))
        sub(node, "PartNumberMarker", marker)
        if page:
            sub(node, "NextPartNumberMarker", page[-1].number)
        sub(node, "MaxParts", max_parts)
        sub(node, "IsTruncated", "true" if len(later) > len(page) else "false")
        for part in page:
            child = sub(node, "Part")
            sub(child, "PartNumber", part.number)
            sub(child, "Size", part.size)
            for algorithm, value in part.checksums.items():
                sub(child, f"Checksum{algorithm}", value)
    if "StorageClass" in wanted:
        sub(root, "StorageClass", record.storage_class)
    if "ObjectSize" in wanted:
        sub(root, "ObjectSize", record.size)
    headers = {"Last-Modified": http_time(record.last_modified_ns)}
    if record.version_id and record.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = record.version_id
    return xml_response(document(root), headers=headers)
