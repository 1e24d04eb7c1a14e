"""Bucket versioning: Get/PutBucketVersioning and ListObjectVersions (GET Bucket Object versions)."""

from __future__ import annotations

from aiohttp import web

from ostor.common.errors import (
    AccessDenied, IllegalVersioningConfigurationException, InvalidArgument, MalformedXML, NotImplemented_,
)
from ostor.gateway.context import RequestContext, xml_response
from ostor.gateway.handlers.buckets import owner_element
from ostor.gateway.handlers.listing import encoder, max_keys_param
from ostor.gateway.xmlio import child_text, document, element, iso_time, parse, sub
from ostor.nameserver.records import Versioning

#: S3's spelling of each state; a never-versioned bucket has no Status element at all.
_STATUS = {Versioning.ENABLED: "Enabled", Versioning.SUSPENDED: "Suspended"}
_STATE = {"Enabled": Versioning.ENABLED, "Suspended": Versioning.SUSPENDED}


async def get_versioning(ctx: RequestContext) -> web.StreamResponse:
    """GetBucketVersioning: Enabled, Suspended, or an empty configuration for a never-versioned bucket."""
    bucket = await ctx.engine.get_bucket(ctx.bucket)
    root = element("VersioningConfiguration")
    status = _STATUS.get(bucket.versioning)
    if status:
        sub(root, "Status", status)
    return xml_response(document(root))


async def put_versioning(ctx: RequestContext) -> web.StreamResponse:
    """PutBucketVersioning: Enabled or Suspended (never back to unversioned).

    MFA delete cannot be turned on: without x-amz-mfa S3 answers AccessDenied ("Mfa
    Authentication must be used for this request"); ostor has no MFA devices to check a
    token against, so a request that brings one is NotImplemented.
    """
    root = parse(await ctx.body.read(ctx.config.max_xml_bytes))
    if root.tag != "VersioningConfiguration":
        raise MalformedXML()
    status = child_text(root, "Status")
    mfa_delete = child_text(root, "MfaDelete")
    if status is not None and status not in _STATE:
        raise IllegalVersioningConfigurationException(
            "The versioning configuration specified in the request is invalid.")
    if mfa_delete is not None and mfa_delete not in ("Enabled", "Disabled"):
        raise IllegalVersioningConfigurationException(
            "The versioning configuration specified in the request is invalid.")
    await ctx.engine.get_bucket(ctx.bucket)
    if mfa_delete == "Enabled":
        if "x-amz-mfa" not in ctx.headers:
            raise AccessDenied("Mfa Authentication must be used for this request")
        raise NotImplemented_("MFA delete is not supported by ostor.", Header="x-amz-mfa")
    if status is not None:
        await ctx.engine.update_bucket(ctx.bucket, versioning=_STATE[status])
    return web.Response(status=200)


async def list_versions(ctx: RequestContext) -> web.StreamResponse:
    """ListObjectVersions: versions and delete markers, keys ascending and each key's newest first."""
    q = ctx.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, version_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise InvalidArgument("A version-id marker cannot be specified without a key marker.",
                              ArgumentName="version-id-marker", ArgumentValue=version_marker)
    max_keys, encode = max_keys_param(ctx), encoder(ctx)
    result = await ctx.engine.list_versions(ctx.bucket, prefix, delimiter, key_marker, version_marker, max_keys)
    root = element("ListVersionsResult")
    sub(root, "Name", ctx.bucket)
    sub(root, "Prefix", encode(prefix))
    sub(root, "KeyMarker", encode(key_marker))
    sub(root, "VersionIdMarker", version_marker)
    if result.truncated:
        sub(root, "NextKeyMarker", encode(result.next_key_marker or ""))
        if result.next_version_marker:
            sub(root, "NextVersionIdMarker", result.next_version_marker)
    sub(root, "MaxKeys", max_keys)
    if delimiter:
        sub(root, "Delimiter", encode(delimiter))
    if "encoding-type" in q:
        sub(root, "EncodingType", "url")
    sub(root, "IsTruncated", "true" if result.truncated else "false")
    for record in result.versions:
        node = sub(root, "DeleteMarker" if record.delete_marker else "Version")
        sub(node, "Key", encode(record.key))
        sub(node, "VersionId", record.version_id)
        sub(node, "IsLatest", "true" if record.is_latest else "false")
        sub(node, "LastModified", iso_time(record.last_modified_ns))
        if not record.delete_marker:
            sub(node, "ETag", record.etag)
            sub(node, "Size", record.size)
            sub(node, "StorageClass", record.storage_class)
            for algorithm in record.checksums:
                sub(node, "ChecksumAlgorithm", algorithm)
            if record.checksum_type:
                sub(node, "ChecksumType", record.checksum_type)
        node.append(owner_element(ctx, record.owner))
    for common in result.common_prefixes:
        sub(sub(root, "CommonPrefixes"), "Prefix", encode(common))
    return xml_response(document(root))
