"""Digests of a streamed body, computed beside the event loop instead of on it.

MD5 (the ETag) runs at about 700 MiB/s on one core, which makes it the floor
of a large PUT when the loop thread computes it between socket reads. A
:class:`DigestPipe` batches a stream's chunks and hands the batches, in order,
to one worker job at a time (hashlib releases the GIL for buffers over 2 KiB),
while the loop goes on receiving. A job hashes a few batches and then queues
itself again, so more concurrent uploads than hash threads all make progress.
The producer waits only when more than ``HASH_BACKLOG_BYTES`` (or two of its
batches, if larger) are queued, which bounds the memory held for hashing.
Bodies smaller than one batch are hashed inline: a thread hop would cost more.
A stream that fails midway simply drops its pipe: the worker holds only
immutable bytes and finishes harmlessly.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

#: Bytes gathered before a batch is queued for the worker.
HASH_BATCH_BYTES = 1 << 20
#: Queued, not yet hashed bytes beyond which the producer waits (at least two batches).
HASH_BACKLOG_BYTES = 4 << 20
#: Batches one job hashes before it yields its thread to other streams' jobs.
_BATCHES_PER_TURN = 4


class Digest(Protocol):
    """Anything with hashlib's ``update``.

    A digest whose ``inline`` attribute is true (hardware CRCs at tens of GiB/s)
    is fed at once on the caller's thread: the hop to a worker would cost more.
    """

    def update(self, data: Any, /) -> None: ...


def _update_all(digests: Sequence[Digest], chunks: list) -> None:
    for chunk in chunks:
        for digest in digests:
            digest.update(chunk)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class DigestPipe:
    """Feed ``digests`` with a stream's chunks, large batches in ``executor``'s threads."""

    def __init__(self, digests: Sequence[Digest], executor: Executor | None) -> None:
        self._inline = tuple(d for d in digests if getattr(d, "inline", False))
        self._digests = tuple(d for d in digests if not getattr(d, "inline", False))
        self._executor = executor if self._digests else None
        self._batch: list = []
        self._batch_bytes = 0
        self._lock = threading.Lock()
        # Guarded by _lock:
        self._queued: deque[tuple[list, int]] = deque()
        self._backlog = 0                          # queued, not yet hashed bytes
        self._draining = False                     # a drain job is queued or running
        self._room: asyncio.Future | None = None   # the producer waiting for the backlog to shrink
        self._idle: asyncio.Future | None = None   # finish() waiting for the last job
        self._error: BaseException | None = None   # what a drain job raised

    async def update(self, chunk: bytes | memoryview) -> None:
        """Add a chunk; a full batch is queued for the worker (waiting while the backlog is full).

        The chunk is kept until hashed, so a writable buffer is copied first:
        its producer may reuse it.
        """
        for digest in self._inline:
            digest.update(chunk)
        if not self._digests:
            return
        if isinstance(chunk, memoryview) and not chunk.readonly or isinstance(chunk, bytearray):
            chunk = bytes(chunk)
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes < HASH_BATCH_BYTES or self._executor is None:
            return
        batch, size = self._batch, self._batch_bytes
        # Room for two batches at least: the worker hashes one while the next waits, so it
        # never idles between them (a large body comes in 8 MiB chunks, a batch each).
        limit = max(HASH_BACKLOG_BYTES, 2 * size)
        while self._backlog + size > limit:
            await self._wait(lambda: self._backlog + size <= limit, "_room")
        self._batch, self._batch_bytes = [], 0
        with self._lock:
            self._queued.append((batch, size))
            self._backlog += size
            if self._draining:
                return  # the queued or running job takes it
            self._draining = True
        self._executor.submit(self._drain)

    async def _wait(self, ready: Callable[[], bool], slot: str) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if ready() or not self._draining:
                return
            future = loop.create_future()
            setattr(self, slot, future)
        await future

    def _drain(self) -> None:
        # Worker thread. A job hashes a few batches, then queues itself again behind the
        # other streams' jobs: with more uploads than hash threads, none of them starves.
        hashed = 0
        try:
            while True:
                with self._lock:
                    if not self._queued:
                        self._draining = False
                        self._wake("_room")
                        self._wake("_idle")
                        return
                    if hashed == _BATCHES_PER_TURN:
                        try:
                            self._executor.submit(self._drain)  # type: ignore[union-attr]
                            return
                        except RuntimeError:  # the executor is shutting down: finish here
                            pass
                    batch, size = self._queued.popleft()
                _update_all(self._digests, batch)
                hashed += 1
                with self._lock:
                    self._backlog -= size
                    self._wake("_room")
        except BaseException as exc:  # noqa: BLE001 - handed to finish()
            with self._lock:
                self._error = exc
                self._queued.clear()
                self._draining = False
                self._wake("_room")
                self._wake("_idle")

    def _wake(self, slot: str) -> None:
        # Called with _lock held, in the worker thread.
        future = getattr(self, slot)
        if future is not None:
            setattr(self, slot, None)
            try:
                future.get_loop().call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    async def finish(self) -> None:
        """Hash what is left; the digests are complete when this returns."""
        await self._wait(lambda: False, "_idle")
        if self._error is not None:
            raise self._error
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        _update_all(self._digests, batch)
