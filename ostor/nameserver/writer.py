"""The single writer thread of a name server, with group commit.

Every write is a function ``fn(txn)`` run on the writer thread. The thread
drains whatever is queued, runs each request inside its own SAVEPOINT (a
failing request is rolled back alone and does not poison the batch), commits
the batch once — one fsync for many requests — and then resolves all waiting
futures with a single ``call_soon_threadsafe`` per event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from ostor.common.errors import ServiceStoppedError

from .txn import Txn

log = logging.getLogger(__name__)

_WRITE, _READ, _BARRIER = 0, 1, 2


class Fail:
    """Returned by a request to keep its writes (e.g. data queued for GC) yet raise ``exc`` to the caller."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class WriterThread:
    """One thread applying queued requests for one or more name-server databases.

    In the embedded mode every name server of the process shares one thread:
    while it commits one database, requests for the others queue up, so batches
    grow with load on their own and the process runs one writer instead of one
    per database (the GIL gives no parallelism to more). A name server running
    alone owns its own thread.
    """

    def __init__(self, name: str = "ns-writer", max_batch: int = 1000) -> None:
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: tuple) -> None:
        """Queue ``(writer, kind, fn, future, loop)``."""
        self._queue.put(item)

    def stop(self) -> None:
        """Finish everything queued, then end the thread (blocking)."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < self._max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in items:
                stop = True
                items = [i for i in items if i is not None]
            by_writer: dict[GroupCommitWriter, list[tuple]] = {}
            for item in items:
                by_writer.setdefault(item[0], []).append(item)
            results: list[tuple] = []
            for writer, queued in by_writer.items():
                results.extend(writer._process(queued))
            GroupCommitWriter._resolve(results)


class GroupCommitWriter:
    """Owns one database's write connection; its requests are applied in group-committed transactions."""

    def __init__(self, conn: sqlite3.Connection, txn: Txn, max_batch: int = 1000, name: str = "ns-writer",
                 thread: WriterThread | None = None,
                 on_commit: Callable[[set[tuple[str, bytes]]], None] | None = None) -> None:
        self._conn = conn
        self._txn = txn
        #: Called in the writer thread with the keys a batch touched, once it is committed or
        #: rolled back and before any of its requests is answered.
        self._on_commit = on_commit
        self._closed = False
        self._owns_thread = thread is None
        self._thread = thread or WriterThread(name, max_batch)
        #: Transactions committed so far (group commit makes this far smaller than requests).
        self.transactions = 0
        #: Write requests applied so far.
        self.requests = 0

    def submit(self, fn: Callable[[Txn], Any]) -> asyncio.Future:
        """Queue a write; the future resolves after the batch holding it is durable."""
        return self._put(_WRITE, fn)

    def submit_read(self, fn: Callable[[sqlite3.Connection], Any]) -> asyncio.Future:
        """Run a read on the writer's connection, outside any transaction (rollback-exclusive mode)."""
        return self._put(_READ, fn)

    def _put(self, kind: int, fn: Callable) -> asyncio.Future:
        if self._closed:
            raise ServiceStoppedError("name server writer is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._thread.put((self, kind, fn, fut, loop))
        return fut

    def close(self) -> None:
        """Finish this database's queued work (blocking; call via a thread from async code)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_thread:
            self._thread.stop()
        else:
            done = threading.Event()
            self._thread.put((self, _BARRIER, done.set, None, None))
            done.wait()

    # -- writer thread ---------------------------------------------------------------
    def _process(self, items: list[tuple]) -> list[tuple]:
        writes = [i for i in items if i[1] == _WRITE]
        results: list[tuple] = []
        if writes:
            results.extend(self._apply(writes))
        for _, kind, fn, fut, loop in items:
            if kind == _READ:
                try:
                    results.append((fut, loop, True, fn(self._conn)))
                except Exception as exc:
                    results.append((fut, loop, False, exc))
            elif kind == _BARRIER:
                fn()
        return results

    def _apply(self, writes: list[tuple]) -> list[tuple]:
        """Apply a batch in one transaction and commit it once.

        The batch first runs without savepoints (two statements fewer per
        request). Should any request raise, the whole transaction is rolled
        back and replayed with a savepoint per request, so the failing one is
        undone alone. Requests only depend on the database, so a replay after
        a rollback sees exactly what the first run saw.
        """
        conn, txn = self._conn, self._txn
        try:
            conn.execute("BEGIN IMMEDIATE")
            out = self._run_batch(writes, isolated=False)
            if out is None:
                conn.execute("ROLLBACK")
                txn.reload()
                conn.execute("BEGIN IMMEDIATE")
                out = self._run_batch(writes, isolated=True)
            txn.end_batch()
            conn.execute("COMMIT")
            self.transactions += 1
            self.requests += len(writes)
        except Exception as exc:  # the commit itself failed: nothing of the batch is durable
            log.exception("name server batch commit failed")
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            txn.reload()
            out = [(fut, loop, False, exc) for _, _, _, fut, loop in writes]
        touched = txn.take_touched()
        if self._on_commit is not None and touched:
            self._on_commit(touched)
        return out

    def _run_batch(self, writes: list[tuple], isolated: bool) -> list[tuple] | None:
        """Run every request; None if one raised while not ``isolated`` (the caller replays)."""
        conn, txn = self._conn, self._txn
        out: list[tuple] = []
        for _, _, fn, fut, loop in writes:
            if isolated:
                conn.execute("SAVEPOINT req")
                marked = txn.mark()
            try:
                value = fn(txn)
            except Exception as exc:
                if not isolated:
                    return None
                conn.execute("ROLLBACK TO req")
                conn.execute("RELEASE req")
                txn.restore(marked)
                out.append((fut, loop, False, exc))
                continue
            if isolated:
                conn.execute("RELEASE req")
            if isinstance(value, Fail):
                out.append((fut, loop, False, value.exc))
            else:
                out.append((fut, loop, True, value))
        return out

    @staticmethod
    def _resolve(results: list[tuple]) -> None:
        by_loop: dict[Any, list[tuple]] = {}
        for r in results:
            by_loop.setdefault(r[1], []).append(r)
        for loop, rs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, rs)
            except RuntimeError:  # loop closed: nobody is waiting any more
                pass


def _settle(results: list[tuple]) -> None:
    for fut, _, ok, value in results:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
