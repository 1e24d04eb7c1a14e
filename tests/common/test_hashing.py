"""DigestPipe: digests computed in worker threads equal hashing the whole body inline."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from ostor.common import hashing
from ostor.common.hashing import DigestPipe


@pytest.fixture
def executor():
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown()


@pytest.mark.parametrize("size", [0, 1, 5000, 3 * (1 << 20) + 7, 40 * (1 << 20)])
async def test_digests_match_inline_hashing(executor, size: int) -> None:
    data = os.urandom(size)
    md5, sha = hashlib.md5(), hashlib.sha256()
    pipe = DigestPipe((md5, sha), executor)
    rng = random.Random(size)
    pos = 0
    while pos < size:
        n = rng.randint(1, 600_000)
        await pipe.update(data[pos:pos + n])
        pos += n
    await pipe.finish()
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert sha.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_reused_writable_buffers_are_copied(executor) -> None:
    md5, expected = hashlib.md5(), hashlib.md5()
    pipe = DigestPipe((md5,), executor)
    buffer = bytearray(1 << 20)
    for i in range(20):
        buffer[:] = bytes([i]) * len(buffer)  # the producer reuses its buffer at once
        expected.update(buffer)
        await pipe.update(memoryview(buffer))
    await pipe.finish()
    assert md5.digest() == expected.digest()


async def test_backlog_bounds_what_is_queued(executor, monkeypatch) -> None:
    monkeypatch.setattr(hashing, "HASH_BATCH_BYTES", 1000)
    monkeypatch.setattr(hashing, "HASH_BACKLOG_BYTES", 4000)
    seen = []

    class Slow:
        def update(self, data) -> None:
            seen.append(len(data))
            import time
            time.sleep(0.002)

    pipe = DigestPipe((Slow(),), executor)
    for _ in range(50):
        await pipe.update(b"x" * 1000)
        assert pipe._backlog <= 4000 + 1000
    await pipe.finish()
    assert sum(seen) == 50 * 1000


async def test_without_an_executor_everything_is_inline() -> None:
    md5 = hashlib.md5()
    pipe = DigestPipe((md5,), None)
    for _ in range(5):
        await pipe.update(b"y" * (1 << 20))
    await pipe.finish()
    assert md5.digest() == hashlib.md5(b"y" * (5 << 20)).digest()


async def test_more_streams_than_threads_all_progress(monkeypatch) -> None:
    """With one hash thread and three uploads, no upload waits for another to finish."""
    import time

    monkeypatch.setattr(hashing, "HASH_BATCH_BYTES", 1000)
    monkeypatch.setattr(hashing, "HASH_BACKLOG_BYTES", 4000)
    first_hashed: dict[int, float] = {}

    class Slow:
        def __init__(self, stream: int) -> None:
            self.stream = stream

        def update(self, data) -> None:
            first_hashed.setdefault(self.stream, time.monotonic())
            time.sleep(0.001)

    finished: dict[int, float] = {}
    with ThreadPoolExecutor(1) as pool:
        async def upload(stream: int) -> None:
            pipe = DigestPipe((Slow(stream),), pool)
            for _ in range(60):
                await pipe.update(b"z" * 1000)
            await pipe.finish()
            finished[stream] = time.monotonic()

        await asyncio.wait_for(asyncio.gather(*(upload(i) for i in range(3))), 30)
    assert max(first_hashed.values()) < min(finished.values())


async def test_inline_digests_are_fed_at_once(executor) -> None:
    class Inline:
        inline = True

        def __init__(self) -> None:
            self.seen = 0

        def update(self, data) -> None:
            self.seen += len(data)

    fast, md5 = Inline(), hashlib.md5()
    pipe = DigestPipe((fast, md5), executor)
    for _ in range(3):
        await pipe.update(b"q" * (1 << 20))
        assert fast.seen % (1 << 20) == 0 and fast.seen > 0  # no batching, no thread
    await pipe.finish()
    assert fast.seen == 3 << 20 and md5.digest() == hashlib.md5(b"q" * (3 << 20)).digest()


async def test_a_large_batch_is_queued_while_the_previous_one_hashes(executor, monkeypatch) -> None:
    """Batches bigger than the backlog: one hashes while the next waits, never more than two."""
    monkeypatch.setattr(hashing, "HASH_BATCH_BYTES", 1000)
    monkeypatch.setattr(hashing, "HASH_BACKLOG_BYTES", 4000)
    import threading

    release = threading.Event()
    started = threading.Event()

    class Gated:
        def update(self, data) -> None:
            started.set()
            release.wait(10)

    pipe = DigestPipe((Gated(),), executor)
    await pipe.update(b"x" * 8000)  # queued; the worker blocks hashing it
    assert await asyncio.to_thread(started.wait, 5)
    # The second batch must not wait for the first one to finish: the worker has it next.
    await asyncio.wait_for(pipe.update(b"y" * 8000), 1)
    third = asyncio.ensure_future(pipe.update(b"z" * 8000))
    await asyncio.sleep(0.2)
    assert not third.done()  # a third one waits: at most two batches are held
    release.set()
    await asyncio.wait_for(third, 5)
    await asyncio.wait_for(pipe.finish(), 5)
