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

_WRITE, _READ = 0, 1


class Fail:
    """Returned by a request to keep its writes (e.g. data queued for GC) yet raise ``exc`` to the caller."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class GroupCommitWriter:
    """Owns the write connection; applies queued requests in group-committed transactions."""

    def __init__(self, conn: sqlite3.Connection, txn: Txn, max_batch: int = 1000, name: str = "ns-writer") -> None:
        self._conn = conn
        self._txn = txn
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        #: Transactions committed so far (group commit makes this far smaller than requests).
        self.transactions = 0
        #: Write requests applied so far.
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

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
        self._queue.put((kind, fn, fut, loop))
        return fut

    def close(self) -> None:
        """Finish queued work, then stop the thread (blocking; call via a thread from async code)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    # -- writer thread ---------------------------------------------------------------
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
            writes = [i for i in items if i[0] == _WRITE]
            reads = [i for i in items if i[0] == _READ]
            results: list[tuple] = []
            if writes:
                results.extend(self._apply(writes))
            for _, fn, fut, loop in reads:
                try:
                    results.append((fut, loop, True, fn(self._conn)))
                except Exception as exc:
                    results.append((fut, loop, False, exc))
            self._resolve(results)

    def _apply(self, writes: list[tuple]) -> list[tuple]:
        conn, txn = self._conn, self._txn
        out: list[tuple] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for _, fn, fut, loop in writes:
                conn.execute("SAVEPOINT req")
                try:
                    value = fn(txn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO req")
                    conn.execute("RELEASE req")
                    out.append((fut, loop, False, exc))
                    continue
                conn.execute("RELEASE req")
                if isinstance(value, Fail):
                    out.append((fut, loop, False, value.exc))
                else:
                    out.append((fut, loop, True, value))
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
            out = [(fut, loop, False, exc) for _, _, fut, loop in writes]
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
