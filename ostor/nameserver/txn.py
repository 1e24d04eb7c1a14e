"""Helpers a write request uses inside its transaction: clock, change log, GC queue, usage, segment refs.

They exist so that derived state is always written in the same transaction as
the change it derives from (DESIGN, convention 7).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable


#: How far the persisted clock runs ahead of the timestamps handed out (see Txn.end_batch).
CLOCK_LEASE_NS = 1_000_000_000


class Txn:
    """The writer thread's view of the database while a batch is open."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.execute = conn.execute
        self._clock = 0
        self._saved_clock = 0
        #: Usage deltas of the open batch by bucket, written once at its end (same transaction).
        self._usage: dict[str, list[int]] = {}
        #: (bucket, key bytes) whose object rows the open batch changed (record cache invalidation).
        self.touched: set[tuple[str, bytes]] = set()
        self.reload()

    def reload(self) -> None:
        """Forget the open batch's pending state and re-read the persisted clock (after a rollback)."""
        self._usage.clear()
        self._saved_clock = self.conn.execute("SELECT value FROM meta WHERE name='clock'").fetchone()[0]
        if self._clock == 0:  # opening: every timestamp handed out before is at most the ceiling
            self._clock = self._saved_clock
        # After a rollback the clock stays where it is: it is past every timestamp handed out,
        # and jumping to the ceiling on each rollback would run it ahead of the wall clock.

    def now_ns(self) -> int:
        """A wall-clock timestamp strictly greater than any this name server has handed out."""
        now = time.time_ns()
        self._clock = now if now > self._clock else self._clock + 1
        return self._clock

    def end_batch(self) -> None:
        """Write the batch's usage deltas, and persist a clock ceiling so the clock never runs backwards.

        The stored value runs CLOCK_LEASE_NS ahead of the timestamps handed out, so only
        a batch whose timestamps pass it writes it again (about once a second under load,
        instead of a statement and a page in every commit). A restart resumes from the
        stored ceiling: its first timestamps may lead the wall clock by up to the lease.
        """
        self.flush_usage()
        if self._clock > self._saved_clock:
            ceiling = self._clock + CLOCK_LEASE_NS
            self.execute("UPDATE meta SET value=? WHERE name='clock'", (ceiling,))
            self._saved_clock = ceiling

    def touch(self, bucket: str, key: bytes) -> None:
        """Note that a key's object rows change in this batch."""
        self.touched.add((bucket, key))

    def take_touched(self) -> set[tuple[str, bytes]]:
        """The keys touched since the last call (a rolled-back batch's too: over-invalidating is harmless)."""
        touched, self.touched = self.touched, set()
        return touched

    def log(self, op: str, bucket: str, key: str | None = None, version_id: str | None = None) -> None:
        """Append to the change log."""
        self.execute("INSERT INTO change_log (time_ns, op, bucket, key, version_id) VALUES (?,?,?,?,?)",
                     (time.time_ns(), op, bucket, key, version_id))

    def gc(self, os_id: int, object_id: bytes) -> None:
        """Queue one data object for deletion on its object server."""
        self.execute("INSERT INTO gc_queue (os_id, object_id) VALUES (?,?)", (os_id, object_id))

    def gc_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Queue many data objects for deletion."""
        self.conn.executemany("INSERT INTO gc_queue (os_id, object_id) VALUES (?,?)", items)

    def usage(self, bucket: str, objects: int = 0, nbytes: int = 0, upload_bytes: int = 0) -> None:
        """Adjust the bucket's counters on this name server (written at the end of the batch)."""
        delta = self._usage.get(bucket)
        if delta is None:
            self._usage[bucket] = [objects, nbytes, upload_bytes]
        else:
            delta[0] += objects
            delta[1] += nbytes
            delta[2] += upload_bytes

    def flush_usage(self) -> None:
        """Write pending usage deltas now (before anything in the batch reads the usage table)."""
        if self._usage:
            self.conn.executemany(
                "INSERT INTO usage (bucket, objects, bytes, upload_bytes) VALUES (?,?,?,?) "
                "ON CONFLICT (bucket) DO UPDATE SET objects=objects+excluded.objects, "
                "bytes=bytes+excluded.bytes, upload_bytes=upload_bytes+excluded.upload_bytes",
                [(bucket, *delta) for bucket, delta in self._usage.items()])
            self._usage.clear()

    def mark(self) -> dict[str, list[int]]:
        """A copy of the pending in-memory state, taken with a SAVEPOINT."""
        return {bucket: list(delta) for bucket, delta in self._usage.items()}

    def restore(self, marked: dict[str, list[int]]) -> None:
        """Return the pending in-memory state to a mark (on ROLLBACK TO the savepoint)."""
        self._usage = marked

    def ref(self, segments: Iterable[tuple[int, bytes]], fresh: bool = False) -> None:
        """Count one more version linking each (os_id, object_id).

        A data object without a row is linked by exactly one version, so fresh data
        (written under a guard, linked by no version yet) needs no statement at all;
        a second link writes the row with 2.
        """
        if fresh:
            return
        self.conn.executemany("INSERT INTO segments (object_id, os_id, refs) VALUES (?2,?1,2) "
                              "ON CONFLICT (object_id) DO UPDATE SET refs=refs+1", segments)

    def unref(self, segments: Iterable[tuple[int, bytes]]) -> None:
        """Drop one reference from each segment; data no version links any more goes to GC
        (no row: that was its only link)."""
        for os_id, object_id in segments:
            row = self.execute("UPDATE segments SET refs=refs-1 WHERE object_id=? RETURNING refs",
                               (object_id,)).fetchone()
            if row is None or row[0] <= 0:
                if row is not None:
                    self.execute("DELETE FROM segments WHERE object_id=?", (object_id,))
                self.gc(os_id, object_id)
