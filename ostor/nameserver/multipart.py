"""Multipart uploads (seed, "Multipart Uploads"): the object is a table of parts.

Each part is an object of its own (maybe on another object server). Completion
moves the chosen parts' segments into the new version's link in one
transaction; nothing is copied.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import replace

from ostor.common.errors import InvalidPart, NoSuchUpload, PreconditionFailed

from . import codec
from .objects import commit_version, condition_holds, current, take_guard
from .records import ObjectRecord, PartRecord, Segment, UploadRecord, Versioning, WriteCondition
from .txn import Txn
from .writer import Fail

_PART_COLS = "number, size, etag, os_id, object_id, seg_size, mtime, checksums"


def _part(row: tuple) -> PartRecord:
    number, size, etag, os_id, object_id, seg_size, mtime, checksums = row
    return PartRecord(number=number, size=size, etag=etag, segment=Segment(os_id, object_id, seg_size),
                      last_modified_ns=mtime, checksums=codec.unpack(checksums) if checksums else {})


def _upload_row(conn, bucket: str, key: str, upload_id: str) -> tuple:
    row = conn.execute("SELECT key, initiated_ns, data FROM uploads WHERE upload_id=? AND bucket=?",
                       (upload_id, bucket)).fetchone()
    if row is None or row[0] != key.encode():
        raise NoSuchUpload(UploadId=upload_id)
    return row


def get(conn: sqlite3.Connection, bucket: str, key: str, upload_id: str) -> UploadRecord:
    """An upload in progress; NoSuchUpload if it was never made, completed or aborted."""
    kb, ns, data = _upload_row(conn, bucket, key, upload_id)
    return codec.decode_upload(bucket, kb, ns, upload_id, data)


def create(t: Txn, rec: UploadRecord) -> UploadRecord:
    """Start an upload; assigns an opaque URL-safe id and the initiation time when empty."""
    out = replace(rec, upload_id=rec.upload_id or secrets.token_urlsafe(24),
                  initiated_ns=rec.initiated_ns or t.now_ns())
    t.execute("INSERT INTO uploads (bucket, key, initiated_ns, upload_id, data) VALUES (?,?,?,?,?)",
              (out.bucket, out.key.encode(), out.initiated_ns, out.upload_id, codec.upload_blob(out)))
    t.log("upload_create", out.bucket, out.key, out.upload_id)
    return out


def part_put(t: Txn, bucket: str, key: str, upload_id: str, part: PartRecord,
             guard: bytes) -> PartRecord | None | Fail:
    """Store a part under its guard, replacing any part with that number (old data goes to GC)."""
    os_id = take_guard(t, guard)
    try:
        _upload_row(t.conn, bucket, key, upload_id)
    except NoSuchUpload as exc:
        t.gc(os_id, guard)  # the part's data has nowhere to go
        return Fail(exc)
    old_row = t.execute(f"SELECT {_PART_COLS} FROM parts WHERE upload_id=? AND number=?",
                        (upload_id, part.number)).fetchone()
    old = _part(old_row) if old_row else None
    if old is not None:
        if old.segment.object_id != part.segment.object_id:
            t.gc(old.segment.os_id, old.segment.object_id)
        t.usage(bucket, upload_bytes=-old.size)
    s = part.segment
    t.execute(f"INSERT OR REPLACE INTO parts (upload_id, {_PART_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
              (upload_id, part.number, part.size, part.etag, s.os_id, s.object_id, s.size,
         part.last_modified_ns or t.now_ns(), codec.pack(part.checksums) if part.checksums else None))
    t.usage(bucket, upload_bytes=part.size)
    return old


def parts_list(conn: sqlite3.Connection, bucket: str, key: str, upload_id: str, marker: int,
               limit: int) -> tuple[list[PartRecord], bool]:
    """Parts numbered above ``marker``, ascending; and whether more follow."""
    _upload_row(conn, bucket, key, upload_id)
    rows = conn.execute(f"SELECT {_PART_COLS} FROM parts WHERE upload_id=? AND number>? ORDER BY number LIMIT ?",
                        (upload_id, marker, limit + 1)).fetchall()
    return [_part(r) for r in rows[:limit]], len(rows) > limit


def drop_upload(t: Txn, upload_id: str, bucket: str, keep: frozenset[int] = frozenset()) -> int:
    """Remove an upload and its parts; parts not in ``keep`` go to GC. Returns the parts' total size."""
    rows = t.execute("DELETE FROM parts WHERE upload_id=? RETURNING number, size, os_id, object_id",
                     (upload_id,)).fetchall()
    t.gc_many((r[2], r[3]) for r in rows if r[0] not in keep)
    total = sum(r[1] for r in rows)
    t.usage(bucket, upload_bytes=-total)
    row = t.execute("DELETE FROM uploads WHERE upload_id=? RETURNING key", (upload_id,)).fetchone()
    t.log("upload_drop", bucket, row[0].decode() if row else None, upload_id)
    return total


def complete(t: Txn, bucket: str, key: str, upload_id: str, rec: ObjectRecord, versioning: Versioning,
             condition: WriteCondition | None) -> ObjectRecord:
    """Turn an upload into a version whose link is the listed parts' segments (one transaction)."""
    _upload_row(t.conn, bucket, key, upload_id)
    stored = {r[0]: r[1] for r in t.execute("SELECT number, object_id FROM parts WHERE upload_id=?", (upload_id,))}
    for p in rec.parts:
        if stored.get(p.number) != p.segment.object_id:
            raise InvalidPart(PartNumber=str(p.number))
    if condition is not None and not condition_holds(current(t, bucket, key), condition):
        raise PreconditionFailed(Key=key)  # the upload stays, the client may retry
    drop_upload(t, upload_id, bucket, keep=frozenset(p.number for p in rec.parts))
    out = replace(rec, bucket=bucket, key=key, delete_marker=False, link=tuple(p.segment for p in rec.parts))
    return commit_version(t, out, versioning, op="complete")


def abort(t: Txn, bucket: str, key: str, upload_id: str) -> None:
    """Drop an upload; all its parts go to GC."""
    _upload_row(t.conn, bucket, key, upload_id)
    drop_upload(t, upload_id, bucket)
