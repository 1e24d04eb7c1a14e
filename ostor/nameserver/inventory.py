"""Every reference a name server holds to data on object servers (for the volume checker)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from . import codec


@dataclass(frozen=True, slots=True)
class DataRef:
    """One data object a name server refers to.

    ``kind``: "object" (linked by a version), "part" (of an upload in progress),
    "guard" (being written) or "gc" (queued for deletion). ``size`` is the
    segment size when known; ``where`` says which name holds it, for reports.
    """

    kind: str
    os_id: int
    object_id: bytes
    size: int | None
    where: str


def inventory(conn: sqlite3.Connection) -> list[DataRef]:
    """All references in the database (a full scan: for checks, not the request path)."""
    out: list[DataRef] = []
    for bucket, key, vid, data in conn.execute("SELECT bucket, key, version_id, data FROM objects"):
        d = codec.unpack(data)
        segs = [(v[3], v[4], v[5]) for v in d["p"]] if "p" in d else [tuple(v) for v in d.get("l", ())]
        where = f"{bucket}/{key.decode()} version {vid}"
        out += [DataRef("object", os_id, oid, size, where) for os_id, oid, size in segs]
    for upload_id, number, os_id, oid, size in conn.execute(
            "SELECT upload_id, number, os_id, object_id, seg_size FROM parts"):
        out.append(DataRef("part", os_id, oid, size, f"upload {upload_id} part {number}"))
    for os_id, oid in conn.execute("SELECT os_id, object_id FROM guards"):
        out.append(DataRef("guard", os_id, oid, None, "guard"))
    for os_id, oid in conn.execute("SELECT os_id, object_id FROM gc_queue"):
        out.append(DataRef("gc", os_id, oid, None, "gc queue"))
    return out
