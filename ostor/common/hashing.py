"""Digests of a streamed body, computed beside the event loop instead of on it.

MD5 (the ETag) runs at about 700 MiB/s on one core, which makes it the floor
of a large PUT when the loop thread computes it between socket reads. A
:class:`DigestPipe` batches a stream's chunks and hands the batches, in order,
to one worker job at a time (hashlib releases the GIL for buffers over 2 KiB),
while the loop goes on receiving. The producer waits only when more than
``HASH_BACKLOG_BYTES`` are queued, which bounds the memory held for hashing.
Bodies smaller than one batch are hashed inline: a thread hop would cost more.
A stream that fails midway simply drops its pipe: the worker holds only
immutable bytes and finishes harmlessly.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

#: Bytes gathered before a batch is queued for the worker.
HASH_BATCH_BYTES = 1 << 20
#: Queued, not yet hashed bytes beyond which the producer waits.
HASH_BACKLOG_BYTES = 4 << 20


class Digest(Protocol):
    """Anything with hashlib's ``update``."""

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
        self._digests = tuple(digests)
        self._executor = executor
        self._batch: list = []
        self._batch_bytes = 0
        self._lock = threading.Lock()
        self._queued: deque[tuple[list, int]] = deque()  # guarded by _lock
        self._backlog = 0                                 # queued bytes; guarded by _lock
        self._draining = False                            # a drain job runs; guarded by _lock
        self._job: asyncio.Future | None = None           # the latest drain job
        self._room: asyncio.Future | None = None          # the producer waiting for room; _lock

    async def update(self, chunk: bytes | memoryview) -> None:
        """Add a chunk; a full batch is queued for the worker (waiting while the backlog is full).

        The chunk is kept until hashed, so a writable buffer is copied first:
        its producer may reuse it.
        """
        if isinstance(chunk, memoryview) and not chunk.readonly or isinstance(chunk, bytearray):
            chunk = bytes(chunk)
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes < HASH_BATCH_BYTES or self._executor is None:
            return
        if self._backlog >= HASH_BACKLOG_BYTES:
            await self._wait_for_room()
        batch, size = self._batch, self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        with self._lock:
            self._queued.append((batch, size))
            self._backlog += size
            if self._draining:
                return  # the running job takes it
            self._draining = True
        self._job = asyncio.get_running_loop().run_in_executor(self._executor, self._drain)

    async def _wait_for_room(self) -> None:
        # Resume once the backlog is down to half, not empty: the worker keeps hashing meanwhile.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._backlog < HASH_BACKLOG_BYTES or not self._draining:
                return
            self._room = room = loop.create_future()
        await room

    def _drain(self) -> None:
        # Worker thread: hash queued batches in order until none is left.
        while True:
            with self._lock:
                if not self._queued:
                    self._draining = False
                    self._wake()
                    return
                batch, size = self._queued.popleft()
            _update_all(self._digests, batch)
            with self._lock:
                self._backlog -= size
                if self._backlog <= HASH_BACKLOG_BYTES // 2:
                    self._wake()

    def _wake(self) -> None:
        # Called with _lock held, in the worker thread.
        room, self._room = self._room, None
        if room is not None:
            room.get_loop().call_soon_threadsafe(_resolve, room)

    async def finish(self) -> None:
        """Hash what is left; the digests are complete when this returns."""
        if self._job is not None:
            await self._job  # the last job ran until the queue was empty
            self._job = None
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        _update_all(self._digests, batch)
