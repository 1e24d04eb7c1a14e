"""Checksums of completed multipart objects, from the part checksums alone (no data is re-read).

S3 offers two kinds (seed, "Multipart Uploads"; Amazon S3 "Checking object integrity"):

* COMPOSITE: the checksum of the concatenated binary part checksums, then ``-N``.
* FULL_OBJECT (CRC32, CRC32C, CRC64NVME only): the CRC of the whole object, which
  a CRC allows to be *combined* from the part CRCs and the part lengths.

The combination is zlib's ``crc32_combine`` generalised to any reflected CRC
whose initial value and final XOR are all ones: ``crc(A || B) = crc(A) * x^(8*len(B))
mod P  XOR  crc(B)``, with multiplication in GF(2)[x] modulo the polynomial.
``x^(8*len)`` is cached per length, so 10,000 equal parts cost one power and
10,000 multiplications.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from awscrt import checksums as _crt


@dataclass(frozen=True)
class _Crc:
    width: int  # bits
    poly: int  # reflected polynomial
    fn: object  # awscrt one-shot function (data, previous) -> int


_CRCS = {
    "CRC32": _Crc(32, 0xEDB88320, _crt.crc32),
    "CRC32C": _Crc(32, 0x82F63B78, _crt.crc32c),
    "CRC64NVME": _Crc(64, 0x9A6C9329AC4BC9B5, _crt.crc64nvme),
}
_HASHES = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256}
#: Algorithms S3 allows as FULL_OBJECT checksums (the ones that combine).
FULL_OBJECT_ALGORITHMS = frozenset(_CRCS)
COMPOSITE_ALGORITHMS = frozenset({"CRC32", "CRC32C", "SHA1", "SHA256"})


def _multiply(a: int, b: int, crc: _Crc) -> int:
    """a * b mod P, both in reflected bit order (the top bit is x^0)."""
    top = 1 << (crc.width - 1)
    product = 0
    mask = top
    while mask:
        if a & mask:
            product ^= b
        mask >>= 1
        b = (b >> 1) ^ crc.poly if b & 1 else b >> 1
    return product


@functools.lru_cache(maxsize=64)
def _powers(algorithm: str) -> tuple[int, ...]:
    """x^(2^k) mod P for k = 0 … 63."""
    crc = _CRCS[algorithm]
    value = 1 << (crc.width - 2)  # x^1
    table = []
    for _ in range(64):
        table.append(value)
        value = _multiply(value, value, crc)
    return tuple(table)


@functools.lru_cache(maxsize=256)
def _shift(algorithm: str, length: int) -> int:
    """x^(8*length) mod P: what appending ``length`` zero bytes multiplies a raw CRC by."""
    crc = _CRCS[algorithm]
    powers = _powers(algorithm)
    result = 1 << (crc.width - 1)  # x^0
    n, k = length, 3  # 8*length = length << 3
    while n:
        if n & 1:
            result = _multiply(powers[k], result, crc)
        n >>= 1
        k += 1
    return result


def crc_combine(algorithm: str, first: int, second: int, second_length: int) -> int:
    """The CRC of A||B from crc(A), crc(B) and len(B) (zlib's crc32_combine, any reflected CRC)."""
    crc = _CRCS[algorithm]
    if second_length == 0:
        return first
    return _multiply(_shift(algorithm, second_length), first, crc) ^ second


def _decode(value: str) -> bytes:
    return base64.b64decode(value)


def full_object(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """The FULL_OBJECT checksum (base64) of parts given as (base64 part CRC, part length)."""
    crc = _CRCS[algorithm]
    total = crc.fn(b"")  # type: ignore[operator]  # the CRC of nothing
    for value, length in parts:
        total = crc_combine(algorithm, total, int.from_bytes(_decode(value), "big"), length)
    return base64.b64encode(total.to_bytes(crc.width // 8, "big")).decode()


def composite(algorithm: str, values: list[str]) -> str:
    """The COMPOSITE checksum: of the concatenated binary part checksums, then ``-N``."""
    raw = b"".join(_decode(v) for v in values)
    if algorithm in _CRCS:
        crc = _CRCS[algorithm]
        digest = crc.fn(raw).to_bytes(crc.width // 8, "big")  # type: ignore[operator]
    else:
        digest = _HASHES[algorithm](raw).digest()
    return f"{base64.b64encode(digest).decode()}-{len(values)}"


def checksum_of(algorithm: str, data: bytes) -> str:
    """One-shot base64 checksum of ``data`` (tests, small bodies)."""
    if algorithm in _CRCS:
        crc = _CRCS[algorithm]
        return base64.b64encode(crc.fn(data).to_bytes(crc.width // 8, "big")).decode()  # type: ignore[operator]
    return base64.b64encode(_HASHES[algorithm](data).digest()).decode()
