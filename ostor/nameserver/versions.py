"""Version IDs, and finding a stored version by its ID.

A version ID is the version's commit time in nanoseconds (8 bytes, big-endian)
followed by 7 random bytes, in URL-safe base64: 20 characters. Object rows are
keyed (bucket, key, vseq) with vseq = -commit time, so an ID locates its own row
with one B-tree seek. No index on version_id is needed: it cost every PUT one
more B-tree insert and one more page in its commit. Dropping it with the
guards' expiry index raised the engine's put_4k by about 15% (6 rounds, one
run after the other, with the single commit thread of ``committer.py``).

The "null" version, written while versioning is off or suspended, has an ID
that carries no time. It is found by walking the key's versions: in a bucket
that never had versioning that is the one row the key has, and in a suspended
bucket it costs as many rows as the key has versions.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from .codec import OBJECT_COLS
from .records import NULL_VERSION

#: Characters of an ID new_version_id makes (15 bytes of base64, no padding).
VERSION_ID_CHARS = 20

_SQL_AT = f"SELECT {OBJECT_COLS} FROM objects WHERE bucket=? AND key=? AND vseq=? AND version_id=?"
_SQL_NULL = f"SELECT {OBJECT_COLS} FROM objects WHERE bucket=? AND key=? AND version_id=?"


def new_version_id(ns: int) -> str:
    """An opaque, URL-safe, unique version ID for a version committed at ``ns``."""
    return base64.urlsafe_b64encode(ns.to_bytes(8, "big") + os.urandom(7)).decode()


def version_vseq(version_id: str) -> int | None:
    """The vseq of the row ``version_id`` names, or None for "null" and IDs new_version_id never makes."""
    if len(version_id) != VERSION_ID_CHARS:
        return None
    try:
        raw = base64.b64decode(version_id, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return -int.from_bytes(raw[:8], "big")


def version_row(db: Any, bucket: str, kb: bytes, version_id: str) -> tuple | None:
    """The OBJECT_COLS row of one stored version, or None; ``db`` is a connection or a Txn."""
    if version_id == NULL_VERSION:
        return db.execute(_SQL_NULL, (bucket, kb, NULL_VERSION)).fetchone()
    vseq = version_vseq(version_id)
    if vseq is None:
        return None
    return db.execute(_SQL_AT, (bucket, kb, vseq, version_id)).fetchone()
