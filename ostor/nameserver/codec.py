"""Record <-> row conversion: hot fields as columns, the rest as a compact msgpack map.

Defaults are left out of the blob so that a plain object's row stays small and
decodes in a few microseconds (lookup is on every GET's path).
"""

from __future__ import annotations

from typing import Any

import msgpack

from .records import BucketRecord, ObjectRecord, PartRecord, Segment, UploadRecord, Versioning

#: Column list every object query selects, in the order decode_object expects.
OBJECT_COLS = "key, vseq, version_id, latest, dm, size, etag, data"

_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb

# blob key -> (ObjectRecord attribute, default); short keys keep rows small
_COLD = (
    ("ct", "content_type", None), ("h", "headers", None), ("m", "metadata", None),
    ("o", "owner", ""), ("a", "acl", None), ("c", "checksums", None),
    ("cty", "checksum_type", None), ("sc", "storage_class", "STANDARD"), ("t", "tags", None),
)


def pack(value: Any) -> bytes:
    """msgpack a JSON-like value (bytes stay bytes)."""
    return _packb(value)


def unpack(blob: bytes) -> Any:
    """Inverse of :func:`pack`."""
    return _unpackb(blob, raw=False, strict_map_key=False)


def part_to_list(p: PartRecord) -> list:
    """A part as a positional list (parts of big uploads are many; maps would triple the size)."""
    s = p.segment
    return [p.number, p.size, p.etag, s.os_id, s.object_id, s.size, p.last_modified_ns, p.checksums or None]


def part_from_list(v: list) -> PartRecord:
    """Inverse of :func:`part_to_list`."""
    return PartRecord(number=v[0], size=v[1], etag=v[2], segment=Segment(v[3], v[4], v[5]),
                      last_modified_ns=v[6], checksums=v[7] or {})


def object_blob(rec: ObjectRecord) -> bytes:
    """The cold fields of ``rec`` as a msgpack blob."""
    d: dict[str, Any] = {}
    for short, attr, default in _COLD:
        value = getattr(rec, attr)
        if value != default and value != {}:
            d[short] = value
    if rec.parts:
        # the link of a multipart object is its parts' segments: store them once
        d["p"] = [part_to_list(p) for p in rec.parts]
    elif rec.link:
        d["l"] = [[s.os_id, s.object_id, s.size] for s in rec.link]
    return pack(d)


def decode_object(bucket: str, row: tuple) -> ObjectRecord:
    """Build an ObjectRecord from a row selected with :data:`OBJECT_COLS`."""
    key, vseq, version_id, latest, dm, size, etag, data = row
    d = unpack(data)
    rec = ObjectRecord(bucket=bucket, key=key.decode(), version_id=version_id, delete_marker=bool(dm),
                       size=size, etag=etag, last_modified_ns=-vseq, is_latest=bool(latest))
    if d:
        for short, attr, default in _COLD:
            if short in d:
                setattr(rec, attr, d[short])
        if "p" in d:
            rec.parts = tuple(part_from_list(v) for v in d["p"])
            rec.link = tuple(p.segment for p in rec.parts)
        elif "l" in d:
            rec.link = tuple(Segment(*v) for v in d["l"])
    return rec


def object_to_dict(rec: ObjectRecord) -> dict:
    """A whole ObjectRecord as a msgpack-able map (upload templates)."""
    return {"b": rec.bucket, "k": rec.key, "v": rec.version_id, "dm": rec.delete_marker, "s": rec.size,
            "e": rec.etag, "n": rec.last_modified_ns, "x": object_blob(rec)}


def object_from_dict(d: dict) -> ObjectRecord:
    """Inverse of :func:`object_to_dict`."""
    return decode_object(d["b"], (d["k"].encode(), -d["n"], d["v"], 1, d["dm"], d["s"], d["e"], d["x"]))


def bucket_blob(rec: BucketRecord) -> bytes:
    """BucketRecord fields other than name and owner."""
    return pack({"c": rec.created_ns, "v": Versioning(rec.versioning).value, "l": rec.location,
                 "a": rec.acl, "p": rec.policy, "at": rec.attributes, "e": rec.epoch})


def decode_bucket(name: str, owner: str, data: bytes) -> BucketRecord:
    """Build a BucketRecord from its row."""
    d = unpack(data)
    return BucketRecord(name=name, owner=owner, created_ns=d["c"], versioning=Versioning(d["v"]),
                        location=d["l"], acl=d["a"], policy=d["p"], attributes=d["at"], epoch=d["e"])


def upload_blob(rec: UploadRecord) -> bytes:
    """UploadRecord fields other than the key columns."""
    return pack({"o": rec.owner, "t": object_to_dict(rec.template), "ca": rec.checksum_algorithm,
                 "ct": rec.checksum_type})


def decode_upload(bucket: str, key: bytes, initiated_ns: int, upload_id: str, data: bytes) -> UploadRecord:
    """Build an UploadRecord from its row."""
    d = unpack(data)
    return UploadRecord(upload_id=upload_id, bucket=bucket, key=key.decode(), initiated_ns=initiated_ns,
                        owner=d["o"], template=object_from_dict(d["t"]), checksum_algorithm=d["ca"],
                        checksum_type=d["ct"])


def link_of(data: bytes) -> list[tuple[int, bytes]]:
    """The (os_id, object_id) of every segment a stored version links, without a full decode."""
    d = unpack(data)
    if "p" in d:
        return [(v[3], v[4]) for v in d["p"]]
    return [(v[0], v[1]) for v in d.get("l", ())]


def segments_of(rec: ObjectRecord) -> list[tuple[int, bytes]]:
    """The (os_id, object_id) pairs of a record's link (parts' segments for multipart objects)."""
    link = rec.link or tuple(p.segment for p in rec.parts)
    return [(s.os_id, s.object_id) for s in link]
