"""The object server's operations as messages: op codes, data direction, and the types they carry.

``create`` takes data frames after its request; ``read`` answers with data
frames, the last flagged end-of-data (seed, "Operations on Objects").
"""

from __future__ import annotations

from ostor.common.messages import Operation

from .lock import ObjectExistsError, ServiceLockedError, ServiceMissingError
from .types import CreateResult, Lease, LeaseExtent, ObjectStat, PieceLocation

#: Op codes are part of the wire format: append new ones, never renumber.
OBJECT_SERVER_OPERATIONS = (
    Operation(1, "create", streams="in"),
    Operation(2, "read", streams="out"),
    Operation(3, "delete"),
    Operation(4, "collect_garbage"),
    Operation(5, "defragment"),
    Operation(6, "lease"),
    Operation(7, "renew_lease"),
    Operation(8, "release_lease"),
)

#: Types the object server's messages carry (order is part of the wire format).
OBJECT_SERVER_TYPES: tuple[type, ...] = (
    CreateResult, ObjectStat, PieceLocation, ObjectExistsError, ServiceLockedError, ServiceMissingError,
    LeaseExtent, Lease,
)
