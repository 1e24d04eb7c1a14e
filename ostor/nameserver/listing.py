"""Sorted listings with S3 common-prefix roll-up, shared by the SQLite and in-memory name servers.

:func:`walk` is a pure function over a sorted stream of rows whose first item
is the key as UTF-8 bytes. When a key rolls up into a common prefix CP, the
prefix is emitted once and the stream is *re-seeked* past every key starting
with CP (``CP + b"\\xff"``: 0xFF never occurs in UTF-8, so it sorts after every
key with that prefix and before the next key without it). A listing of ten
prefixes over a million keys therefore costs ten seeks, not a million rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator

from .codec import OBJECT_COLS
from .versions import version_row

Row = tuple
#: A listing item: (key or common prefix as bytes, row or None for a common prefix).
Item = tuple[bytes, "Row | None"]

SKIP = b"\xff"  # sorts after every UTF-8 continuation of a prefix


def walk(rows: Iterable[Row], reseek: Callable[[bytes], Iterable[Row]], prefix: bytes, delimiter: bytes,
         marker: bytes, limit: int) -> tuple[list[Item], bool]:
    """Collect up to ``limit`` items from ``rows`` (already positioned after ``marker``).

    ``reseek(lo)`` must return the rows with key >= lo. A common prefix <= ``marker``
    was already returned by an earlier page and is skipped silently.
    Returns the items and whether more items exist after the last one.
    """
    out: list[Item] = []
    plen, dlen = len(prefix), len(delimiter)
    it: Iterator[Row] = iter(rows)
    while True:
        for row in it:
            key = row[0]
            if not key.startswith(prefix):
                return out, False  # rows are sorted and start at/after prefix: we are past it
            if dlen:
                i = key.find(delimiter, plen)
                if i >= 0:
                    cp = key[:i + dlen]
                    if cp > marker:
                        out.append((cp, None))
                        if len(out) > limit:
                            return out[:limit], True
                    it = iter(reseek(cp + SKIP))
                    break
            out.append((key, row))
            if len(out) > limit:
                return out[:limit], True
        else:
            return out, False


def start_after(prefix: bytes, marker: bytes) -> tuple[bytes, bool]:
    """Where a scan starts: (lo, inclusive) for 'keys with ``prefix`` strictly after ``marker``'."""
    if marker >= prefix:
        return marker, False
    return prefix, True


def prefix_end(prefix: bytes) -> bytes | None:
    """An upper bound for keys starting with ``prefix`` (None: unbounded)."""
    return prefix + SKIP if prefix else None


# -- SQLite scanners --------------------------------------------------------------------------------
CHUNK = 256  # rows fetched per query; cursors never stay open (they would pin a WAL snapshot)
FIRST = 4  # first fetch after a seek is small: after a common prefix the walk often re-seeks at once


def scan_live(conn: sqlite3.Connection, bucket: str, lo: bytes, inclusive: bool, hi: bytes | None,
              chunk: int = CHUNK) -> Iterator[Row]:
    """Current, visible versions (one per key) with key >= / > lo, in key order."""
    op = ">=" if inclusive else ">"
    hi_sql, hi_arg = ("AND key < ?", (hi,)) if hi is not None else ("", ())
    n = min(FIRST, chunk)
    while True:
        rows = conn.execute(
            f"SELECT {OBJECT_COLS} FROM objects INDEXED BY objects_live WHERE bucket=? AND latest=1 AND dm=0 "
            f"AND key {op} ? {hi_sql} ORDER BY key LIMIT ?", (bucket, lo, *hi_arg, n)).fetchall()
        yield from rows
        if len(rows) < n:
            return
        lo, op, n = rows[-1][0], ">", min(n * 4, chunk)


def scan_versions(conn: sqlite3.Connection, bucket: str, lo: bytes, after_vseq: int | None, hi: bytes | None,
                  chunk: int = CHUNK) -> Iterator[Row]:
    """Every version with key >= lo (or (key, vseq) > (lo, after_vseq)), keys ascending, newest first."""
    hi_sql, hi_arg = ("AND key < ?", (hi,)) if hi is not None else ("", ())
    n = min(FIRST, chunk)
    while True:
        if after_vseq is None:
            where, args = "key >= ?", (lo,)
        else:
            where, args = "(key, vseq) > (?, ?)", (lo, after_vseq)
        rows = conn.execute(
            f"SELECT {OBJECT_COLS} FROM objects WHERE bucket=? AND {where} {hi_sql} ORDER BY key, vseq LIMIT ?",
            (bucket, *args, *hi_arg, n)).fetchall()
        yield from rows
        if len(rows) < n:
            return
        lo, after_vseq, n = rows[-1][0], rows[-1][1], min(n * 4, chunk)


def scan_uploads(conn: sqlite3.Connection, bucket: str, lo: bytes, after: tuple | None, hi: bytes | None,
                 chunk: int = CHUNK) -> Iterator[Row]:
    """Uploads (key, initiated_ns, upload_id, data) with key >= lo or after (key, ns, id) ``after``."""
    hi_sql, hi_arg = ("AND key < ?", (hi,)) if hi is not None else ("", ())
    while True:
        if after is None:
            where, args = "key >= ?", (lo,)
        else:
            where, args = "(key, initiated_ns, upload_id) > (?, ?, ?)", after
        rows = conn.execute(
            f"SELECT key, initiated_ns, upload_id, data FROM uploads WHERE bucket=? AND {where} {hi_sql} "
            "ORDER BY key, initiated_ns, upload_id LIMIT ?", (bucket, *args, *hi_arg, chunk)).fetchall()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1][:3]


def list_names(conn: sqlite3.Connection, bucket: str, prefix: str, delimiter: str, after: str,
               limit: int) -> tuple[list[Item], bool]:
    """Current visible keys and common prefixes strictly after ``after``."""
    pb, db, ab = prefix.encode(), delimiter.encode(), after.encode()
    lo, inclusive = start_after(pb, ab)
    hi = prefix_end(pb)
    chunk = max(2, min(CHUNK, limit + 1))
    return walk(scan_live(conn, bucket, lo, inclusive, hi, chunk),
                lambda k: scan_live(conn, bucket, k, True, hi, chunk), pb, db, ab, limit)


def list_versions(conn: sqlite3.Connection, bucket: str, prefix: str, delimiter: str, key_marker: str,
                  version_marker: str, limit: int) -> tuple[list[Item], bool]:
    """Every version and delete marker after (key_marker, version_marker), S3 ListObjectVersions order."""
    pb, db, kb = prefix.encode(), delimiter.encode(), key_marker.encode()
    hi = prefix_end(pb)
    chunk = max(2, min(CHUNK, limit + 1))
    after_vseq = None
    if kb and version_marker:
        row = version_row(conn, bucket, kb, version_marker)
        if row is not None:
            after_vseq = row[1]
    if after_vseq is not None and kb >= pb:
        rows = scan_versions(conn, bucket, kb, after_vseq, hi, chunk)
    else:
        # after *all* versions of key_marker: the next key is >= key_marker + b"\0"
        lo = max(pb, kb + b"\0") if kb else pb
        rows = scan_versions(conn, bucket, lo, None, hi, chunk)
    return walk(rows, lambda k: scan_versions(conn, bucket, k, None, hi, chunk), pb, db, kb, limit)


def list_uploads(conn: sqlite3.Connection, bucket: str, prefix: str, delimiter: str, key_marker: str,
                 upload_id_marker: str, limit: int) -> tuple[list[Item], bool]:
    """Uploads in (key, initiation time) order after the markers, with common prefixes."""
    pb, db, kb = prefix.encode(), delimiter.encode(), key_marker.encode()
    hi = prefix_end(pb)
    chunk = max(2, min(CHUNK, limit + 1))
    after = None
    if kb and upload_id_marker:
        row = conn.execute("SELECT key, initiated_ns, upload_id FROM uploads WHERE bucket=? AND upload_id=?",
                           (bucket, upload_id_marker)).fetchone()
        if row is not None and row[0] == kb:
            after = tuple(row)
    if after is not None and kb >= pb:
        rows = scan_uploads(conn, bucket, kb, after, hi, chunk)
    else:
        lo = max(pb, kb + b"\0") if kb else pb
        rows = scan_uploads(conn, bucket, lo, None, hi, chunk)
    return walk(rows, lambda k: scan_uploads(conn, bucket, k, None, hi, chunk), pb, db, kb, limit)
