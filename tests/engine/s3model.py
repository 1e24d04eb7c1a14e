"""A brute-force model of S3 listing semantics over a plain sorted list (tests only)."""

from __future__ import annotations


def model_entries(keys, prefix: str = "", delimiter: str = "", after: str = "") -> list[tuple[str, bool]]:
    """Every (name, is_prefix) S3 lists after ``after``, in order, without a page limit."""
    out: list[tuple[str, bool]] = []
    for key in sorted(set(keys)):
        if not key.startswith(prefix):
            continue
        if delimiter:
            at = key.find(delimiter, len(prefix))
            if at >= 0:
                common = key[: at + len(delimiter)]
                if common > after and (not out or out[-1] != (common, True)):
                    out.append((common, True))
                continue
        if key > after:
            out.append((key, False))
    return out
