"""Typed configuration of one name server."""

from __future__ import annotations

from dataclasses import dataclass

JOURNAL_MODES = ("wal", "rollback-exclusive")


@dataclass(frozen=True, slots=True)
class NameServerConfig:
    """Tunables of a name server; every field has a documented default.

    ``journal_mode``:
      * ``"wal"`` (default) — local disk: WAL journal with ``synchronous=FULL``;
        reads run on their own connection, concurrently with the writer.
      * ``"rollback-exclusive"`` — shared filesystems (GlusterFS, CephFS), where
        WAL is unsafe: ``journal_mode=DELETE`` + ``locking_mode=EXCLUSIVE``; reads
        then go through the writer's connection (no second connection can read).
    """

    #: Seconds a guard lives before its data is queued for garbage collection (seed, "Create Operation").
    guard_ttl: float = 300.0
    #: Seconds the GC worker sleeps when the queue is empty.
    gc_interval: float = 5.0
    #: Object IDs sent to an object server per GC delete call.
    gc_batch: int = 1000
    #: Seconds the guard-expiry worker sleeps between scans.
    guard_expiry_interval: float = 10.0
    #: "wal" or "rollback-exclusive" (see above).
    journal_mode: str = "wal"
    #: Most write requests applied in one group-commit transaction.
    max_batch: int = 1000
    #: SQLite page cache per connection, in KiB.
    cache_kib: int = 65536
    #: Seconds change-log rows are kept; older ones are trimmed by the guard worker.
    change_log_retention: float = 7 * 86400.0
    #: Change-log rows one trim removes at most (bounds one write transaction).
    change_log_trim_batch: int = 10000
    #: Current object records kept decoded for lookups (ostor.nameserver.cache), about 1 KiB
    #: each; 0 disables.
    record_cache_entries: int = 32768

    def __post_init__(self) -> None:
        if self.journal_mode not in JOURNAL_MODES:
            raise ValueError(f"journal_mode must be one of {JOURNAL_MODES}, got {self.journal_mode!r}")
        if self.guard_ttl <= 0:
            raise ValueError("guard_ttl must be positive")
