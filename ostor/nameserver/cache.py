"""A cache of current object records, so repeated GETs skip the SQLite seek and decode.

Reads fill it on the caller's thread; the writer thread invalidates the keys a
batch touched after its COMMIT and before any writer is answered, so a write
that has been acknowledged is never hidden by a cached older record. A reader
only stores what it read if no batch committed meanwhile (the epoch check):
otherwise its row may predate a commit whose invalidation already ran.
Records are shared between callers and must not be mutated (nobody does:
callers copy with ``dataclasses.replace``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from .records import ObjectRecord


class RecordCache:
    """Current records by (bucket, key), first in first out, at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # OrderedDict: evicting the oldest is O(1) (a dict's first live entry is not, after many deletes).
        self._records: OrderedDict[tuple[str, str], ObjectRecord] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0
        self.hits = 0
        self.misses = 0

    def get(self, bucket: str, key: str) -> ObjectRecord | None:
        """The cached current record, or None."""
        record = self._records.get((bucket, key))
        if record is None:
            self.misses += 1
        else:
            self.hits += 1
        return record

    @property
    def epoch(self) -> int:
        """Read before the SQLite lookup whose result may be stored."""
        return self._epoch

    def store(self, record: ObjectRecord, epoch: int) -> None:
        """Keep a record read while ``epoch`` was current, unless a batch committed since."""
        if self.capacity <= 0:
            return
        with self._lock:
            if self._epoch != epoch:
                return
            records = self._records
            if len(records) >= self.capacity:
                records.popitem(last=False)
            records[(record.bucket, record.key)] = record

    def invalidate(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Writer thread, after a commit (or rollback): forget every touched (bucket, key bytes)."""
        with self._lock:
            self._epoch += 1
            records = self._records
            if records:
                for bucket, key in keys:
                    records.pop((bucket, key.decode()), None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._epoch += 1
            self._records.clear()
