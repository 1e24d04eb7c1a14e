"""The closed catalogue of S3 operations and the routing table that picks one for a request.

A route matches on method, target level (service, bucket, object), the query
parameters that must be present and optionally a header (CopyObject is a PUT
with x-amz-copy-source). The most specific matching route wins. Query
parameters that name an S3 sub-resource ostor does not implement give
NotImplemented instead of silently falling through to a plain operation.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ostor.common.errors import MethodNotAllowed, NotImplemented_
from ostor.gateway.handlers import attributes, batch, buckets, listing, multipart, objects, versioning

Handler = Callable[..., Awaitable[object]]


class Level(enum.Enum):
    """What a request addresses."""

    SERVICE = "service"
    BUCKET = "bucket"
    OBJECT = "object"


@dataclass(frozen=True)
class Operation:
    """One S3 operation: its name, the IAM permission it needs, and its handler."""

    name: str
    permission: str
    handler: Handler


@dataclass(frozen=True)
class Route:
    """A row of the routing table."""

    method: str
    level: Level
    query: frozenset[str]
    operation: Operation
    header: str | None = None

    @property
    def specificity(self) -> int:
        """More required parameters (or a required header) beat fewer."""
        return 2 * len(self.query) + (1 if self.header else 0)


def _op(name: str, permission: str, handler: Handler) -> Operation:
    return Operation(name, permission, handler)


LIST_BUCKETS = _op("ListBuckets", "s3:ListAllMyBuckets", buckets.list_buckets)
CREATE_BUCKET = _op("CreateBucket", "s3:CreateBucket", buckets.create_bucket)
HEAD_BUCKET = _op("HeadBucket", "s3:ListBucket", buckets.head_bucket)
DELETE_BUCKET = _op("DeleteBucket", "s3:DeleteBucket", buckets.delete_bucket)
GET_BUCKET_LOCATION = _op("GetBucketLocation", "s3:GetBucketLocation", buckets.get_bucket_location)
LIST_OBJECTS = _op("ListObjects", "s3:ListBucket", listing.list_objects)
LIST_OBJECTS_V2 = _op("ListObjectsV2", "s3:ListBucket", listing.list_objects_v2)
LIST_UPLOADS = _op("ListMultipartUploads", "s3:ListBucketMultipartUploads", multipart.list_uploads)
DELETE_OBJECTS = _op("DeleteObjects", "s3:DeleteObject", batch.delete_objects)
PUT_OBJECT = _op("PutObject", "s3:PutObject", objects.put_object)
COPY_OBJECT = _op("CopyObject", "s3:PutObject", batch.copy_object)
GET_OBJECT = _op("GetObject", "s3:GetObject", objects.get_object)
HEAD_OBJECT = _op("HeadObject", "s3:GetObject", objects.head_object)
DELETE_OBJECT = _op("DeleteObject", "s3:DeleteObject", objects.delete_object)
CREATE_UPLOAD = _op("CreateMultipartUpload", "s3:PutObject", multipart.create_upload)
UPLOAD_PART = _op("UploadPart", "s3:PutObject", multipart.upload_part)
UPLOAD_PART_COPY = _op("UploadPartCopy", "s3:PutObject", multipart.upload_part_copy)
COMPLETE_UPLOAD = _op("CompleteMultipartUpload", "s3:PutObject", multipart.complete_upload)
ABORT_UPLOAD = _op("AbortMultipartUpload", "s3:AbortMultipartUpload", multipart.abort_upload)
LIST_PARTS = _op("ListParts", "s3:ListMultipartUploadParts", multipart.list_parts)
GET_VERSIONING = _op("GetBucketVersioning", "s3:GetBucketVersioning", versioning.get_versioning)
PUT_VERSIONING = _op("PutBucketVersioning", "s3:PutBucketVersioning", versioning.put_versioning)
LIST_VERSIONS = _op("ListObjectVersions", "s3:ListBucketVersions", versioning.list_versions)
GET_ATTRIBUTES = _op("GetObjectAttributes", "s3:GetObjectAttributes", attributes.get_object_attributes)

_S, _B, _O = Level.SERVICE, Level.BUCKET, Level.OBJECT
ROUTES: tuple[Route, ...] = (
    Route("GET", _S, frozenset(), LIST_BUCKETS),
    Route("PUT", _B, frozenset(), CREATE_BUCKET),
    Route("HEAD", _B, frozenset(), HEAD_BUCKET),
    Route("DELETE", _B, frozenset(), DELETE_BUCKET),
    Route("GET", _B, frozenset({"location"}), GET_BUCKET_LOCATION),
    Route("GET", _B, frozenset(), LIST_OBJECTS),
    Route("GET", _B, frozenset({"list-type"}), LIST_OBJECTS_V2),
    Route("GET", _B, frozenset({"uploads"}), LIST_UPLOADS),
    Route("POST", _B, frozenset({"delete"}), DELETE_OBJECTS),
    Route("PUT", _O, frozenset(), PUT_OBJECT),
    Route("PUT", _O, frozenset(), COPY_OBJECT, header="x-amz-copy-source"),
    Route("GET", _O, frozenset(), GET_OBJECT),
    Route("HEAD", _O, frozenset(), HEAD_OBJECT),
    Route("DELETE", _O, frozenset(), DELETE_OBJECT),
    Route("POST", _O, frozenset({"uploads"}), CREATE_UPLOAD),
    Route("PUT", _O, frozenset({"partNumber", "uploadId"}), UPLOAD_PART),
    Route("PUT", _O, frozenset({"partNumber", "uploadId"}), UPLOAD_PART_COPY, header="x-amz-copy-source"),
    Route("POST", _O, frozenset({"uploadId"}), COMPLETE_UPLOAD),
    Route("DELETE", _O, frozenset({"uploadId"}), ABORT_UPLOAD),
    Route("GET", _O, frozenset({"uploadId"}), LIST_PARTS),
    Route("GET", _B, frozenset({"versioning"}), GET_VERSIONING),
    Route("PUT", _B, frozenset({"versioning"}), PUT_VERSIONING),
    Route("GET", _B, frozenset({"versions"}), LIST_VERSIONS),
    Route("GET", _O, frozenset({"attributes"}), GET_ATTRIBUTES),
)

#: Sub-resource parameters of S3 operations ostor does not implement yet.
UNIMPLEMENTED_SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering", "inventory",
    "legal-hold", "lifecycle", "logging", "metrics", "notification", "object-lock", "ownershipControls",
    "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore", "retention",
    "select", "tagging", "torrent", "website", "renameObject",
})

_TABLE: dict[tuple[str, Level], list[Route]] = {}
for _route in ROUTES:
    _TABLE.setdefault((_route.method, _route.level), []).append(_route)
for _routes in _TABLE.values():
    _routes.sort(key=lambda r: r.specificity, reverse=True)


def resolve(method: str, level: Level, query: dict[str, str], headers) -> Operation:
    """The operation a request asks for (NotImplemented, MethodNotAllowed when there is none)."""
    unsupported = UNIMPLEMENTED_SUBRESOURCES.intersection(query)
    if unsupported:
        raise NotImplemented_(f"The {sorted(unsupported)[0]} sub-resource is not implemented by ostor.")
    for route in _TABLE.get((method, level), ()):
        if route.query <= query.keys() and (route.header is None or route.header in headers):
            return route.operation
    raise MethodNotAllowed(Method=method, ResourceType=level.value.upper())
