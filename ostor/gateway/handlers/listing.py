"""ListObjects (v1) and ListObjectsV2 over the engine's merged listing."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from aiohttp import web

from ostor.common.errors import InvalidArgument
from ostor.gateway.context import RequestContext, xml_response
from ostor.gateway.handlers.buckets import owner_element
from ostor.gateway.xmlio import document, element, iso_time, sub

MAX_KEYS = 1000


def max_keys_param(ctx: RequestContext) -> int:
    """max-keys (0 … 1000; InvalidArgument when not a non-negative integer)."""
    text = ctx.query.get("max-keys", str(MAX_KEYS))
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument("Provided max-keys not an integer or within integer range",
                              ArgumentName="max-keys", ArgumentValue=text) from None
    if value < 0:
        raise InvalidArgument("Argument max-keys must be an integer between 0 and 2147483647",
                              ArgumentName="max-keys", ArgumentValue=text)
    return min(value, MAX_KEYS)


def encoder(ctx: RequestContext):
    """The key encoder encoding-type asks for (url, or none)."""
    encoding = ctx.query.get("encoding-type")
    if encoding is None:
        return lambda text: text
    if encoding != "url":
        raise InvalidArgument("Invalid Encoding Method specified in Request",
                              ArgumentName="encoding-type", ArgumentValue=encoding)
    # Clients decode with unquote_plus, so '+' and ' ' must both be escaped.
    return lambda text: quote(text, safe="/")


def _contents(ctx: RequestContext, root, objects, encode, with_owner: bool) -> None:
    for record in objects:
        node = sub(root, "Contents")
        sub(node, "Key", encode(record.key))
        sub(node, "LastModified", iso_time(record.last_modified_ns))
        sub(node, "ETag", record.etag)
        for algorithm in record.checksums:
            sub(node, "ChecksumAlgorithm", algorithm)
        if record.checksum_type:
            sub(node, "ChecksumType", record.checksum_type)
        sub(node, "Size", record.size)
        if with_owner:
            node.append(owner_element(ctx, record.owner))
        sub(node, "StorageClass", record.storage_class)


def _prefixes(root, prefixes, encode) -> None:
    for prefix in prefixes:
        sub(sub(root, "CommonPrefixes"), "Prefix", encode(prefix))


async def list_objects(ctx: RequestContext) -> web.StreamResponse:
    """ListObjects (v1): marker paging; NextMarker only with a delimiter, as S3 does."""
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    marker, max_keys, encode = ctx.query.get("marker", ""), max_keys_param(ctx), encoder(ctx)
    result = await ctx.engine.list_objects(ctx.bucket, prefix, delimiter, marker, max_keys)
    root = element("ListBucketResult")
    sub(root, "Name", ctx.bucket)
    sub(root, "Prefix", encode(prefix))
    sub(root, "Marker", encode(marker))
    if result.truncated and delimiter and result.next_marker:
        sub(root, "NextMarker", encode(result.next_marker))
    sub(root, "MaxKeys", max_keys)
    if delimiter:
        sub(root, "Delimiter", encode(delimiter))
    if "encoding-type" in ctx.query:
        sub(root, "EncodingType", "url")
    sub(root, "IsTruncated", "true" if result.truncated else "false")
    _contents(ctx, root, result.objects, encode, True)
    _prefixes(root, result.common_prefixes, encode)
    return xml_response(document(root))


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        raise InvalidArgument("The continuation token provided is incorrect",
                              ArgumentName="continuation-token", ArgumentValue=token) from None


async def list_objects_v2(ctx: RequestContext) -> web.StreamResponse:
    """ListObjectsV2: opaque continuation tokens, start-after, fetch-owner."""
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    max_keys, encode = max_keys_param(ctx), encoder(ctx)
    token = ctx.query.get("continuation-token")
    start_after = ctx.query.get("start-after", "")
    after = _untoken(token) if token is not None else start_after
    result = await ctx.engine.list_objects(ctx.bucket, prefix, delimiter, after, max_keys)
    root = element("ListBucketResult")
    sub(root, "Name", ctx.bucket)
    sub(root, "Prefix", encode(prefix))
    if delimiter:
        sub(root, "Delimiter", encode(delimiter))
    sub(root, "MaxKeys", max_keys)
    if "encoding-type" in ctx.query:
        sub(root, "EncodingType", "url")
    sub(root, "KeyCount", len(result.objects) + len(result.common_prefixes))
    sub(root, "IsTruncated", "true" if result.truncated else "false")
    if token is not None:
        sub(root, "ContinuationToken", token)
    if result.truncated and result.next_marker:
        sub(root, "NextContinuationToken", _token(result.next_marker))
    if start_after:
        sub(root, "StartAfter", encode(start_after))
    _contents(ctx, root, result.objects, encode, ctx.query.get("fetch-owner") == "true")
    _prefixes(root, result.common_prefixes, encode)
    return xml_response(document(root))
