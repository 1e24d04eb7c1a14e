"""Helpers a write request uses inside its transaction: clock, change log, GC queue, usage, segment refs, guards.

They exist so that derived state is always written in the same transaction as
the change it derives from (DESIGN, convention 7).

Rows every create would write or delete one statement at a time (its change-log
entry, its consumed guard, usage counters) are collected during the batch and
written by :meth:`Txn.end_batch`, still inside the batch's transaction: one
``executemany`` per table instead of a statement per request, on the event-loop
thread that runs every statement. Live guards are mirrored in memory, so a
create checks and consumes its guard without a statement: a 4 KiB create runs
about 2.2 statements instead of 4.2. Engine put_4k gained about 2% (36 rounds
of ``benchmarks/ab_put4k.py --sequential``), within this host's noise: the
commit thread's fsyncs, not the loop's statements, bound it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import NamedTuple


#: How far the persisted clock runs ahead of the timestamps handed out (see Txn.end_batch).
CLOCK_LEASE_NS = 1_000_000_000


class Mark(NamedTuple):
    """The pending in-memory state of a batch, as :meth:`Txn.mark` saved it."""

    usage: dict[str, list[int]]
    logged: int
    consumed: int
    guards: dict[bytes, tuple[int, float]]


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
        #: Change-log rows of the open batch, inserted once at its end (same transaction).
        self._log: list[tuple] = []
        #: Guards the open batch consumed: their rows are deleted at its end.
        self._consumed: list[tuple[bytes]] = []
        #: Every live guard, object_id -> (os_id, expires_at): the guards table minus
        #: ``_consumed``. Only this writer changes the table, so the mirror stays exact.
        self.guards: dict[bytes, tuple[int, float]] = {}
        self.reload()

    def reload(self) -> None:
        """Forget the open batch's pending state and re-read the persisted state (after a rollback)."""
        self._usage.clear()
        self._log.clear()
        self._consumed.clear()
        self.guards = {oid: (os_id, expires_at) for oid, os_id, expires_at in
                       self.conn.execute("SELECT object_id, os_id, expires_at FROM guards")}
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
        """Write the batch's collected rows, and persist a clock ceiling so the clock never runs backwards.

        The stored value runs CLOCK_LEASE_NS ahead of the timestamps handed out, so only
        a batch whose timestamps pass it writes it again (about once a second under load,
        instead of a statement and a page in every commit). A restart resumes from the
        stored ceiling: its first timestamps may lead the wall clock by up to the lease.
        """
        self.flush_usage()
        if self._consumed:
            # A guard re-taken after it was consumed (same batch) keeps its row.
            self.conn.executemany("DELETE FROM guards WHERE object_id=?",
                                  [c for c in self._consumed if c[0] not in self.guards])
            self._consumed.clear()
        if self._log:
            self.conn.executemany("INSERT INTO change_log (time_ns, op, bucket, key, version_id) "
                                  "VALUES (?,?,?,?,?)", self._log)
            self._log.clear()
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
        """Append to the change log (written at the end of the batch, in order)."""
        self._log.append((time.time_ns(), op, bucket, key, version_id))

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

    def mark(self) -> Mark:
        """A copy of the pending in-memory state, taken with a SAVEPOINT."""
        return Mark({bucket: list(delta) for bucket, delta in self._usage.items()},
                    len(self._log), len(self._consumed), dict(self.guards))

    def restore(self, marked: Mark) -> None:
        """Return the pending in-memory state to a mark (on ROLLBACK TO the savepoint)."""
        self._usage = marked.usage
        del self._log[marked.logged:]
        del self._consumed[marked.consumed:]
        self.guards = marked.guards

    def consume_guard(self, object_id: bytes) -> int | None:
        """Take a live guard away (its row goes at the end of the batch); its os_id, or None.

        None when the guard is gone or expired. An expired guard stays for
        :func:`~ostor.nameserver.gc.expire`, which queues its data for GC.
        """
        entry = self.guards.get(object_id)
        if entry is None or entry[1] <= time.time():
            return None
        del self.guards[object_id]
        self._consumed.append((object_id,))
        return entry[0]

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
