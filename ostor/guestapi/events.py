"""Per-instance event fan-out: config and device events to the instance's open event streams.

An event is encoded once when published and queued to every subscription of
that instance that asked for its type; publication is synchronous, so events
reach each stream in the order the changes were made. A subscriber that
falls too far behind is closed rather than silently missing events.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections import defaultdict
from typing import Any

EVENT_TYPES = frozenset({"config", "device"})
#: Queued events per subscription before it is considered stuck and closed.
MAX_BACKLOG = 4096
_CLOSED = None  # the sentinel that ends a subscription's stream


def rfc3339_ns(ns: int | None = None) -> str:
    """``2017-12-21T23:28:26.846603815Z``: RFC 3339 in UTC with nanoseconds (what Go's RFC3339Nano prints)."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def encode_event(event_type: str, metadata: dict[str, Any]) -> str:
    """One event as its JSON text (no newline)."""
    return json.dumps({"timestamp": rfc3339_ns(), "type": event_type, "metadata": metadata},
                      ensure_ascii=False)


def parse_types(value: str | None) -> frozenset[str]:
    """The ``?type=config,device`` filter; absent or empty means every type."""
    if not value:
        return EVENT_TYPES
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class Subscription:
    """One open event stream of one instance."""

    def __init__(self, instance: str, types: frozenset[str]) -> None:
        self.instance = instance
        self.types = types
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    def offer(self, event_type: str, text: str) -> None:
        """Queue an event if this stream asked for its type."""
        if self.closed or event_type not in self.types:
            return
        if self.queue.qsize() >= MAX_BACKLOG:
            self.close()
            return
        self.queue.put_nowait(text)

    def close(self) -> None:
        """End the stream (the instance was deleted or lost access, or the reader is stuck)."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(_CLOSED)

    async def next(self, timeout: float | None = None) -> str | None:
        """The next event's JSON text; None once closed. TimeoutError after ``timeout`` seconds idle."""
        if self.closed and self.queue.empty():
            return None
        return await asyncio.wait_for(self.queue.get(), timeout)


class EventHub:
    """Subscriptions by instance name."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, instance: str, types: frozenset[str]) -> Subscription:
        """Open a stream for ``instance`` limited to ``types``."""
        sub = Subscription(instance, types)
        self._subs[instance].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a stream (its reader has gone)."""
        subs = self._subs.get(sub.instance)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.instance]

    def has_subscribers(self, instance: str) -> bool:
        """Whether anyone listens to ``instance`` (saves encoding events nobody reads)."""
        return bool(self._subs.get(instance))

    def publish(self, instance: str, event_type: str, metadata: dict[str, Any]) -> None:
        """Send an event to every stream of ``instance`` that asked for ``event_type``."""
        subs = self._subs.get(instance)
        if not subs:
            return
        text = encode_event(event_type, metadata)
        for sub in list(subs):
            sub.offer(event_type, text)

    def close_instance(self, instance: str) -> None:
        """End every stream of ``instance`` (revoked: deleted or guest API turned off)."""
        for sub in self._subs.pop(instance, set()):
            sub.close()

    def count(self) -> int:
        """Open streams, over every instance."""
        return sum(len(s) for s in self._subs.values())
