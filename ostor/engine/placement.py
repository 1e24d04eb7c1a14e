"""Which name server and object server a name lives on.

Seed, "Data Interchange": the directory part of an object's full name picks the
name server; the full name picks the object server. Both use jump consistent
hashing over the volume's service list, so the choice is stable across
processes and restarts and moves few names if the list ever grows.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


def stable_hash(text: str, salt: int = 0) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8,
                             salt=salt.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach): map a 64-bit key to [0, buckets)."""
    if buckets <= 0:
        raise ValueError("no buckets to choose from")
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def directory_part(bucket: str, key: str) -> str:
    """The directory part of an object's full name: bucket, '/', key up to its last '/'."""
    return f"{bucket}/{key[: key.rfind('/') + 1]}"


@functools.lru_cache(maxsize=1 << 16)
def _directory_slot(directory: str, count: int) -> int:
    # Every request asks this (a PUT twice); the names of one directory share the answer,
    # and the hash costs several microseconds in Python.
    return jump_hash(stable_hash(directory), count)


@dataclass(frozen=True)
class Placement:
    """Stable hashing of names onto a volume's name and object servers."""

    name_servers: Sequence[int]
    object_servers: Sequence[int]

    def name_server_for(self, bucket: str, key: str) -> int:
        """The NS holding ``key``'s name: chosen by the directory part of the full name."""
        return self.name_servers[_directory_slot(directory_part(bucket, key), len(self.name_servers))]

    def bucket_name_server(self, bucket: str) -> int:
        """The NS holding the bucket record (the bucket's root directory)."""
        return self.name_server_for(bucket, "")

    def object_server_for(self, bucket: str, key: str, part: int = 0) -> int:
        """The OS holding the data of ``key`` (or of one of its parts): chosen by the full name."""
        return self.object_servers[jump_hash(stable_hash(f"{bucket}/{key}", part), len(self.object_servers))]
