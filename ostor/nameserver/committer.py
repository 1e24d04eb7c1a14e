"""The commit thread of name-server writers, and the data syncs it runs ahead of need.

Each batch's COMMIT (the fsync) runs on this thread, after the *before-commit*
calls of the batch's requests: the fdatasyncs of the data they name, left to
the name server by deferred creates. Under load the batch after a committing
one is already queued, its data written, while the loop has yet to hear of the
commit and run that batch's statements. So once a COMMIT is done and no other
job is waiting, the thread syncs the data of the requests queued meanwhile
right away. Their batch finds its syncs done and commits at once: the data sync
of one batch overlaps the statements of the next instead of following them.
Measured on the 2-core machine with 32 concurrent 4 KiB puts, the syncs left
between a batch's statements and its COMMIT fell from 1.3–1.5 ms to 0.7 ms.

One thread serves every name server of a process (the embedded mode passes one
to each; a name server opened alone makes its own). The batches of different
name servers then commit one after another instead of side by side, and yet
the engine goes faster: every return from a blocking call costs a thread the
GIL, and the event loop, which runs all statements, waits each time another
thread holds it. With one commit thread instead of four, the loop thread waited
for the GIL 0.4 times per 4 KiB put instead of 0.95, its CPU time per put fell
from about 220 µs to 170 µs, and put_4k rose by 18% (one run after the other,
6 rounds, as ``benchmarks/ab_put4k.py --sequential`` does). A second thread, to
sync data ahead while the first commits, or two commit threads, made it slower.

Writers form a batch only when the thread holds fewer than ``BATCHES_AHEAD``
batches (one committing, one ready to go): a writer that finds it full waits
for a batch to be answered (:meth:`CommitThread.admit`). Before, each writer
formed its next batch the moment its previous one committed, and that batch
then waited behind the other name servers' batches while the requests that
came meanwhile waited for the batch after it. Waiting to form it lets them
join: with 32 concurrent 4 KiB puts over 4 name servers, requests per commit
rose from 5.0 to 7.2, so the WAL fsyncs per put fell from 0.205 to 0.143 and
the loop's CPU per put by about a tenth. Data fsyncs per put rose from 0.165 to
0.21 (the thread seldom finds its queue empty to sync ahead), so the fsyncs per
put fell only a little, and put_4k moved within this host's noise.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable

from ostor.objectserver.types import SyncCalls

#: Batches admitted to the commit thread and not yet answered (see CommitThread.admit).
BATCHES_AHEAD = 2


class OwedSyncs:
    """A write request's before-commit calls, until a sync run after the request was queued covers them.

    Only the commit thread reads or changes it after creation.
    """

    __slots__ = ("calls", "error")

    def __init__(self, calls: SyncCalls) -> None:
        self.calls = calls
        #: What an ahead-of-need sync of these calls raised: the request's batch fails with it.
        self.error: BaseException | None = None


def run_owed(owed: Iterable[OwedSyncs]) -> None:
    """Run each distinct call still owed, in order; an earlier failure is raised instead."""
    calls: dict[Callable[[], None], None] = {}
    for item in owed:
        if item.error is not None:
            raise item.error
        for call in item.calls:
            calls[call] = None
    for call in calls:
        call()


class CommitThread:
    """One thread committing writers' batches in order, and syncing queued data in between.

    Each writer :meth:`attach`es the function that returns the owed syncs of its
    requests waiting for a batch; it runs on this thread and must only read a
    snapshot (``list(deque)`` is atomic under the GIL). A bare thread on a
    SimpleQueue rather than a one-thread executor: no Future (with its Condition)
    per batch, and less Python on this thread, which must take the GIL from the
    busy event loop each time it runs any.

    :meth:`admit` and :meth:`release` belong to the event loop: every writer
    sharing a thread runs on the same loop.
    """

    def __init__(self, name: str) -> None:
        self._queued: list[Callable[[], list[OwedSyncs]]] = []
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        #: Batches admitted and not yet released (loop side).
        self._admitted = 0
        #: Writers waiting to form a batch, each as the call that retries (loop side).
        self._waiting: deque[Callable[[], None]] = deque()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def attach(self, queued: Callable[[], list[OwedSyncs]]) -> None:
        """Let this thread sync ahead the owed calls ``queued`` returns (one writer's waiting requests)."""
        self._queued = [*self._queued, queued]  # a new list: the thread iterates the old one safely

    def detach(self, queued: Callable[[], list[OwedSyncs]]) -> None:
        """Undo :meth:`attach`."""
        self._queued = [q for q in self._queued if q is not queued]

    def admit(self, retry: Callable[[], None]) -> bool:
        """Whether a writer may form a batch now; if not, ``retry`` is called once it may.

        An admitted writer holds its place until it calls :meth:`release`, once
        its batch is answered or turned out to need no commit.
        """
        if self._admitted < BATCHES_AHEAD:
            self._admitted += 1
            return True
        self._waiting.append(retry)
        return False

    def release(self) -> None:
        """Give back an admitted place; the longest-waiting writers form their batches now."""
        self._admitted -= 1
        while self._waiting and self._admitted < BATCHES_AHEAD:
            self._waiting.popleft()()

    def commit(self, conn: sqlite3.Connection, owed: list[OwedSyncs],
               done: Callable[[BaseException | None], None]) -> None:
        """Run what ``owed`` still owes, then COMMIT; ``done`` gets the error or None, on this thread."""
        self._jobs.put((conn, owed, done))

    def close(self) -> None:
        """Stop once the queued commits ran."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            conn, owed, done = job
            try:
                run_owed(owed)  # what the batch's names depend on becomes durable first
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which rolls back
                done(exc)
                continue
            done(None)
            if self._jobs.empty():
                self._sync_ahead()

    def _sync_ahead(self) -> None:
        pending = [item for queued in self._queued for item in queued() if item.calls and item.error is None]
        if not pending:
            return
        try:
            run_owed(pending)
        except Exception as exc:  # noqa: BLE001 - each request's batch fails with it
            for item in pending:
                item.error = exc
            return
        for item in pending:
            item.calls = ()  # their data was written before they were queued: durable now
