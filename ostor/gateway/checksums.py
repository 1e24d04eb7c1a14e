"""Flexible checksums (x-amz-checksum-*) and Content-MD5: which one a request asks for, and hashers.

CRCs come from awscrt (the code the AWS SDKs use), SHA-1/SHA-256/MD5 from
hashlib. Values travel base64-encoded, CRCs as big-endian integers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from awscrt import checksums as _crt

from ostor.common.errors import InvalidDigest, InvalidRequest

HEADER_PREFIX = "x-amz-checksum-"
#: What S3 computes and stores for an upload that names no checksum (since December 2024).
DEFAULT_ALGORITHM = "CRC64NVME"
#: Headers under the prefix that are not checksum values.
_NOT_VALUES = {"mode", "type", "algorithm"}


class _Crc:
    def __init__(self, fn, width: int) -> None:
        self._fn, self._width, self._value = fn, width, 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


_FACTORIES = {
    "CRC32": lambda: _Crc(_crt.crc32, 4),
    "CRC32C": lambda: _Crc(_crt.crc32c, 4),
    "CRC64NVME": lambda: _Crc(_crt.crc64nvme, 8),
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
}
ALGORITHMS = tuple(_FACTORIES)
_INLINE = frozenset({"CRC32C", "CRC64NVME"})


class Hasher:
    """An incremental checksum of one algorithm, producing the base64 S3 stores."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._impl = _FACTORIES[algorithm]()
        #: Hardware CRCs (about 40 GiB/s) are cheaper on the event loop than a thread hop
        #: (ostor.common.hashing); CRC32 (about 2.5 GiB/s) and the SHAs are not.
        self.inline = algorithm in _INLINE

    def update(self, data: bytes) -> None:
        """Feed bytes."""
        self._impl.update(data)

    def b64(self) -> str:
        """The checksum so far, base64-encoded."""
        return base64.b64encode(self._impl.digest()).decode()


def compute(algorithm: str, data: bytes) -> str:
    """One-shot checksum of ``data``, base64-encoded."""
    hasher = Hasher(algorithm)
    hasher.update(data)
    return hasher.b64()


def check_algorithm(name: str) -> str:
    """Normalise an algorithm name, InvalidRequest for one ostor does not support."""
    algorithm = name.strip().upper()
    if algorithm not in _FACTORIES:
        raise InvalidRequest(f"Checksum algorithm {name!r} is not supported; use one of "
                             f"{', '.join(ALGORITHMS)}.")
    return algorithm


def header_name(algorithm: str) -> str:
    """The header (and trailer) carrying a checksum of this algorithm."""
    return HEADER_PREFIX + algorithm.lower()


@dataclass(frozen=True)
class ChecksumSpec:
    """The checksum a request body must match: the algorithm and the value (None: from a trailer)."""

    algorithm: str
    expected: str | None
    from_trailer: bool


def requested(headers: object) -> ChecksumSpec | None:
    """The flexible checksum a request declares, from x-amz-checksum-*, x-amz-trailer or the SDK hint."""
    values = [(name[len(HEADER_PREFIX):], value) for name, value in headers.items()  # type: ignore[attr-defined]
              if name.lower().startswith(HEADER_PREFIX) and name.lower()[len(HEADER_PREFIX):] not in _NOT_VALUES]
    if len(values) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    trailer = (headers.get("x-amz-trailer") or "").strip().lower()  # type: ignore[attr-defined]
    if values:
        return ChecksumSpec(check_algorithm(values[0][0]), values[0][1].strip(), False)
    if trailer:
        if not trailer.startswith(HEADER_PREFIX):
            raise InvalidRequest(f"The trailer {trailer!r} is not supported.")
        return ChecksumSpec(check_algorithm(trailer[len(HEADER_PREFIX):]), None, True)
    hint = headers.get("x-amz-sdk-checksum-algorithm")  # type: ignore[attr-defined]
    if hint:
        # The SDK named an algorithm but sent no value: compute and store it, nothing to compare.
        return ChecksumSpec(check_algorithm(hint), None, False)
    return None


def for_upload(spec: ChecksumSpec | None, headers: object) -> ChecksumSpec:
    """The checksum an upload is stored with, as S3 decides it.

    The one the request declares (``spec``, from :func:`requested`); else the algorithm an
    x-amz-checksum-algorithm header names; else the default, CRC64NVME. The last two are
    computed and stored with nothing to compare them with.
    """
    if spec is not None:
        return spec
    named = headers.get("x-amz-checksum-algorithm")  # type: ignore[attr-defined]
    algorithm = check_algorithm(named) if named else DEFAULT_ALGORITHM
    return ChecksumSpec(algorithm, None, False)


def content_md5(headers: object) -> bytes | None:
    """The decoded Content-MD5 header, InvalidDigest when it is not 16 bytes of base64."""
    value = headers.get("content-md5")  # type: ignore[attr-defined]
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest(**{"Content-MD5": value}) from None
    if len(digest) != 16:
        raise InvalidDigest(**{"Content-MD5": value})
    return digest
