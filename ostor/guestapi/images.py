"""Public images: content-addressed objects in the service bucket that guests may export.

An image's fingerprint is the SHA-256 of its bytes. Its data is the object
``guestapi/image-data/<fingerprint>`` and its description (size, alias, date)
the record ``guestapi/images/<fingerprint>``; the record is written after the
data, so a listed image always has its bytes. Descriptions are cached in
memory (there are few images); bytes are always streamed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ostor.common.errors import InvalidAdminArgument, NoSuchImage, NoSuchKey
from ostor.guestapi.store import RecordBucket

META_PREFIX = "guestapi/images/"
DATA_PREFIX = "guestapi/image-data/"
CHUNK = 1 << 20
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$")


@dataclass(frozen=True)
class Image:
    """A stored image's description."""

    fingerprint: str
    size: int
    alias: str | None
    created_ns: int

    def as_doc(self) -> dict[str, Any]:
        """The stored (and listed) form."""
        return {"version": 1, "fingerprint": self.fingerprint, "size": self.size, "alias": self.alias,
                "created_ns": self.created_ns}


def is_fingerprint(value: str) -> bool:
    """Whether ``value`` is a full fingerprint (64 lower-case hex digits)."""
    return bool(_FINGERPRINT.match(value))


async def _read_chunks(path: Path, digest: Any) -> AsyncIterator[bytes]:
    # File reads go to a thread: an image can be large and the server keeps serving meanwhile.
    with open(path, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            digest.update(chunk)
            yield chunk


class ImageStore:
    """Import, list, delete and stream images."""

    def __init__(self, engine: Any, bucket_name: str, records: RecordBucket) -> None:
        self.engine = engine
        self.bucket_name = bucket_name
        self.records = records
        self._images: dict[str, Image] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, engine: Any, bucket_name: str, records: RecordBucket) -> "ImageStore":
        """Load every image description."""
        store = cls(engine, bucket_name, records)
        for doc in (await records.load_all(META_PREFIX)).values():
            image = Image(doc["fingerprint"], int(doc["size"]), doc.get("alias"), int(doc.get("created_ns", 0)))
            store._images[image.fingerprint] = image
        return store

    def get(self, fingerprint: str) -> Image | None:
        """The image with exactly this fingerprint, or None."""
        return self._images.get(fingerprint)

    def all(self) -> list[Image]:
        """Every image, by alias then fingerprint."""
        return sorted(self._images.values(), key=lambda i: (i.alias or "\uffff", i.fingerprint))

    def find(self, ref: str) -> Image:
        """An image by fingerprint, alias or unique fingerprint prefix (NoSuchImage)."""
        image = self._images.get(ref)
        if image is not None:
            return image
        by_alias = [i for i in self._images.values() if i.alias == ref]
        if by_alias:
            return by_alias[0]
        by_prefix = [i for i in self._images.values() if len(ref) >= 8 and i.fingerprint.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        raise NoSuchImage(f"no image {ref!r}")

    async def import_file(self, path: str | Path, alias: str | None = None) -> Image:
        """Store a file's bytes as an image; importing the same bytes again only sets the alias."""
        path = Path(path)
        if alias is not None and not _ALIAS.match(alias):
            raise InvalidAdminArgument(f"invalid image alias {alias!r}")
        if not path.is_file():
            raise InvalidAdminArgument(f"{path} is not a readable file")
        digest = hashlib.sha256()
        async for _ in _read_chunks(path, digest):
            pass
        fingerprint = digest.hexdigest()
        async with self._lock:
            holder = next((i for i in self._images.values() if alias and i.alias == alias), None)
            if holder is not None and holder.fingerprint != fingerprint:
                raise InvalidAdminArgument(f"alias {alias!r} already names image {holder.fingerprint}")
            existing = self._images.get(fingerprint)
            if existing is not None:
                if alias is None or existing.alias == alias:
                    return existing
                image = Image(fingerprint, existing.size, alias, existing.created_ns)
            else:
                second = hashlib.sha256()
                record = await self.engine.put_object(self.bucket_name, DATA_PREFIX + fingerprint,
                                                      _read_chunks(path, second),
                                                      content_type="application/octet-stream")
                if second.hexdigest() != fingerprint:  # the file changed while we read it
                    await self.engine.delete_object(self.bucket_name, DATA_PREFIX + fingerprint)
                    raise InvalidAdminArgument(f"{path} changed while it was imported; try again")
                image = Image(fingerprint, record.size, alias, time.time_ns())
            await self.records.put(META_PREFIX + fingerprint, image.as_doc())
            self._images[fingerprint] = image
            return image

    async def delete(self, ref: str) -> Image:
        """Remove an image (by fingerprint, alias or unique prefix): description first, then bytes."""
        async with self._lock:
            image = self.find(ref)
            self._images.pop(image.fingerprint, None)
            await self.records.delete(META_PREFIX + image.fingerprint)
            await self.engine.delete_object(self.bucket_name, DATA_PREFIX + image.fingerprint)
            return image

    async def open_reader(self, fingerprint: str) -> Any:
        """An object reader over the image's bytes (NoSuchImage if it is unknown or just went)."""
        if fingerprint not in self._images:
            raise NoSuchImage(f"no image {fingerprint}")
        try:
            return await self.engine.get_object(self.bucket_name, DATA_PREFIX + fingerprint)
        except NoSuchKey:
            raise NoSuchImage(f"no image {fingerprint}") from None

