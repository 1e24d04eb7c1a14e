"""MemoryNameServer: the in-memory twin of NameServer (same public methods, dicts and sorted lists).

For fast tests of the layers above. Every method mutates state without
awaiting in between, so each call is atomic like one SQLite transaction.
Listing shares :func:`listing.walk` with the real name server.
"""

from __future__ import annotations

import bisect
import copy
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ostor.common.errors import (BucketAlreadyExists, BucketAlreadyOwnedByYou, GuardMissingError, InvalidPart,
                                 MethodNotAllowed, NoSuchBucket, NoSuchKey, NoSuchUpload, NoSuchVersion,
                                 PreconditionFailed)
from ostor.objectserver.types import SyncCalls

from . import buckets as _buckets
from . import objects as _objects
from .config import NameServerConfig
from .inventory import DataRef
from .listing import start_after, walk
from .records import (NULL_VERSION, BucketRecord, BucketUsage, DeleteOutcome, ListEntry, ListPage,
                      ObjectRecord, PartRecord, UploadEntry, UploadPage, UploadRecord, Versioning,
                      WriteCondition)


def _copy(value):
    return copy.deepcopy(value)


def _run_before_commit(calls: SyncCalls) -> None:
    # What the SQLite writer's commit thread does before COMMIT: each distinct call once.
    for call in dict.fromkeys(calls):
        call()


class MemoryNameServer:
    """A name server whose state lives in this process only (lost on close)."""

    def __init__(self, service_id: int, os_resolver: Callable[[int], Any], config: NameServerConfig | None = None):
        self.service_id = service_id
        self.directory = None
        self.config = config or NameServerConfig()
        self._os_resolver = os_resolver
        self._clock = 0
        self._buckets: dict[str, BucketRecord] = {}
        self._keys: dict[str, list[bytes]] = {}  # bucket -> sorted keys with at least one version
        self._versions: dict[tuple[str, bytes], list[ObjectRecord]] = {}  # newest first
        self._guards: dict[bytes, tuple[int, float]] = {}
        self._refs: dict[bytes, int] = {}
        self._gc: list[tuple[int, bytes]] = []
        self._usage: dict[str, list[int]] = {}
        self._log: list[tuple] = []
        self._uploads: dict[str, UploadRecord] = {}
        self._upload_index: dict[str, list[tuple[bytes, int, str]]] = {}
        self._parts: dict[str, dict[int, PartRecord]] = {}
        self.transactions = 0

    # -- lifecycle and helpers -----------------------------------------------------------------
    async def start(self) -> None:
        """Nothing runs in the background; tests call expire_guards / collect_garbage."""

    async def close(self) -> None:
        """Nothing to release."""

    def _now(self) -> int:
        now = time.time_ns()
        self._clock = now if now > self._clock else self._clock + 1
        return self._clock

    def _note(self, op: str, bucket: str, key: str | None = None, vid: str | None = None) -> None:
        self.transactions += 1
        self._log.append((len(self._log) + 1, time.time_ns(), op, bucket, key, vid))

    def _use(self, bucket: str, objects: int = 0, nbytes: int = 0, upload_bytes: int = 0) -> None:
        u = self._usage.setdefault(bucket, [0, 0, 0])
        u[0] += objects
        u[1] += nbytes
        u[2] += upload_bytes

    def _segs(self, rec: ObjectRecord) -> list:
        return [(s.os_id, s.object_id) for s in (rec.link or tuple(p.segment for p in rec.parts))]

    def _unref(self, rec: ObjectRecord) -> None:
        for os_id, oid in self._segs(rec):
            n = self._refs.get(oid, 0) - 1
            if n > 0:
                self._refs[oid] = n
            else:
                self._refs.pop(oid, None)
                self._gc.append((os_id, oid))

    def _take_guard(self, oid: bytes) -> int:
        g = self._guards.get(oid)
        if g is None or g[1] <= time.time():
            raise GuardMissingError(oid)
        del self._guards[oid]
        return g[0]

    def _drop(self, bucket: str, kb: bytes, rec: ObjectRecord) -> None:
        vs = self._versions[(bucket, kb)]
        i = next(i for i, v in enumerate(vs) if v.version_id == rec.version_id)
        del vs[i]
        self._unref(rec)
        if not rec.delete_marker:
            self._use(bucket, -1, -rec.size)
        if not vs:
            del self._versions[(bucket, kb)]
            keys = self._keys[bucket]
            del keys[bisect.bisect_left(keys, kb)]

    def _find(self, bucket: str, kb: bytes, vid: str) -> ObjectRecord | None:
        return next((v for v in self._versions.get((bucket, kb), ()) if v.version_id == vid), None)

    def _commit(self, rec: ObjectRecord, versioning: Versioning, op: str = "put") -> ObjectRecord:
        bucket, kb = rec.bucket, rec.key.encode()
        ns = self._now()
        for _, oid in self._segs(rec):
            self._refs[oid] = self._refs.get(oid, 0) + 1
        if versioning == Versioning.ENABLED:
            vid = _objects.new_version_id(ns)
        else:
            vid = NULL_VERSION
            old = self._find(bucket, kb, NULL_VERSION)
            if old is not None:
                self._drop(bucket, kb, old)
        out = replace(_copy(rec), version_id=vid, last_modified_ns=ns, is_latest=True)
        vs = self._versions.get((bucket, kb))
        if vs is None:
            vs = self._versions[(bucket, kb)] = []
            bisect.insort(self._keys.setdefault(bucket, []), kb)
        vs.insert(0, out)
        if not out.delete_marker:
            self._use(bucket, 1, out.size)
        self._note("marker" if out.delete_marker else op, bucket, rec.key, vid)
        return _copy(out)

    def _current(self, bucket: str, key: str) -> ObjectRecord | None:
        vs = self._versions.get((bucket, key.encode()))
        return vs[0] if vs else None

    # -- guards and GC -------------------------------------------------------------------------
    async def guard(self, os_id: int, object_id: bytes, ttl: float | None = None) -> None:
        """See NameServer.guard."""
        self._guards[object_id] = (os_id, time.time() + (self.config.guard_ttl if ttl is None else ttl))

    async def guard_many(self, os_id: int, object_ids: list[bytes], ttl: float | None = None) -> float:
        """See NameServer.guard_many."""
        expires_at = time.time() + (self.config.guard_ttl if ttl is None else ttl)
        for oid in object_ids:
            self._guards[oid] = (os_id, expires_at)
        return expires_at

    async def renew_guard(self, object_id: bytes, ttl: float | None = None) -> float:
        """See NameServer.renew_guard."""
        now = time.time()
        entry = self._guards.get(object_id)
        if entry is None or entry[1] <= now:
            raise GuardMissingError(object_id)
        expires_at = now + (self.config.guard_ttl if ttl is None else ttl)
        self._guards[object_id] = (entry[0], expires_at)
        return expires_at

    async def release_guard(self, object_id: bytes) -> None:
        """See NameServer.release_guard."""
        g = self._guards.pop(object_id, None)
        if g is not None:
            self._gc.append((g[0], object_id))

    async def expire_guards(self, now: float | None = None) -> int:
        """See NameServer.expire_guards."""
        at = time.time() if now is None else now
        dead = [oid for oid, (_, exp) in self._guards.items() if exp <= at]
        for oid in dead:
            self._gc.append((self._guards.pop(oid)[0], oid))
        return len(dead)

    async def collect_garbage(self, limit: int = 1000) -> int:
        """See NameServer.collect_garbage."""
        batch, self._gc = self._gc[:limit], self._gc[limit:]
        by_os: dict[int, list[bytes]] = {}
        for os_id, oid in batch:
            by_os.setdefault(os_id, []).append(oid)
        done = 0
        for os_id, oids in by_os.items():
            try:
                await self._os_resolver(os_id).delete(oids)
                done += len(oids)
            except Exception:
                self._gc.extend((os_id, oid) for oid in oids)  # retry next round
        return done

    async def gc_pending(self) -> list[tuple[int, bytes]]:
        """See NameServer.gc_pending."""
        return list(self._gc)

    async def inventory(self) -> list[DataRef]:
        """See NameServer.inventory."""
        out = []
        for (bucket, kb), vs in self._versions.items():
            for v in vs:
                where = f"{bucket}/{v.key} version {v.version_id}"
                out += [DataRef("object", s.os_id, s.object_id, s.size, where)
                        for s in (v.link or tuple(p.segment for p in v.parts))]
        for uid, parts in self._parts.items():
            out += [DataRef("part", p.segment.os_id, p.segment.object_id, p.segment.size,
                            f"upload {uid} part {n}") for n, p in parts.items()]
        out += [DataRef("guard", os_id, oid, None, "guard") for oid, (os_id, _) in self._guards.items()]
        out += [DataRef("gc", os_id, oid, None, "gc queue") for os_id, oid in self._gc]
        return out

    # -- names ---------------------------------------------------------------------------------
    async def create_name(self, record: ObjectRecord, guard: bytes | None, versioning: Versioning,
                          condition: WriteCondition | None = None,
                          before_commit: SyncCalls = ()) -> ObjectRecord:
        """See NameServer.create_name (``before_commit`` runs first, inline)."""
        _run_before_commit(before_commit)
        os_id = self._take_guard(guard) if guard is not None else None
        if not _objects.condition_holds(self._current(record.bucket, record.key), condition):
            if guard is not None:
                self._gc.append((os_id, guard))
            raise PreconditionFailed(Key=record.key)
        return self._commit(replace(record, delete_marker=False), Versioning(versioning))

    async def lookup(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRecord:
        """See NameServer.lookup."""
        vs = self._versions.get((bucket, key.encode()))
        if version_id is None:
            if not vs:
                raise NoSuchKey(Key=key)
            rec = vs[0]
        else:
            rec = self._find(bucket, key.encode(), version_id)
            if rec is None:
                raise NoSuchVersion(Key=key, VersionId=version_id)
        return replace(_copy(rec), is_latest=rec is vs[0])

    async def delete_name(self, bucket: str, key: str, version_id: str | None,
                          versioning: Versioning) -> DeleteOutcome:
        """See NameServer.delete_name."""
        versioning, kb = Versioning(versioning), key.encode()
        if version_id is None:
            if versioning == Versioning.NONE:
                old = self._find(bucket, kb, NULL_VERSION)
                if old is not None:
                    self._drop(bucket, kb, old)
                    self._note("delete", bucket, key, NULL_VERSION)
                return DeleteOutcome(None, False)
            marker = self._commit(ObjectRecord(bucket=bucket, key=key, delete_marker=True), versioning)
            return DeleteOutcome(marker.version_id, True)
        old = self._find(bucket, kb, version_id)
        if old is None:
            return DeleteOutcome(version_id, False)
        self._drop(bucket, kb, old)
        self._note("delete", bucket, key, version_id)
        return DeleteOutcome(version_id, old.delete_marker)

    async def update_record(self, bucket: str, key: str, version_id: str | None, **fields: Any) -> ObjectRecord:
        """See NameServer.update_record."""
        bad = set(fields) - _objects.UPDATABLE
        if bad:
            raise TypeError(f"update_record cannot change {sorted(bad)}")
        if version_id is None:
            rec = self._current(bucket, key)
            if rec is None or rec.delete_marker:
                raise NoSuchKey(Key=key)
        else:
            rec = self._find(bucket, key.encode(), version_id)
            if rec is None:
                raise NoSuchVersion(Key=key, VersionId=version_id)
            if rec.delete_marker:
                raise MethodNotAllowed(Key=key, VersionId=version_id)
        for name, value in _copy(fields).items():
            setattr(rec, name, value)
        self._note("update", bucket, key, rec.version_id)
        return await self.lookup(bucket, key, rec.version_id)

    def _scan(self, bucket: str, lo: bytes, inclusive: bool, live: bool) -> Iterator[tuple]:
        keys = self._keys.get(bucket, [])
        i = (bisect.bisect_left if inclusive else bisect.bisect_right)(keys, lo)
        while i < len(keys):
            kb = keys[i]
            vs = self._versions[(bucket, kb)]
            if live:
                if not vs[0].delete_marker:
                    yield (kb, vs[0])
            else:
                for v in vs:
                    yield (kb, v, vs[0])
            i += 1

    async def list_names(self, bucket: str, prefix: str = "", delimiter: str = "", after: str = "",
                         limit: int = 1000) -> ListPage:
        """See NameServer.list_names."""
        pb, ab = prefix.encode(), after.encode()
        lo, inclusive = start_after(pb, ab)
        items, truncated = walk(self._scan(bucket, lo, inclusive, True),
                                lambda k: self._scan(bucket, k, True, True), pb, delimiter.encode(), ab, limit)
        return ListPage([ListEntry(k.decode(), None if r is None else _copy(r[1])) for k, r in items], truncated)

    async def list_versions(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                            version_marker: str = "", limit: int = 1000) -> ListPage:
        """See NameServer.list_versions."""
        pb, kb = prefix.encode(), key_marker.encode()
        rows: Iterator[tuple]
        if kb and version_marker and kb >= pb and self._find(bucket, kb, version_marker) is not None:
            def resume() -> Iterator[tuple]:
                seen = False
                for row in self._scan(bucket, kb, True, False):
                    if seen or row[0] != kb:
                        yield row
                    elif row[1].version_id == version_marker:
                        seen = True
            rows = resume()
        else:
            rows = self._scan(bucket, max(pb, kb + b"\0") if kb else pb, True, False)
        items, truncated = walk(rows, lambda k: self._scan(bucket, k, True, False), pb, delimiter.encode(),
                                kb, limit)
        return ListPage([ListEntry(k.decode(), None if r is None else replace(_copy(r[1]), is_latest=r[1] is r[2]))
                         for k, r in items], truncated)

    async def changes(self, since_seq: int = 0, limit: int = 1000) -> list[tuple]:
        """See NameServer.changes."""
        return self._log[since_seq:since_seq + limit]

    # -- buckets -------------------------------------------------------------------------------
    async def bucket_create(self, record: BucketRecord) -> BucketRecord:
        """See NameServer.bucket_create."""
        old = self._buckets.get(record.name)
        if old is not None:
            raise (BucketAlreadyOwnedByYou if old.owner == record.owner else BucketAlreadyExists)(
                BucketName=record.name)
        rec = replace(_copy(record), created_ns=record.created_ns or self._now(),
                      versioning=Versioning(record.versioning))
        self._buckets[rec.name] = rec
        self._note("bucket_create", rec.name)
        return _copy(rec)

    async def bucket_get(self, name: str) -> BucketRecord:
        """See NameServer.bucket_get."""
        if name not in self._buckets:
            raise NoSuchBucket(BucketName=name)
        return _copy(self._buckets[name])

    async def bucket_update(self, name: str, **changes: Any) -> BucketRecord:
        """See NameServer.bucket_update."""
        bad = set(changes) - _buckets.UPDATABLE
        if bad:
            raise TypeError(f"bucket_update cannot change {sorted(bad)}")
        rec = await self.bucket_get(name)
        for field_name, value in _copy(changes).items():
            setattr(rec, field_name, Versioning(value) if field_name == "versioning" else value)
        rec.epoch += 1
        self._buckets[name] = rec
        self._note("bucket_update", name)
        return _copy(rec)

    async def bucket_delete(self, name: str) -> None:
        """See NameServer.bucket_delete."""
        if self._buckets.pop(name, None) is None:
            raise NoSuchBucket(BucketName=name)
        self._note("bucket_delete", name)

    async def bucket_list(self, owner: str | None = None) -> list[BucketRecord]:
        """See NameServer.bucket_list."""
        return [_copy(b) for n, b in sorted(self._buckets.items(), key=lambda nb: nb[0].encode())
                if owner is None or b.owner == owner]

    async def bucket_has_content(self, bucket: str) -> bool:
        """See NameServer.bucket_has_content."""
        return bool(self._keys.get(bucket)) or bool(self._upload_index.get(bucket))

    async def bucket_usage(self, bucket: str) -> BucketUsage:
        """See NameServer.bucket_usage."""
        return BucketUsage(*self._usage.get(bucket, (0, 0, 0)))

    async def purge_bucket(self, bucket: str, limit: int = 1000) -> int:
        """See NameServer.purge_bucket."""
        removed = 0
        for kb in list(self._keys.get(bucket, [])):
            for v in list(self._versions[(bucket, kb)]):
                if removed >= limit:
                    return removed
                self._drop(bucket, kb, v)
                self._note("delete", bucket, v.key, v.version_id)
                removed += 1
        for _, _, uid in list(self._upload_index.get(bucket, [])):
            if removed >= limit:
                break
            self._drop_upload(uid)
            removed += 1
        return removed

    # -- multipart -----------------------------------------------------------------------------
    def _upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        up = self._uploads.get(upload_id)
        if up is None or up.bucket != bucket or up.key != key:
            raise NoSuchUpload(UploadId=upload_id)
        return up

    def _drop_upload(self, upload_id: str, keep: frozenset[int] = frozenset()) -> None:
        up = self._uploads.pop(upload_id)
        idx = self._upload_index[up.bucket]
        idx.remove((up.key.encode(), up.initiated_ns, upload_id))
        parts = self._parts.pop(upload_id)
        self._gc.extend((p.segment.os_id, p.segment.object_id) for n, p in parts.items() if n not in keep)
        self._use(up.bucket, upload_bytes=-sum(p.size for p in parts.values()))
        self._note("upload_drop", up.bucket, up.key, upload_id)

    async def upload_create(self, record: UploadRecord) -> UploadRecord:
        """See NameServer.upload_create."""
        rec = replace(_copy(record), upload_id=record.upload_id or secrets.token_urlsafe(24),
                      initiated_ns=record.initiated_ns or self._now())
        self._uploads[rec.upload_id] = rec
        self._parts[rec.upload_id] = {}
        bisect.insort(self._upload_index.setdefault(rec.bucket, []), (rec.key.encode(), rec.initiated_ns,
                                                                      rec.upload_id))
        self._note("upload_create", rec.bucket, rec.key, rec.upload_id)
        return _copy(rec)

    async def upload_get(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        """See NameServer.upload_get."""
        return _copy(self._upload(bucket, key, upload_id))

    async def part_put(self, bucket: str, key: str, upload_id: str, part: PartRecord,
                       guard: bytes, before_commit: SyncCalls = ()) -> PartRecord | None:
        """See NameServer.part_put (``before_commit`` runs first, inline)."""
        _run_before_commit(before_commit)
        os_id = self._take_guard(guard)
        try:
            self._upload(bucket, key, upload_id)
        except NoSuchUpload:
            self._gc.append((os_id, guard))
            raise
        parts = self._parts[upload_id]
        old = parts.get(part.number)
        if old is not None:
            if old.segment.object_id != part.segment.object_id:
                self._gc.append((old.segment.os_id, old.segment.object_id))
            self._use(bucket, upload_bytes=-old.size)
        parts[part.number] = replace(_copy(part), last_modified_ns=part.last_modified_ns or self._now())
        self._use(bucket, upload_bytes=part.size)
        self.transactions += 1
        return old

    async def parts_list(self, bucket: str, key: str, upload_id: str, marker: int = 0,
                         limit: int = 1000) -> tuple[list[PartRecord], bool]:
        """See NameServer.parts_list."""
        self._upload(bucket, key, upload_id)
        nums = sorted(n for n in self._parts[upload_id] if n > marker)
        return [_copy(self._parts[upload_id][n]) for n in nums[:limit]], len(nums) > limit

    async def upload_complete(self, bucket: str, key: str, upload_id: str, record: ObjectRecord,
                              versioning: Versioning, condition: WriteCondition | None = None) -> ObjectRecord:
        """See NameServer.upload_complete."""
        self._upload(bucket, key, upload_id)
        stored = self._parts[upload_id]
        for p in record.parts:
            s = stored.get(p.number)
            if s is None or s.segment.object_id != p.segment.object_id:
                raise InvalidPart(PartNumber=str(p.number))
        if not _objects.condition_holds(self._current(bucket, key), condition):
            raise PreconditionFailed(Key=key)
        self._drop_upload(upload_id, keep=frozenset(p.number for p in record.parts))
        rec = replace(record, bucket=bucket, key=key, delete_marker=False,
                      link=tuple(p.segment for p in record.parts))
        return self._commit(rec, Versioning(versioning), op="complete")

    async def upload_abort(self, bucket: str, key: str, upload_id: str) -> None:
        """See NameServer.upload_abort."""
        self._upload(bucket, key, upload_id)
        self._drop_upload(upload_id)

    async def uploads_list(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                           upload_id_marker: str = "", limit: int = 1000) -> UploadPage:
        """See NameServer.uploads_list."""
        idx = self._upload_index.get(bucket, [])
        pb, kb = prefix.encode(), key_marker.encode()
        up = self._uploads.get(upload_id_marker) if kb and upload_id_marker else None
        if up is not None and up.bucket == bucket and up.key.encode() == kb and kb >= pb:
            start = bisect.bisect_right(idx, (kb, up.initiated_ns, up.upload_id))
        else:
            start = bisect.bisect_left(idx, (max(pb, kb + b"\0") if kb else pb,))

        def scan(i: int) -> Iterator[tuple]:
            for entry in idx[i:]:
                yield entry
        items, truncated = walk(scan(start), lambda k: scan(bisect.bisect_left(idx, (k,))), pb,
                                delimiter.encode(), kb, limit)
        return UploadPage([UploadEntry(k.decode(), None if r is None else _copy(self._uploads[r[2]]))
                           for k, r in items], truncated)


