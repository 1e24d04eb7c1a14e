"""Service, user and object identifiers.

Service IDs are 64-bit with the service type in the top byte, printed as
16 hex digits (seed, "Data Interchange"): ``08…`` name server, ``10…`` object
server, ``80…`` gateway, ``01…`` volume.
"""

from __future__ import annotations

import enum
import os

OBJECT_ID_BYTES = 16


class ServiceType(enum.IntEnum):
    """The service type held in the top byte of a service ID."""

    VOLUME = 0x01
    NS = 0x08
    OS = 0x10
    GW = 0x80


def make_service_id(kind: ServiceType, number: int) -> int:
    """Return the 64-bit ID of service ``number`` of type ``kind``."""
    if not 0 <= number < 1 << 56:
        raise ValueError(f"service number out of range: {number}")
    return (int(kind) << 56) | number


def service_type(service_id: int) -> ServiceType:
    """Return the type encoded in a service ID."""
    return ServiceType(service_id >> 56)


def format_id(value: int) -> str:
    """Print a 64-bit ID as 16 lower-case hex digits."""
    return f"{value:016x}"


def parse_id(text: str) -> int:
    """Parse 16 hex digits into a 64-bit ID; ValueError on anything else."""
    if len(text) != 16:
        raise ValueError(f"an ID is 16 hex digits, got {text!r}")
    return int(text, 16)


def object_id_bytes(object_id: bytes | bytearray | memoryview) -> bytes:
    """``object_id`` as immutable bytes; ValueError unless it is OBJECT_ID_BYTES long."""
    oid = bytes(object_id)
    if len(oid) != OBJECT_ID_BYTES:
        raise ValueError(f"object id must be {OBJECT_ID_BYTES} bytes")
    return oid


def new_object_id() -> bytes:
    """Return a fresh random 128-bit object ID (unique without coordination)."""
    return os.urandom(OBJECT_ID_BYTES)


def new_object_ids(count: int) -> list[bytes]:
    """``count`` fresh random object IDs from one read of the system's random source."""
    raw = os.urandom(OBJECT_ID_BYTES * count)
    return [raw[i:i + OBJECT_ID_BYTES] for i in range(0, len(raw), OBJECT_ID_BYTES)]
