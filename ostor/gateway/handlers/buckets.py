"""Service and bucket operations: ListBuckets, Create/Head/Delete bucket, GetBucketLocation."""

from __future__ import annotations

from aiohttp import web

from ostor.gateway.context import RequestContext, xml_response
from ostor.common.errors import InvalidLocationConstraint
from ostor.gateway.xmlio import child_text, document, element, iso_time, parse, sub


def owner_element(ctx: RequestContext, owner_id: str, tag: str = "Owner") -> object:
    """An <Owner> with ID and DisplayName (the user's name when it is the requester)."""
    node = element(tag)
    sub(node, "ID", owner_id)
    user = ctx.user
    sub(node, "DisplayName", user.name if user and user.user_id == owner_id else owner_id)
    return node


async def list_buckets(ctx: RequestContext) -> web.StreamResponse:
    """ListBuckets: the requester's buckets (every bucket for the admin)."""
    user = ctx.user
    buckets = await ctx.engine.list_buckets(None if user and user.admin else ctx.owner_id)
    root = element("ListAllMyBucketsResult")
    root.append(owner_element(ctx, ctx.owner_id))
    listing = sub(root, "Buckets")
    for bucket in buckets:
        node = sub(listing, "Bucket")
        sub(node, "Name", bucket.name)
        sub(node, "CreationDate", iso_time(bucket.created_ns))
        sub(node, "BucketRegion", bucket.location or ctx.config.region)
    return xml_response(document(root))


async def create_bucket(ctx: RequestContext) -> web.StreamResponse:
    """CreateBucket, with an optional CreateBucketConfiguration/LocationConstraint body."""
    body = await ctx.body.read(ctx.config.max_xml_bytes)
    location = ""
    if body.strip():
        constraint = child_text(parse(body), "LocationConstraint", "")
        location = (constraint or "").strip()
        if location and location != ctx.config.region:
            raise InvalidLocationConstraint(LocationConstraint=location)
    await ctx.engine.create_bucket(ctx.bucket, ctx.owner_id, location=location)
    return web.Response(status=200, headers={"Location": f"/{ctx.bucket}"})


async def head_bucket(ctx: RequestContext) -> web.StreamResponse:
    """HeadBucket: 200 with the region, or the error status (no body)."""
    bucket = await ctx.engine.get_bucket(ctx.bucket)
    return web.Response(status=200, headers={"x-amz-bucket-region": bucket.location or ctx.config.region})


async def delete_bucket(ctx: RequestContext) -> web.StreamResponse:
    """DeleteBucket (BucketNotEmpty while anything remains)."""
    await ctx.engine.delete_bucket(ctx.bucket)
    return web.Response(status=204)


async def get_bucket_location(ctx: RequestContext) -> web.StreamResponse:
    """GetBucketLocation: empty for us-east-1, as S3 answers."""
    bucket = await ctx.engine.get_bucket(ctx.bucket)
    location = bucket.location or ctx.config.region
    node = element("LocationConstraint", "" if location == "us-east-1" else location)
    return xml_response(document(node))
