"""NameServer: one name-server service backed by one SQLite database (seed, "Name Server").

Writes go to a group-committing writer (``writer.py``) and are durable
before their coroutine returns. Reads (lookup, listings) run directly
on the caller's thread on a separate connection in WAL mode — a lookup is a
one-row B-tree seek plus a msgpack decode — or through the writer's connection
in ``rollback-exclusive`` mode, where no second connection may read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ostor.common.errors import ServiceStoppedError
from ostor.common.ids import format_id
from ostor.common.worker import Worker
from ostor.objectserver.types import SyncCalls

from . import buckets, codec, gc, listing, multipart, objects, schema
from .inventory import DataRef, inventory
from .cache import RecordCache
from .committer import CommitThread
from .config import NameServerConfig
from .lock import DirectoryLock
from .records import (BucketRecord, BucketUsage, DeleteOutcome, ListEntry, ListPage, ObjectRecord,
                      PartRecord, UploadEntry, UploadPage, UploadRecord, Versioning, WriteCondition)
from .txn import Txn
from .writer import GroupCommitWriter

__all__ = ["CommitThread", "DataRef", "NameServer", "NameServerConfig"]

log = logging.getLogger(__name__)


class NameServer:
    """Names, versions, buckets, multipart tables, guards and GC of one NS service directory."""

    def __init__(self, directory: Path, service_id: int, os_resolver: Callable[[int], Any],
                 config: NameServerConfig, lock: DirectoryLock, wconn, rconn,
                 committer: CommitThread | None = None) -> None:
        self.directory = directory
        self.service_id = service_id
        self.config = config
        self._os_resolver = os_resolver
        self._lock = lock
        self._wconn = wconn
        self._rconn = rconn  # None in rollback-exclusive mode
        #: Current records for the lookup fast path (only with a reader connection of its own).
        self.records = RecordCache(config.record_cache_entries if rconn is not None else 0)
        self._writer = GroupCommitWriter(wconn, Txn(wconn), config.max_batch, name=f"ns-{format_id(service_id)}",
                                         on_commit=self.records.invalidate, committer=committer)
        self._gc_lock = asyncio.Lock()
        self._closed = False
        self._closing = False
        self.gc_worker = Worker(f"ns-{format_id(service_id)}-gc", self._gc_step, config.gc_interval)
        self.guard_worker = Worker(f"ns-{format_id(service_id)}-guards", self._guard_step,
                                   config.guard_expiry_interval)

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def create_service(cls, directory: Path | str, service_id: int) -> None:
        """Create a new service directory with an empty database; FileExistsError if it exists."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=False)
        schema.initialise(directory / schema.DB_NAME, service_id)

    @classmethod
    async def open(cls, directory: Path | str, service_id: int, os_resolver: Callable[[int], Any],
                   config: NameServerConfig | None = None, committer: CommitThread | None = None) -> NameServer:
        """Lock and validate an existing service directory; CorruptStoreError if its database is not sound.

        ``committer``: the commit thread to share with the process's other name servers
        (see :mod:`.committer`); the name server makes its own without one.
        """
        config = config or NameServerConfig()
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such name-server directory")
        lock = DirectoryLock(directory)
        wconn = rconn = None
        try:
            path = directory / schema.DB_NAME
            await asyncio.to_thread(schema.check, path, service_id)

            def _open():
                conn = schema.connect(path, config, writer=True)
                schema.migrate(conn)
                return conn
            wconn = await asyncio.to_thread(_open)
            if config.journal_mode == "wal":
                rconn = schema.connect(path, config, writer=False)
            return cls(directory, service_id, os_resolver, config, lock, wconn, rconn, committer)
        except BaseException:
            for conn in (rconn, wconn):
                if conn is not None:
                    conn.close()
            lock.release()
            raise

    async def start(self) -> None:
        """Start the GC and guard-expiry workers."""
        self.gc_worker.start()
        self.guard_worker.start()

    async def close(self) -> None:
        """Stop the workers, finish queued writes, close the database and release the lock."""
        if self._closing:
            return
        self._closing = True
        # Workers first: a step still running once requests are refused would fail, and log it.
        await self.guard_worker.stop()
        await self.gc_worker.stop()
        self._closed = True
        await self._writer.close()
        if self._rconn is not None:
            self._rconn.close()
        self._wconn.close()
        self._lock.release()

    @property
    def transactions(self) -> int:
        """Write transactions committed since open (group commit keeps this below the request count)."""
        return self._writer.transactions

    # -- plumbing --------------------------------------------------------------------------------
    def _write(self, fn: Callable[[Txn], Any], before_commit: SyncCalls = ()) -> asyncio.Future:
        if self._closed:
            raise ServiceStoppedError(f"name server {format_id(self.service_id)} is closed")
        return self._writer.submit(fn, before_commit)

    async def _read(self, fn: Callable, *args: Any) -> Any:
        if self._closed:
            raise ServiceStoppedError(f"name server {format_id(self.service_id)} is closed")
        if self._rconn is not None:
            return fn(self._rconn, *args)
        return await self._writer.submit_read(lambda conn: fn(conn, *args))

    # -- guards and GC ---------------------------------------------------------------------------
    async def guard(self, os_id: int, object_id: bytes, ttl: float | None = None) -> None:
        """Durably guard data about to be written to ``os_id``; it is collected unless named in time."""
        ttl = self.config.guard_ttl if ttl is None else ttl
        await self._write(lambda t: gc.guard(t, os_id, object_id, ttl))

    async def guard_many(self, os_id: int, object_ids: list[bytes], ttl: float | None = None) -> float:
        """Durably guard several future objects in one write; returns the guards' expiry time."""
        ttl = self.config.guard_ttl if ttl is None else ttl
        ids = list(object_ids)
        return await self._write(lambda t: gc.guard_many(t, os_id, ids, ttl))

    async def renew_guard(self, object_id: bytes, ttl: float | None = None) -> float:
        """Extend a live guard (long uploads); GuardMissingError once it has expired."""
        ttl = self.config.guard_ttl if ttl is None else ttl
        return await self._write(lambda t: gc.renew(t, object_id, ttl))

    async def release_guard(self, object_id: bytes) -> None:
        """Drop a guard and queue its data for GC (the upload failed)."""
        await self._write(lambda t: gc.release(t, object_id))

    async def expire_guards(self, now: float | None = None) -> int:
        """Queue the data of every expired guard for GC (same transaction); returns how many."""
        at = time.time() if now is None else now
        return await self._write(lambda t: gc.expire(t, at))

    async def collect_garbage(self, limit: int = 1000) -> int:
        """Delete queued data on its object servers, then forget it; returns how many were collected.

        Rows of an object server whose delete fails stay queued for the next round.
        """
        async with self._gc_lock:
            rows = await self._read(gc.pending, limit)
            by_os: dict[int, list[tuple[int, bytes]]] = {}
            for seq, os_id, object_id in rows:
                by_os.setdefault(os_id, []).append((seq, object_id))
            done: list[int] = []
            for os_id, items in by_os.items():
                try:
                    await self._os_resolver(os_id).delete([oid for _, oid in items])
                except Exception:
                    log.exception("GC: delete on object server %s failed", format_id(os_id))
                    continue
                done.extend(seq for seq, _ in items)
            if done:
                await self._write(lambda t: gc.done(t, done))
            return len(done)

    async def gc_pending(self) -> list[tuple[int, bytes]]:
        """The queued (os_id, object_id) pairs, oldest first (for tests and the checker)."""
        return [(os_id, oid) for _, os_id, oid in await self._read(gc.pending, 1 << 62)]

    async def inventory(self) -> list[DataRef]:
        """Every data reference held here (versions, parts, guards, GC queue), for the volume checker."""
        return await self._read(inventory)

    async def _gc_step(self) -> bool:
        return await self.collect_garbage(self.config.gc_batch) >= self.config.gc_batch

    async def _guard_step(self) -> bool:
        if await self.expire_guards():
            self.gc_worker.wake()
        cutoff = time.time() - self.config.change_log_retention
        return await self.trim_change_log(cutoff) >= self.config.change_log_trim_batch

    async def trim_change_log(self, before: float, limit: int | None = None) -> int:
        """Delete up to ``limit`` of the oldest change-log rows written before ``before`` (epoch
        seconds); returns how many went. Without it the log would grow with every write forever."""
        limit = limit or self.config.change_log_trim_batch
        before_ns = int(before * 1e9)
        return await self._write(lambda t: t.execute(
            "DELETE FROM change_log WHERE seq IN (SELECT seq FROM change_log ORDER BY seq LIMIT ?) "
            "AND time_ns < ?", (limit, before_ns)).rowcount)

    # -- names -----------------------------------------------------------------------------------
    async def create_name(self, record: ObjectRecord, guard: bytes | None, versioning: Versioning,
                          condition: WriteCondition | None = None,
                          before_commit: SyncCalls = ()) -> ObjectRecord:
        """Commit a new version while ``guard`` is alive, consuming it (GuardMissingError otherwise).

        Fills ``last_modified_ns`` and ``version_id`` (a new id when ENABLED, else "null",
        replacing the key's null version). ``guard=None`` is for records whose link reuses
        existing segments (copy in place). A failed ``condition`` raises PreconditionFailed
        and queues the guarded data for GC in the same transaction. ``record`` is handed
        over: the committed record returned is that object, filled in. ``before_commit``:
        the fdatasyncs that make the named data durable (an in-process object server's
        deferred create), run in the commit thread just before the commit.
        """
        versioning = Versioning(versioning)
        return await self._write(lambda t: objects.create_name(t, record, guard, versioning, condition),
                                 before_commit)

    async def lookup(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRecord:
        """The current version (maybe a delete marker) or the given version; NoSuchKey / NoSuchVersion."""
        conn = self._rconn
        if conn is not None and not self._closed:  # the GET fast path: no thread hop
            if version_id is not None:
                return objects.lookup(conn, bucket, key, version_id)
            record = self.records.get(bucket, key)
            if record is None:
                epoch = self.records.epoch
                record = objects.lookup(conn, bucket, key, None)
                self.records.store(record, epoch)
            return record
        return await self._read(objects.lookup, bucket, key, version_id)

    async def delete_name(self, bucket: str, key: str, version_id: str | None,
                          versioning: Versioning) -> DeleteOutcome:
        """S3 DeleteObject: remove a version, or add a delete marker, per the bucket's versioning."""
        versioning = Versioning(versioning)
        return await self._write(lambda t: objects.delete_name(t, bucket, key, version_id, versioning))

    async def update_record(self, bucket: str, key: str, version_id: str | None, **fields: Any) -> ObjectRecord:
        """Change acl/tags/metadata/headers of an existing version in place."""
        return await self._write(lambda t: objects.update_record(t, bucket, key, version_id, fields))

    async def list_names(self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "",
                         limit: int = 1000) -> ListPage:
        """Current visible keys and common prefixes strictly after ``after``, in UTF-8 byte order."""
        items, truncated = await self._read(listing.list_names, bucket, prefix, delimiter, after, limit)
        return ListPage([ListEntry(k.decode(), None if r is None else codec.decode_object(bucket, r))
                         for k, r in items], truncated)

    async def list_versions(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                            version_marker: str = "", limit: int = 1000) -> ListPage:
        """Every version and delete marker, keys ascending and versions newest first (ListObjectVersions)."""
        items, truncated = await self._read(listing.list_versions, bucket, prefix, delimiter, key_marker,
                                            version_marker, limit)
        return ListPage([ListEntry(k.decode(), None if r is None else codec.decode_object(bucket, r))
                         for k, r in items], truncated)

    async def changes(self, since_seq: int = 0, limit: int = 1000) -> list[tuple]:
        """Change-log rows (seq, time_ns, op, bucket, key, version_id) with seq > since_seq."""
        return await self._read(lambda c: c.execute(
            "SELECT seq, time_ns, op, bucket, key, version_id FROM change_log WHERE seq>? ORDER BY seq LIMIT ?",
            (since_seq, limit)).fetchall())

    # -- buckets ---------------------------------------------------------------------------------
    async def bucket_create(self, record: BucketRecord) -> BucketRecord:
        """Create a bucket; BucketAlreadyOwnedByYou or BucketAlreadyExists if the name is taken."""
        return await self._write(lambda t: buckets.create(t, record))

    async def bucket_get(self, name: str) -> BucketRecord:
        """A bucket's record; NoSuchBucket."""
        return await self._read(buckets.get, name)

    async def bucket_update(self, name: str, **changes: Any) -> BucketRecord:
        """Change versioning/acl/policy/owner/attributes/location; bumps the epoch."""
        return await self._write(lambda t: buckets.update(t, name, changes))

    async def bucket_delete(self, name: str) -> None:
        """Remove a bucket record; NoSuchBucket. Emptiness is checked by the engine on every NS."""
        await self._write(lambda t: buckets.delete(t, name))

    async def bucket_list(self, owner: str | None = None) -> list[BucketRecord]:
        """Buckets on this NS sorted by name, optionally of one owner."""
        return await self._read(buckets.list_all, owner)

    async def bucket_has_content(self, bucket: str) -> bool:
        """Whether this NS holds any version, delete marker or upload of ``bucket``."""
        return await self._read(buckets.has_content, bucket)

    async def bucket_usage(self, bucket: str) -> BucketUsage:
        """Counters of ``bucket`` on this NS: every non-marker version, its bytes, and upload parts' bytes."""
        return await self._read(buckets.usage, bucket)

    async def purge_bucket(self, bucket: str, limit: int = 1000) -> int:
        """Remove up to ``limit`` versions/markers/uploads of ``bucket`` (data to GC); returns how many."""
        return await self._write(lambda t: buckets.purge(t, bucket, limit))

    # -- multipart -------------------------------------------------------------------------------
    async def upload_create(self, record: UploadRecord) -> UploadRecord:
        """Start a multipart upload; assigns upload_id and initiated_ns when empty."""
        return await self._write(lambda t: multipart.create(t, record))

    async def upload_get(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        """An upload in progress; NoSuchUpload."""
        return await self._read(multipart.get, bucket, key, upload_id)

    async def part_put(self, bucket: str, key: str, upload_id: str, part: PartRecord,
                       guard: bytes, before_commit: SyncCalls = ()) -> PartRecord | None:
        """Store a part under its guard, replacing a part of the same number; returns the replaced part.

        ``before_commit``: as for :meth:`create_name`, the fdatasyncs the part's data still needs.
        """
        return await self._write(lambda t: multipart.part_put(t, bucket, key, upload_id, part, guard),
                                 before_commit)

    async def parts_list(self, bucket: str, key: str, upload_id: str, marker: int = 0,
                         limit: int = 1000) -> tuple[list[PartRecord], bool]:
        """Parts numbered above ``marker`` and whether more follow; NoSuchUpload."""
        return await self._read(multipart.parts_list, bucket, key, upload_id, marker, limit)

    async def upload_complete(self, bucket: str, key: str, upload_id: str, record: ObjectRecord,
                              versioning: Versioning, condition: WriteCondition | None = None) -> ObjectRecord:
        """Turn the upload into a version linking ``record.parts`` (InvalidPart if one is stale)."""
        versioning = Versioning(versioning)
        return await self._write(lambda t: multipart.complete(t, bucket, key, upload_id, record, versioning,
                                                              condition))

    async def upload_abort(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload; its parts go to GC. NoSuchUpload."""
        await self._write(lambda t: multipart.abort(t, bucket, key, upload_id))

    async def uploads_list(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                           upload_id_marker: str = "", limit: int = 1000) -> UploadPage:
        """Uploads in (key, initiation time) order with common prefixes (ListMultipartUploads)."""
        items, truncated = await self._read(listing.list_uploads, bucket, prefix, delimiter, key_marker,
                                            upload_id_marker, limit)
        return UploadPage([UploadEntry(k.decode(), None if r is None else codec.decode_upload(bucket, *r))
                           for k, r in items], truncated)

