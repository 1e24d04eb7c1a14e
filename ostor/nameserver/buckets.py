"""Buckets and their per-NS usage counters."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from ostor.common.errors import BucketAlreadyExists, BucketAlreadyOwnedByYou, NoSuchBucket

from . import codec
from .objects import drop_row
from .records import BucketRecord, BucketUsage, Versioning
from .txn import Txn

#: BucketRecord fields bucket_update may change.
UPDATABLE = frozenset({"versioning", "acl", "policy", "owner", "attributes", "location"})


def _row(conn, name: str) -> tuple | None:
    return conn.execute("SELECT name, owner, data FROM buckets WHERE name=?", (name,)).fetchone()


def get(conn: sqlite3.Connection, name: str) -> BucketRecord:
    """A bucket; NoSuchBucket if absent."""
    row = _row(conn, name)
    if row is None:
        raise NoSuchBucket(BucketName=name)
    return codec.decode_bucket(*row)


def create(t: Txn, rec: BucketRecord) -> BucketRecord:
    """Create a bucket (BucketAlreadyOwnedByYou / BucketAlreadyExists if the name is taken)."""
    row = _row(t.conn, rec.name)
    if row is not None:
        if row[1] == rec.owner:
            raise BucketAlreadyOwnedByYou(BucketName=rec.name)
        raise BucketAlreadyExists(BucketName=rec.name)
    out = replace(rec, created_ns=rec.created_ns or t.now_ns(), versioning=Versioning(rec.versioning))
    t.execute("INSERT INTO buckets (name, owner, data) VALUES (?,?,?)", (out.name, out.owner, codec.bucket_blob(out)))
    t.log("bucket_create", out.name)
    return out


def update(t: Txn, name: str, changes: dict) -> BucketRecord:
    """Change bucket fields and bump its epoch (so cached copies know they are stale)."""
    bad = set(changes) - UPDATABLE
    if bad:
        raise TypeError(f"bucket_update cannot change {sorted(bad)}")
    rec = get(t.conn, name)
    for field_name, value in changes.items():
        setattr(rec, field_name, Versioning(value) if field_name == "versioning" else value)
    rec.epoch += 1
    t.execute("UPDATE buckets SET owner=?, data=? WHERE name=?", (rec.owner, codec.bucket_blob(rec), name))
    t.log("bucket_update", name)
    return rec


def delete(t: Txn, name: str) -> None:
    """Remove a bucket record (emptiness is the engine's check, across all name servers)."""
    if t.execute("DELETE FROM buckets WHERE name=? RETURNING name", (name,)).fetchone() is None:
        raise NoSuchBucket(BucketName=name)
    t.flush_usage()
    t.execute("DELETE FROM usage WHERE bucket=? AND objects=0 AND bytes=0 AND upload_bytes=0", (name,))
    t.log("bucket_delete", name)


def list_all(conn: sqlite3.Connection, owner: str | None) -> list[BucketRecord]:
    """Buckets sorted by name, optionally only those of ``owner``."""
    if owner is None:
        rows = conn.execute("SELECT name, owner, data FROM buckets ORDER BY name").fetchall()
    else:
        rows = conn.execute("SELECT name, owner, data FROM buckets WHERE owner=? ORDER BY name", (owner,)).fetchall()
    return [codec.decode_bucket(*r) for r in rows]


def has_content(conn: sqlite3.Connection, bucket: str) -> bool:
    """Any version, marker or upload of ``bucket`` on this name server."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM objects WHERE bucket=?1) "
                        "OR EXISTS (SELECT 1 FROM uploads WHERE bucket=?1)", (bucket,)).fetchone()[0] == 1


def usage(conn: sqlite3.Connection, bucket: str) -> BucketUsage:
    """The bucket's counters on this name server (all zero if it has nothing here)."""
    row = conn.execute("SELECT objects, bytes, upload_bytes FROM usage WHERE bucket=?", (bucket,)).fetchone()
    return BucketUsage(*row) if row else BucketUsage()


def purge(t: Txn, bucket: str, limit: int) -> int:
    """Remove up to ``limit`` versions, markers and uploads of ``bucket``; their data goes to GC."""
    from .multipart import drop_upload  # multipart imports objects; avoid a cycle at import time

    rows = t.execute(f"SELECT {codec.OBJECT_COLS} FROM objects WHERE bucket=? ORDER BY key, vseq LIMIT ?",
                     (bucket, limit)).fetchall()
    for row in rows:
        drop_row(t, bucket, row)
        t.log("delete", bucket, row[0].decode(), row[2])
    removed = len(rows)
    if removed < limit:
        ups = t.execute("SELECT upload_id FROM uploads WHERE bucket=? LIMIT ?", (bucket, limit - removed)).fetchall()
        for (upload_id,) in ups:
            drop_upload(t, upload_id, bucket)
        removed += len(ups)
    return removed
