"""How objects are cut into pieces and which pool each piece goes to.

Twelve pools hold blocks of 4 KiB, 8 KiB … 8 MiB. An object's size is rounded up
to a multiple of 4 KiB and written as the binary decomposition of that number:
every full 8 MiB takes an 8 MiB block, and the rest takes one block per set bit,
largest first. This matches the seed exactly (30 KiB → one 32 KiB block;
129 KiB → 128 KiB + a 4 KiB block holding 1 KiB; 1 byte → one 4 KiB block),
wastes less than 4 KiB per object, and uses the fewest blocks that do so.
"""

from __future__ import annotations

MIN_BLOCK_SHIFT = 12  # 4 KiB
POOL_COUNT = 12
MIN_BLOCK = 1 << MIN_BLOCK_SHIFT
MAX_BLOCK = MIN_BLOCK << (POOL_COUNT - 1)  # 8 MiB
BLOCK_SIZES = tuple(MIN_BLOCK << i for i in range(POOL_COUNT))


def pool_index(block_size: int) -> int:
    """Return the pool number (0 = 4 KiB … 11 = 8 MiB) for a block size."""
    index = block_size.bit_length() - 1 - MIN_BLOCK_SHIFT
    if index < 0 or index >= POOL_COUNT or BLOCK_SIZES[index] != block_size:
        raise ValueError(f"not a pool block size: {block_size}")
    return index


def split_sizes(size: int) -> list[tuple[int, int]]:
    """Return ``(block_size, used_bytes)`` for each piece of a ``size``-byte object, in order.

    An empty object has no pieces.
    """
    if size < 0:
        raise ValueError("negative size")
    pieces: list[tuple[int, int]] = []
    remaining = size
    while remaining >= MAX_BLOCK:
        pieces.append((MAX_BLOCK, MAX_BLOCK))
        remaining -= MAX_BLOCK
    if remaining:
        rounded = -(-remaining // MIN_BLOCK) * MIN_BLOCK
        for shift in range(POOL_COUNT - 1, -1, -1):
            block = MIN_BLOCK << shift
            if rounded & block:
                used = min(block, remaining)
                pieces.append((block, used))
                remaining -= used
    return pieces


def piece_offsets(size: int) -> list[tuple[int, int, int]]:
    """Return ``(object_offset, block_size, used_bytes)`` for each piece of an object."""
    offset = 0
    out = []
    for block, used in split_sizes(size):
        out.append((offset, block, used))
        offset += used
    return out
