"""A writer process for the crash test: puts, overwrites and deletes, logging each step.

It prints ``BEGIN <op> <key> <gen>`` before an operation and ``ACK <op> <key> <gen>``
only after the engine returned, flushing each line, so the parent knows exactly
what was acknowledged when it kills this process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import sys

from ostor.common.errors import BucketAlreadyOwnedByYou
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig

SIZES = [1, 100, 4095, 4096, 4097, 30 * 1024, 129 * 1024, 700_000, 9 * 1024 * 1024 + 5]


def payload(key: str, gen: int) -> bytes:
    """The deterministic content of generation ``gen`` of ``key``."""
    rnd = random.Random(f"{key}:{gen}")
    return rnd.randbytes(rnd.choice(SIZES))


def say(*words: object) -> None:
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


async def run(data_dir: str, seed: int) -> None:
    rnd = random.Random(seed)
    engine = await Engine.open(data_dir, ServiceConfig(ns_count=2, os_count=2))
    try:
        await engine.create_bucket("crash", "tester")
    except BucketAlreadyOwnedByYou:
        pass
    say("READY")
    gens: dict[str, int] = {}

    async def one(worker: int) -> None:
        for step in range(10**9):
            key = f"w{seed}-{worker}/k{rnd.randrange(12)}"
            gen = gens.get(key, 0) + 1
            gens[key] = gen
            if rnd.random() < 0.2:
                say("BEGIN", "del", key, gen)
                await engine.delete_object("crash", key)
                say("ACK", "del", key, gen)
            else:
                say("BEGIN", "put", key, gen)
                await engine.put_object("crash", key, payload(key, gen))
                say("ACK", "put", key, gen)

    await asyncio.gather(*(one(w) for w in range(4)))


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], int(sys.argv[2])))
