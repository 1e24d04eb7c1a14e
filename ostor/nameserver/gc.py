"""Guards (seed, "Create Operation") and the garbage-collection queue."""

from __future__ import annotations

import sqlite3
import time

from ostor.common.errors import GuardMissingError

from .txn import Txn


def guard(t: Txn, os_id: int, object_id: bytes, ttl: float) -> None:
    """Record a guard that expires ``ttl`` seconds from now (re-guarding extends it)."""
    expires_at = time.time() + ttl
    t.execute("INSERT INTO guards (object_id, os_id, expires_at) VALUES (?,?,?) "
              "ON CONFLICT (object_id) DO UPDATE SET os_id=excluded.os_id, expires_at=excluded.expires_at",
              (object_id, os_id, expires_at))
    t.guards[object_id] = (os_id, expires_at)


def guard_many(t: Txn, os_id: int, object_ids: list[bytes], ttl: float) -> float:
    """Record guards for several object IDs at once; returns when they expire."""
    expires_at = time.time() + ttl
    t.conn.executemany("INSERT INTO guards (object_id, os_id, expires_at) VALUES (?,?,?)",
                       ((oid, os_id, expires_at) for oid in object_ids))
    t.guards.update((oid, (os_id, expires_at)) for oid in object_ids)
    return expires_at


def renew(t: Txn, object_id: bytes, ttl: float) -> float:
    """Push a live guard's timer ``ttl`` seconds ahead; GuardMissingError if it is gone or expired.

    A guard that expired may already have queued its object for deletion, so it
    must not come back to life: the create it protected has to fail instead.
    """
    now = time.time()
    entry = t.guards.get(object_id)
    if entry is None or entry[1] <= now:
        raise GuardMissingError(object_id)
    expires_at = now + ttl
    t.execute("UPDATE guards SET expires_at=? WHERE object_id=?", (expires_at, object_id))
    t.guards[object_id] = (entry[0], expires_at)
    return expires_at


def release(t: Txn, object_id: bytes) -> None:
    """Drop a guard and queue its data for deletion (the upload failed); nothing if it is gone."""
    # The mirror, not the table: a guard consumed earlier in this batch still has its row.
    entry = t.guards.pop(object_id, None)
    if entry is not None:
        t.execute("DELETE FROM guards WHERE object_id=?", (object_id,))
        t.gc(entry[0], object_id)


def expire(t: Txn, now: float) -> int:
    """Move every guard expired at ``now`` to the GC queue; returns how many."""
    # The mirror, not the table: a guard consumed earlier in this batch still has its row.
    expired = [(os_id, oid) for oid, (os_id, expires_at) in t.guards.items() if expires_at <= now]
    for _, oid in expired:
        del t.guards[oid]
    t.conn.executemany("DELETE FROM guards WHERE object_id=?", ((oid,) for _, oid in expired))
    t.gc_many(expired)
    return len(expired)


def pending(conn: sqlite3.Connection, limit: int) -> list[tuple[int, int, bytes]]:
    """The oldest queued (seq, os_id, object_id) rows."""
    return conn.execute("SELECT seq, os_id, object_id FROM gc_queue ORDER BY seq LIMIT ?", (limit,)).fetchall()


def done(t: Txn, seqs: list[int]) -> None:
    """Forget queue rows whose data the object server has deleted."""
    t.conn.executemany("DELETE FROM gc_queue WHERE seq=?", ((s,) for s in seqs))
