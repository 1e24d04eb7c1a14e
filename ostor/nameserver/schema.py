"""The on-disk format of a name server: one SQLite database, versioned by ``PRAGMA user_version``.

Keys are stored as UTF-8 BLOBs so that SQLite's memcmp ordering *is* S3's
byte order. Object versions are keyed ``(bucket, key, vseq)`` where ``vseq`` is
the negated commit timestamp, so a key's newest version comes first in the
B-tree and "current version" is a one-row range scan.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ostor.common.errors import CorruptStoreError

from .config import NameServerConfig

DB_NAME = "names.db"
#: Bump on any incompatible change and add a step to MIGRATIONS.
#: 2: a data object without a ``segments`` row is linked by exactly one version (fresh data
#: writes no row). Version 1 rows mean the same under that rule, so the step rewrites nothing;
#: the bump only keeps older builds (which read a missing row differently) away.
#: 3: no index on (bucket, key, version_id), nor on guards' expiry time. A version ID names
#: its row's vseq (see versions.py), and the guards table holds only the guards in flight,
#: so a scan of it is cheap. Each index cost every PUT a B-tree change and a page in its commit.
FORMAT_VERSION = 3

DDL = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    data BLOB NOT NULL              -- msgpack of the other BucketRecord fields
) WITHOUT ROWID;
CREATE TABLE objects (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,              -- UTF-8: memcmp order is S3 order
    vseq INTEGER NOT NULL,          -- -last_modified_ns: newest version first
    version_id TEXT NOT NULL,
    latest INTEGER NOT NULL,        -- 1 on the key's current version only
    dm INTEGER NOT NULL,            -- delete marker
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    data BLOB NOT NULL,             -- msgpack of the cold fields (codec.py)
    PRIMARY KEY (bucket, key, vseq)
) WITHOUT ROWID;
-- current, visible keys only: list_names walks this and never sees old versions or markers
CREATE INDEX objects_live ON objects (bucket, key) WHERE latest = 1 AND dm = 0;
-- how many object versions link each data object (copy-in-place shares them); data
-- objects without a row are linked by exactly one version
CREATE TABLE segments (
    object_id BLOB PRIMARY KEY,
    os_id INTEGER NOT NULL,
    refs INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE guards (
    object_id BLOB PRIMARY KEY,
    os_id INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE uploads (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated_ns INTEGER NOT NULL,
    upload_id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (bucket, key, initiated_ns, upload_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX uploads_id ON uploads (upload_id);
CREATE TABLE parts (
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    os_id INTEGER NOT NULL,
    object_id BLOB NOT NULL,
    seg_size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    checksums BLOB,
    PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    op TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT,
    version_id TEXT
);
CREATE TABLE gc_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    os_id INTEGER NOT NULL,
    object_id BLOB NOT NULL
);
CREATE TABLE usage (
    bucket TEXT PRIMARY KEY,
    objects INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    upload_bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('clock', 0);
"""

#: MIGRATIONS[v] upgrades a database of format v to v + 1 inside one transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: lambda conn: None,
    2: lambda conn: _drop_indexes(conn, "objects_version", "guards_expiry"),
}


def _drop_indexes(conn: sqlite3.Connection, *names: str) -> None:
    for name in names:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def connect(path: Path, config: NameServerConfig, *, writer: bool) -> sqlite3.Connection:
    """Open a connection with the pragmas of ``config.journal_mode``; transactions are explicit."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (group commit, savepoints).
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           cached_statements=512)
    conn.execute(f"PRAGMA cache_size=-{int(config.cache_kib)}")
    if config.journal_mode == "wal":
        if writer:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    else:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def initialise(path: Path, service_id: int) -> None:
    """Create a fresh database of the current format at ``path`` (which must not exist)."""
    if path.exists():
        raise FileExistsError(path)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("BEGIN")
        for stmt in _statements(DDL):
            conn.execute(stmt)
        conn.execute("INSERT INTO meta (name, value) VALUES ('service_id', ?)", (service_id,))
        conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
        conn.execute("COMMIT")
    finally:
        conn.close()
    _fsync_dir(path.parent)


def check(path: Path, service_id: int) -> None:
    """Refuse a missing, unreadable, corrupt or unknown-format database, without writing to it."""
    if not path.is_file():
        raise CorruptStoreError(path, "name database is missing")
    try:
        # mode=rw: never create a file; nothing here writes (a damaged file stays as we found it).
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise CorruptStoreError(path, f"cannot open: {exc}") from exc
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        row = conn.execute("SELECT value FROM meta WHERE name='service_id'").fetchone() \
            if version and result == "ok" else None
    except sqlite3.Error as exc:
        raise CorruptStoreError(path, f"unreadable: {exc}") from exc
    finally:
        conn.close()
    if result != "ok":
        raise CorruptStoreError(path, f"quick_check failed: {result}")
    if version > FORMAT_VERSION or (version < FORMAT_VERSION and version not in MIGRATIONS):
        raise CorruptStoreError(path, f"unknown format version {version} (this build reads {FORMAT_VERSION})")
    if row is None or row[0] != service_id:
        raise CorruptStoreError(path, f"database belongs to service {row[0] if row else None!r}, not {service_id}")


def migrate(conn: sqlite3.Connection) -> None:
    """Upgrade an older (known) format in place, one version per transaction."""
    while (version := conn.execute("PRAGMA user_version").fetchone()[0]) < FORMAT_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        line = line.split("--", 1)[0].rstrip()
        if not line:
            continue
        buf.append(line)
        if line.endswith(";"):
            out.append("\n".join(buf))
            buf = []
    return out


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
