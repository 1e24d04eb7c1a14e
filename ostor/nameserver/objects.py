"""Object names: create, lookup, delete and update versions (S3 versioning semantics).

Write functions take a :class:`Txn` and run on the writer thread; read
functions take a connection and run wherever the caller is.
"""

from __future__ import annotations

import sqlite3

from ostor.common.errors import (GuardMissingError, MethodNotAllowed, NoSuchKey, NoSuchVersion,
                                 PreconditionFailed)

from . import codec
from .codec import OBJECT_COLS
from .records import NULL_VERSION, DeleteOutcome, ObjectRecord, Versioning, WriteCondition
from .txn import Txn
from .versions import new_version_id, version_row
from .writer import Fail

#: ObjectRecord fields update_record may change (never the data link or identity).
UPDATABLE = frozenset({"acl", "tags", "metadata", "headers", "content_type", "storage_class",
                       "checksums", "checksum_type", "owner"})

_SQL_LATEST = f"SELECT {OBJECT_COLS} FROM objects WHERE bucket=? AND key=? ORDER BY vseq LIMIT 1"


def etag_matches(wanted: str, etag: str) -> bool:
    """Compare ETags leniently: quotes and a weak prefix do not matter; '*' matches anything."""
    def norm(e: str) -> str:
        e = e.strip()
        if e.startswith("W/"):
            e = e[2:]
        return e.strip('"')
    return wanted.strip() == "*" or norm(wanted) == norm(etag)


def condition_holds(current: ObjectRecord | None, cond: WriteCondition | None) -> bool:
    """Whether a conditional write may proceed given the key's current version (None: no versions)."""
    if cond is None:
        return True
    live = current is not None and not current.delete_marker
    if cond.if_none_match_star and live:
        return False
    if cond.if_match is not None and not (live and etag_matches(cond.if_match, current.etag)):
        return False
    return True


# -- reads ---------------------------------------------------------------------------------
def lookup(conn: sqlite3.Connection, bucket: str, key: str, version_id: str | None) -> ObjectRecord:
    """The current version (maybe a delete marker) or the given version of a key."""
    if version_id is None:
        row = conn.execute(_SQL_LATEST, (bucket, key.encode())).fetchone()
        if row is None:
            raise NoSuchKey(Key=key)
    else:
        row = version_row(conn, bucket, key.encode(), version_id)
        if row is None:
            raise NoSuchVersion(Key=key, VersionId=version_id)
    return codec.decode_object(bucket, row)


# -- writes --------------------------------------------------------------------------------
def _latest(t: Txn, bucket: str, kb: bytes) -> tuple | None:
    return t.execute(_SQL_LATEST, (bucket, kb)).fetchone()


def drop_row(t: Txn, bucket: str, row: tuple, promote: bool = True) -> None:
    """Remove one stored version: its data loses a reference, counters go down; maybe promote the next."""
    kb, vseq, _vid, latest, dm, size, _etag, data = row
    t.touch(bucket, kb)
    t.execute("DELETE FROM objects WHERE bucket=? AND key=? AND vseq=?", (bucket, kb, vseq))
    t.unref(codec.link_of(data))
    if not dm:
        t.usage(bucket, -1, -size)
    if latest and promote:
        t.execute("UPDATE objects SET latest=1 WHERE bucket=?1 AND key=?2 AND vseq="
                  "(SELECT min(vseq) FROM objects WHERE bucket=?1 AND key=?2)", (bucket, kb))


def commit_version(t: Txn, rec: ObjectRecord, versioning: Versioning, op: str = "put",
                   fresh: bool = True) -> ObjectRecord:
    """Insert ``rec`` as the key's new current version (ids, null replacement, refs, usage, log).

    ``fresh``: the link's data is linked by no version yet (written under a guard, or
    a completed upload's parts); False when it reuses a version's data (copy in place).
    """
    bucket, kb = rec.bucket, rec.key.encode()
    t.touch(bucket, kb)
    ns = t.now_ns()
    segs = codec.segments_of(rec)
    # reference the new data before dropping the old, so segments the two share survive
    if segs:
        t.ref(segs, fresh)
    # One read of the key's newest row (it is the one with latest=1) decides what else
    # must change; a new key then costs no further statement.
    newest = _latest(t, bucket, kb)
    if versioning == Versioning.ENABLED:
        vid = new_version_id(ns)
    else:
        vid = NULL_VERSION
        if newest is not None and newest[2] == NULL_VERSION:
            drop_row(t, bucket, newest, promote=False)
            newest = None  # no other row was latest
        elif newest is not None:
            old = version_row(t, bucket, kb, NULL_VERSION)
            if old is not None:
                drop_row(t, bucket, old, promote=False)
    if newest is not None:
        t.execute("UPDATE objects SET latest=0 WHERE bucket=? AND key=? AND vseq=?", (bucket, kb, newest[1]))
    # The caller handed ``rec`` over (see create_name): filling it in place saves a copy per write.
    out = rec
    out.version_id, out.last_modified_ns, out.is_latest = vid, ns, True
    t.execute("INSERT INTO objects (bucket, key, vseq, version_id, latest, dm, size, etag, data) "
              "VALUES (?,?,?,?,1,?,?,?,?)",
              (bucket, kb, -ns, vid, int(out.delete_marker), out.size, out.etag, codec.object_blob(out)))
    if not out.delete_marker:
        t.usage(bucket, 1, out.size)
    t.log("marker" if out.delete_marker else op, bucket, rec.key, vid)
    return out


def take_guard(t: Txn, object_id: bytes) -> int:
    """Consume a live guard and return its os_id; GuardMissingError if gone or expired."""
    os_id = t.consume_guard(object_id)
    if os_id is None:
        raise GuardMissingError(object_id)
    return os_id


def current(t: Txn, bucket: str, key: str) -> ObjectRecord | None:
    """The key's current version, or None."""
    row = _latest(t, bucket, key.encode())
    return None if row is None else codec.decode_object(bucket, row)


def create_name(t: Txn, rec: ObjectRecord, guard: bytes | None, versioning: Versioning,
                condition: WriteCondition | None) -> ObjectRecord | Fail:
    """Commit a new version while its guard is alive (see NameServer.create_name)."""
    os_id = take_guard(t, guard) if guard is not None else None
    if condition is not None and not condition_holds(current(t, rec.bucket, rec.key), condition):
        if guard is not None:
            t.gc(os_id, guard)  # the uploaded data will never be named
        return Fail(PreconditionFailed(Key=rec.key))
    rec.delete_marker = False
    return commit_version(t, rec, versioning, fresh=guard is not None)


def delete_name(t: Txn, bucket: str, key: str, version_id: str | None, versioning: Versioning) -> DeleteOutcome:
    """S3 DeleteObject semantics for each versioning state (see NameServer.delete_name)."""
    kb = key.encode()
    if version_id is None:
        if versioning == Versioning.NONE:
            row = version_row(t, bucket, kb, NULL_VERSION)
            if row is not None:
                drop_row(t, bucket, row)
                t.log("delete", bucket, key, NULL_VERSION)
            return DeleteOutcome(None, False)
        # ENABLED: a new marker; SUSPENDED: a "null" marker that replaces the null version
        marker = commit_version(t, ObjectRecord(bucket=bucket, key=key, delete_marker=True), versioning)
        return DeleteOutcome(marker.version_id, True)
    row = version_row(t, bucket, kb, version_id)
    if row is None:
        return DeleteOutcome(version_id, False)
    drop_row(t, bucket, row)
    t.log("delete", bucket, key, version_id)
    return DeleteOutcome(version_id, bool(row[4]))


def update_record(t: Txn, bucket: str, key: str, version_id: str | None, fields: dict) -> ObjectRecord:
    """Change ACL, tags or metadata of a stored version in place (Last-Modified unchanged, as in S3)."""
    bad = set(fields) - UPDATABLE
    if bad:
        raise TypeError(f"update_record cannot change {sorted(bad)}")
    kb = key.encode()
    if version_id is None:
        row = _latest(t, bucket, kb)
        if row is None or row[4]:
            raise NoSuchKey(Key=key)
    else:
        row = version_row(t, bucket, kb, version_id)
        if row is None:
            raise NoSuchVersion(Key=key, VersionId=version_id)
        if row[4]:
            raise MethodNotAllowed(Key=key, VersionId=version_id)
    rec = codec.decode_object(bucket, row)
    for name, value in fields.items():
        setattr(rec, name, value)
    t.touch(bucket, kb)
    t.execute("UPDATE objects SET data=? WHERE bucket=? AND key=? AND vseq=?",
              (codec.object_blob(rec), bucket, kb, row[1]))
    t.log("update", bucket, key, rec.version_id)
    return rec
