"""Helpers shared by object handlers: stored headers and metadata, response headers, conditions, ranges."""

from __future__ import annotations

import email.utils
import re

from aiohttp import web

from ostor.common.errors import InvalidArgument, MetadataTooLarge, NotImplemented_, PreconditionFailed
from ostor.engine.types import ByteRange
from ostor.gateway import checksums
from ostor.gateway.context import RequestContext
from ostor.gateway.xmlio import http_time
from ostor.nameserver.records import NULL_VERSION, ObjectRecord, Versioning, WriteCondition

#: System headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("content-disposition", "content-language", "cache-control", "expires",
                  "x-amz-website-redirect-location")
#: GetObject query parameters that override response headers (signed requests only).
RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}
META_PREFIX = "x-amz-meta-"
MAX_METADATA_BYTES = 2048
STORAGE_CLASSES = {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def metadata_from(headers) -> dict[str, str]:
    """User metadata (x-amz-meta-*, names lower-cased); MetadataTooLarge past 2 KiB in total."""
    metadata = {name.lower()[len(META_PREFIX):]: value for name, value in headers.items()
                if name.lower().startswith(META_PREFIX)}
    size = sum(len(k.encode()) + len(v.encode("utf-8", "surrogateescape")) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(Size=str(size), MaxSizeAllowed=str(MAX_METADATA_BYTES))
    return metadata


def stored_headers_from(ctx: RequestContext) -> dict[str, str]:
    """The system headers to keep with the object (Content-Encoding without aws-chunked)."""
    headers = {name: ctx.headers[name] for name in STORED_HEADERS if name in ctx.headers}
    if ctx.body.content_encoding:
        headers["content-encoding"] = ctx.body.content_encoding
    return headers


def storage_class_from(ctx: RequestContext) -> str:
    """x-amz-storage-class, checked against the classes S3 knows."""
    value = ctx.headers.get("x-amz-storage-class", "STANDARD")
    if value not in STORAGE_CLASSES:
        raise InvalidArgument("The storage class you specified is not valid",
                              ArgumentName="x-amz-storage-class", ArgumentValue=value)
    return value


def write_condition(ctx: RequestContext) -> WriteCondition | None:
    """If-None-Match: * and If-Match on writes, checked atomically by the name server."""
    none_match = ctx.headers.get("if-none-match")
    match = ctx.headers.get("if-match")
    if none_match is not None and none_match.strip() != "*":
        raise NotImplemented_("If-None-Match on writes only supports '*'.", Header="If-None-Match")
    if none_match is None and match is None:
        return None
    return WriteCondition(if_none_match_star=none_match is not None, if_match=match.strip() if match else None)


async def written_version_header(ctx: RequestContext, record: ObjectRecord) -> dict[str, str]:
    """x-amz-version-id for a write's response: the new version, or "null" in a bucket whose
    versioning is suspended (S3 names the null version there; never-versioned buckets get none)."""
    if record.version_id and record.version_id != NULL_VERSION:
        return {"x-amz-version-id": record.version_id}
    bucket = await ctx.engine.get_bucket(record.bucket)
    if bucket.versioning is not Versioning.NONE:
        return {"x-amz-version-id": NULL_VERSION}
    return {}


def object_headers(record: ObjectRecord, checksum_mode: bool) -> dict[str, str]:
    """Response headers describing an object (GET/HEAD)."""
    headers = {"ETag": record.etag, "Last-Modified": http_time(record.last_modified_ns),
               "Accept-Ranges": "bytes", "Content-Type": record.content_type or "binary/octet-stream"}
    for name, value in record.headers.items():
        headers[name.title() if not name.startswith("x-amz-") else name] = value
    for name, value in record.metadata.items():
        headers[META_PREFIX + name] = value
    if record.version_id and record.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = record.version_id
    if record.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = record.storage_class
    if record.parts:
        headers["x-amz-mp-parts-count"] = str(len(record.parts))
    if checksum_mode:
        headers.update(checksum_headers(record.checksums, record.checksum_type))
    return headers


def checksum_headers(values: dict[str, str], checksum_type: str | None) -> dict[str, str]:
    """x-amz-checksum-<alg> (and -type) headers for stored checksums."""
    headers = {checksums.header_name(alg): value for alg, value in values.items()}
    if headers and checksum_type:
        headers["x-amz-checksum-type"] = checksum_type
    return headers


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


def _http_date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None  # an unparsable date is ignored, as HTTP says


def check_read_conditions(headers, record: ObjectRecord, prefix: str = "if-") -> web.Response | None:
    """Evaluate If-Match/-Unmodified-Since (412) then If-None-Match/-Modified-Since (304), RFC 7232 order.

    ``prefix`` "x-amz-copy-source-if-" checks a copy's source; there every failure is 412.
    """
    modified = record.last_modified_ns // 1_000_000_000
    match, none_match = headers.get(prefix + "match"), headers.get(prefix + "none-match")
    if match is not None:
        if not _etag_matches(match, record.etag):
            raise PreconditionFailed(Condition=prefix.title() + "Match")
    else:
        since = _http_date(headers.get(prefix + "unmodified-since"))
        if since is not None and modified > since:
            raise PreconditionFailed(Condition=prefix.title() + "Unmodified-Since")
    not_modified = False
    if none_match is not None:
        not_modified = _etag_matches(none_match, record.etag)
    else:
        since = _http_date(headers.get(prefix + "modified-since"))
        not_modified = since is not None and modified <= since
    if not_modified:
        if prefix != "if-":
            raise PreconditionFailed(Condition=prefix.title() + "None-Match")
        return web.Response(status=304, headers={"ETag": record.etag,
                                                 "Last-Modified": http_time(record.last_modified_ns)})
    return None


def parse_range(header: str | None) -> ByteRange | None:
    """A single ``bytes=`` range; anything else (several ranges, bad syntax) means the whole object."""
    if not header:
        return None
    found = _RANGE.match(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:
        return ByteRange(suffix=int(last))
    if last and int(last) < int(first):
        return None
    return ByteRange(first=int(first), last=int(last) if last else None)
