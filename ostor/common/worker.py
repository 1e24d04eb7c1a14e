"""The one shape of background work (GC, defragmentation, guard expiry).

A worker is a step function plus a wait: ``step()`` does a bounded piece of
work and says whether more is pending; the loop sleeps ``interval`` seconds
when idle. Workers are observable (counters, last error) and stoppable, and a
test can drive them deterministically with :meth:`Worker.run_until_idle`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

StepFunction = Callable[[], Awaitable[bool]]


@dataclass
class WorkerStats:
    """What a worker has done so far."""

    steps: int = 0
    busy_steps: int = 0
    errors: int = 0
    last_error: str | None = None
    last_step_at: float | None = None


@dataclass
class Worker:
    """Runs ``step`` repeatedly in the background until stopped.

    ``step`` returns True when it did work and more may be pending (run again at
    once), False when idle (wait ``interval`` seconds or until woken).
    """

    name: str
    step: StepFunction
    interval: float = 1.0
    stats: WorkerStats = field(default_factory=WorkerStats)
    _task: asyncio.Task | None = None
    _wake: asyncio.Event | None = None
    _stopping: bool = False

    def start(self) -> None:
        """Start the loop on the running event loop."""
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Make an idle worker run its next step now."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        """Stop the loop after the current step."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            self.wake()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def run_once(self) -> bool:
        """Run one step now (outside the loop) and record it."""
        self.stats.steps += 1
        self.stats.last_step_at = time.time()
        busy = await self.step()
        if busy:
            self.stats.busy_steps += 1
        return busy

    async def run_until_idle(self, max_steps: int = 1_000_000) -> int:
        """Run steps until one reports idle; returns how many were busy."""
        busy = 0
        for _ in range(max_steps):
            if not await self.run_once():
                break
            busy += 1
        return busy

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the worker alive; record what broke
                self.stats.errors += 1
                self.stats.last_error = repr(exc)
                log.exception("worker %s step failed", self.name)
                busy = False
            if busy:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
