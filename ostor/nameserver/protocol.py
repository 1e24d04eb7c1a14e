"""The name server's operations as messages: op codes, data direction, and the record types they carry."""

from __future__ import annotations

from ostor.common.messages import Operation

from .inventory import DataRef
from .records import (
    BucketRecord, BucketUsage, DeleteOutcome, ListEntry, ListPage, ObjectRecord, PartRecord, Segment,
    UploadEntry, UploadPage, UploadRecord, Versioning, WriteCondition,
)

#: Op codes are part of the wire format: append new ones, never renumber.
NAME_SERVER_OPERATIONS = tuple(Operation(code, method) for code, method in enumerate((
    "guard", "guard_many", "renew_guard", "release_guard", "expire_guards", "collect_garbage",
    "gc_pending", "inventory", "create_name", "lookup", "delete_name", "update_record",
    "list_names", "list_versions", "changes", "bucket_create", "bucket_get", "bucket_update",
    "bucket_delete", "bucket_list", "bucket_has_content", "bucket_usage", "purge_bucket",
    "upload_create", "upload_get", "part_put", "parts_list", "upload_complete", "upload_abort",
    "uploads_list",
), start=1))

#: Record types the name server's messages carry (order is part of the wire format).
NAME_SERVER_TYPES: tuple[type, ...] = (
    Versioning, Segment, PartRecord, ObjectRecord, BucketRecord, UploadRecord, WriteCondition,
    ListEntry, ListPage, UploadEntry, UploadPage, DeleteOutcome, BucketUsage, DataRef,
)
