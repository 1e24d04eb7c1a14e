"""Listing across name servers: a k-way merge of sorted per-shard pages.

Every name server returns its own sorted page, with its own common prefixes
already rolled up and skipped past. The merge interleaves those streams,
emits each common prefix once even when several shards hold names under it,
and stops at ``limit`` entries. Truncation is exact: a listing is truncated
only when a further *distinct* entry exists, so a page never ends with a
promise of more that the next page cannot keep.

Shards are read in growing steps, not a whole page each: the names of one
directory live on one shard, so a page of a recursive listing mostly comes
from one or two shards, and a full page from every shard would read and
decode up to four times the rows the page shows.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ostor.nameserver.records import ListEntry, ListPage

#: Fetch the next page of one shard: (resume position, how many) -> page.
PageFetcher = Callable[[object, int], Awaitable[ListPage]]
#: Where a shard resumes after the given entry.
ResumeKey = Callable[[ListEntry], object]
#: The smallest first read of a shard (each read is a name-server round trip).
MIN_FIRST_FETCH = 32


@dataclass
class _Shard:
    fetch: PageFetcher
    resume: object
    step: int  # rows the next read asks for (doubles after each read)
    buffer: deque = field(default_factory=deque)
    more: bool = True

    async def fill(self, need: int, resume_key: ResumeKey) -> None:
        """Fetch more rows (at most ``need``) when the buffer ran dry and the shard has more."""
        if self.buffer or not self.more:
            return
        page = await self.fetch(self.resume, max(1, min(need, self.step)))
        self.step *= 2
        self.buffer.extend(page.entries)
        self.more = page.truncated and bool(page.entries)
        if page.entries:
            self.resume = resume_key(page.entries[-1])


@dataclass
class MergedPage:
    """A merged listing page: entries in order, whether more exist."""

    entries: list[ListEntry]
    truncated: bool


async def merge_pages(
    fetchers: Sequence[PageFetcher],
    start: object,
    limit: int,
    resume_key: ResumeKey,
) -> MergedPage:
    """Merge the sorted streams of every shard into one page of at most ``limit`` entries.

    Entries sort by key; entries with equal keys from different shards are
    common prefixes (a key lives on exactly one shard), and are emitted once.
    Versions of one key come from one shard, in that shard's order.
    """
    if limit <= 0:
        return MergedPage([], False)
    want = limit + 1
    first = min(want, max(MIN_FIRST_FETCH, math.ceil(want / max(1, len(fetchers))) + 1))
    shards = [_Shard(fetch, start, first) for fetch in fetchers]
    heap: list[tuple[str, int, int]] = []
    seq = 0
    entries: list[ListEntry] = []
    last_prefix: str | None = None

    async def push_next(index: int) -> None:
        nonlocal seq
        shard = shards[index]
        await shard.fill(want - len(entries), resume_key)
        if shard.buffer:
            heapq.heappush(heap, (shard.buffer[0].key, index, seq))
            seq += 1

    for index in range(len(shards)):
        await push_next(index)

    while heap:
        key, index, _ = heap[0]
        entry = shards[index].buffer[0]
        if entry.is_prefix and key == last_prefix:
            heapq.heappop(heap)
            shards[index].buffer.popleft()
            await push_next(index)
            continue
        if len(entries) == limit:
            return MergedPage(entries, True)
        heapq.heappop(heap)
        shards[index].buffer.popleft()
        entries.append(entry)
        if entry.is_prefix:
            last_prefix = key
        await push_next(index)
    return MergedPage(entries, False)
