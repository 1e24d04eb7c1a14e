"""Multipart primitives through the engine: parts are objects; completion copies nothing."""

from __future__ import annotations

import hashlib
import os

import pytest

from ostor.common.errors import EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload
from ostor.engine.check import check_volume

MiB = 1 << 20


async def test_upload_complete_subset_and_read(engine):
    upload = await engine.create_upload("bkt", "mp/obj", owner="alice")
    parts = {n: os.urandom(5 * MiB + n) for n in (1, 2, 3)}
    etags = {}
    for n, data in parts.items():
        etags[n] = (await engine.upload_part("bkt", "mp/obj", upload.upload_id, n, data)).etag
    # Re-uploading part 2 replaces it.
    parts[2] = os.urandom(5 * MiB)
    etags[2] = (await engine.upload_part("bkt", "mp/obj", upload.upload_id, 2, parts[2])).etag
    listed, truncated = await engine.list_parts("bkt", "mp/obj", upload.upload_id)
    assert [p.number for p in listed] == [1, 2, 3] and not truncated
    record = await engine.complete_upload("bkt", "mp/obj", upload.upload_id, [(1, etags[1]), (3, etags[3])])
    expected_etag = hashlib.md5(bytes.fromhex(etags[1].strip('"')) + bytes.fromhex(etags[3].strip('"'))).hexdigest()
    assert record.etag == f'"{expected_etag}-2"' and record.size == len(parts[1]) + len(parts[3])
    reader = await engine.get_object("bkt", "mp/obj")
    assert await reader.read() == parts[1] + parts[3]
    # The completed object is the parts table: its segments are the parts' objects.
    assert [s.object_id for s in record.link] == [p.segment.object_id for p in record.parts]
    with pytest.raises(NoSuchUpload):
        await engine.list_parts("bkt", "mp/obj", upload.upload_id)


async def test_complete_validation(engine):
    upload = await engine.create_upload("bkt", "v", owner="alice")
    small = await engine.upload_part("bkt", "v", upload.upload_id, 1, b"x" * 100)
    big = await engine.upload_part("bkt", "v", upload.upload_id, 2, b"y" * 100)
    with pytest.raises(InvalidPartOrder):
        await engine.complete_upload("bkt", "v", upload.upload_id, [(2, big.etag), (1, small.etag)])
    with pytest.raises(InvalidPart):
        await engine.complete_upload("bkt", "v", upload.upload_id, [(1, '"0000"')])
    with pytest.raises(InvalidPart):
        await engine.complete_upload("bkt", "v", upload.upload_id, [(7, small.etag)])
    with pytest.raises(EntityTooSmall):
        await engine.complete_upload("bkt", "v", upload.upload_id, [(1, small.etag), (2, big.etag)])
    await engine.abort_upload("bkt", "v", upload.upload_id)
    with pytest.raises(NoSuchUpload):
        await engine.abort_upload("bkt", "v", upload.upload_id)


async def test_list_uploads_across_name_servers(engine):
    ids = {}
    for key in ["a/1", "a/2", "b/1", "c", "d/e/f"]:
        ids[key] = (await engine.create_upload("bkt", key, owner="alice")).upload_id
    page = await engine.list_uploads("bkt", delimiter="/")
    assert [u.key for u in page.uploads] == ["c"] and page.common_prefixes == ["a/", "b/", "d/"]
    walked, key_marker, id_marker = [], "", ""
    while True:
        page = await engine.list_uploads("bkt", key_marker=key_marker, upload_id_marker=id_marker, max_uploads=2)
        walked += [u.key for u in page.uploads]
        if not page.truncated:
            break
        key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
    assert walked == sorted(ids)


async def test_aborted_and_unused_parts_are_collected(disk_engine):
    upload = await disk_engine.create_upload("bkt", "gc/obj", owner="alice")
    part1 = await disk_engine.upload_part("bkt", "gc/obj", upload.upload_id, 1, os.urandom(5 * MiB))
    await disk_engine.upload_part("bkt", "gc/obj", upload.upload_id, 2, os.urandom(1000))
    await disk_engine.upload_part("bkt", "gc/obj", upload.upload_id, 3, os.urandom(1000))
    usage = await disk_engine.bucket_usage("bkt")
    assert usage.upload_bytes == 5 * MiB + 2000
    await disk_engine.complete_upload("bkt", "gc/obj", upload.upload_id, [(1, part1.etag)])
    other = await disk_engine.create_upload("bkt", "gc/other", owner="alice")
    await disk_engine.upload_part("bkt", "gc/other", other.upload_id, 1, os.urandom(3000))
    await disk_engine.abort_upload("bkt", "gc/other", other.upload_id)
    await disk_engine.collect_garbage()
    report = await check_volume(disk_engine.services)
    assert report.clean and report.pending == 0
    assert report.objects == 1  # only part 1 remains, as the object itself


# -- checksums of completed uploads, part spans, usage --------------------------------------------
from ostor.common.errors import BadDigest, InvalidPartNumber, InvalidRequest  # noqa: E402
from ostor.engine import crc  # noqa: E402
from ostor.engine.multipart import checksum_type_for, part_span  # noqa: E402
from ostor.engine.reader import covering_slices  # noqa: E402


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_crc_combine_matches_one_pass(algorithm):
    rng = __import__("random").Random(algorithm)
    data = os.urandom(300_000)
    cuts = sorted(rng.sample(range(1, len(data)), 7))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])] + [b""]
    combined = crc.full_object(algorithm, [(crc.checksum_of(algorithm, p), len(p)) for p in pieces])
    assert combined == crc.checksum_of(algorithm, data)


def test_checksum_type_rules():
    assert checksum_type_for("CRC32", None) == "COMPOSITE"
    assert checksum_type_for("CRC64NVME", None) == "FULL_OBJECT"
    assert checksum_type_for("CRC32C", "FULL_OBJECT") == "FULL_OBJECT"
    assert checksum_type_for(None, None) is None
    for algorithm, kind in [("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"), (None, "COMPOSITE"),
                            ("CRC32", "BOTH")]:
        with pytest.raises(InvalidRequest):
            checksum_type_for(algorithm, kind)


async def _upload_with_checksums(engine, key, algorithm, kind, datas):
    upload = await engine.create_upload("bkt", key, checksum_algorithm=algorithm, checksum_type=kind)
    parts = []
    for number, data in enumerate(datas, 1):
        value = crc.checksum_of(algorithm, data)
        part = await engine.upload_part("bkt", key, upload.upload_id, number, data, checksums={algorithm: value})
        parts.append(part)
    return upload, parts


@pytest.mark.parametrize("algorithm,kind", [("CRC32", "COMPOSITE"), ("CRC32", "FULL_OBJECT"),
                                            ("CRC32C", "FULL_OBJECT"), ("CRC64NVME", "FULL_OBJECT"),
                                            ("SHA256", "COMPOSITE")])
async def test_complete_computes_object_checksum(engine, algorithm, kind):
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB + 3), os.urandom(777)]
    upload, parts = await _upload_with_checksums(engine, "ck", algorithm, kind, datas)
    claims = {p.number: {algorithm: p.checksums[algorithm]} for p in parts}
    record = await engine.complete_upload("bkt", "ck", upload.upload_id, [(p.number, p.etag) for p in parts],
                                          part_checksums=claims, object_size=sum(map(len, datas)))
    if kind == "FULL_OBJECT":
        assert record.checksums == {algorithm: crc.checksum_of(algorithm, b"".join(datas))}
    else:
        raw = b"".join(__import__("base64").b64decode(p.checksums[algorithm]) for p in parts)
        assert record.checksums == {algorithm: crc.checksum_of(algorithm, raw) + "-3"}
    assert record.checksum_type == kind
    stored = await engine.head_object("bkt", "ck")
    assert stored.checksums == record.checksums and [p.checksums for p in stored.parts] == [p.checksums for p in parts]


async def test_complete_checksum_validation(engine):
    datas = [os.urandom(5 * MiB), b"tail"]
    upload, parts = await _upload_with_checksums(engine, "cv", "CRC32", "COMPOSITE", datas)
    chosen = [(p.number, p.etag) for p in parts]
    good = {p.number: {"CRC32": p.checksums["CRC32"]} for p in parts}
    with pytest.raises(InvalidRequest):  # COMPOSITE needs every part's checksum in the request
        await engine.complete_upload("bkt", "cv", upload.upload_id, chosen, part_checksums={1: good[1]})
    with pytest.raises(InvalidPart):
        await engine.complete_upload("bkt", "cv", upload.upload_id, chosen,
                                     part_checksums={**good, 2: {"CRC32": "AAAAAA=="}})
    with pytest.raises(InvalidRequest):
        await engine.complete_upload("bkt", "cv", upload.upload_id, chosen, part_checksums=good, object_size=1)
    with pytest.raises(BadDigest):
        await engine.complete_upload("bkt", "cv", upload.upload_id, chosen, part_checksums=good,
                                     claimed_checksum=("CRC32", "AAAAAA==-2"))
    record = await engine.complete_upload("bkt", "cv", upload.upload_id, chosen, part_checksums=good)
    assert record.checksums["CRC32"].endswith("-2")


async def test_part_spans_and_ranged_reads_touch_only_needed_parts(engine):
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(10)]
    upload = await engine.create_upload("bkt", "span")
    parts = [await engine.upload_part("bkt", "span", upload.upload_id, n, d) for n, d in enumerate(datas, 1)]
    record = await engine.complete_upload("bkt", "span", upload.upload_id, [(p.number, p.etag) for p in parts])
    assert part_span(record, 2) == (5 * MiB, 5 * MiB) and part_span(record, 3) == (10 * MiB, 10)
    with pytest.raises(InvalidPartNumber):
        part_span(record, 4)
    # A range across the boundary of parts 1 and 2 reads the end of one and the start of the other only.
    slices = covering_slices(record.link, 5 * MiB - 100, 200)
    assert [(s.segment.object_id, s.offset, s.length) for s in slices] == [
        (parts[0].segment.object_id, 5 * MiB - 100, 100), (parts[1].segment.object_id, 0, 100)]
    reader = await engine.get_object("bkt", "span")
    from dataclasses import replace
    assert await replace(reader, start=5 * MiB - 100, length=200, partial=True).read() == \
        datas[0][-100:] + datas[1][:100]
    plain = await engine.put_object("bkt", "plain", b"abc")
    assert part_span(plain, 1) == (0, 3)
    with pytest.raises(InvalidPartNumber):
        part_span(plain, 2)


async def test_unfinished_upload_counts_until_aborted(engine):
    before = await engine.bucket_usage("bkt")
    upload = await engine.create_upload("bkt", "pending")
    await engine.upload_part("bkt", "pending", upload.upload_id, 1, b"x" * 4096)
    await engine.upload_part("bkt", "pending", upload.upload_id, 2, b"y" * 1000)
    await engine.upload_part("bkt", "pending", upload.upload_id, 2, b"z" * 500)  # replaces part 2
    during = await engine.bucket_usage("bkt")
    assert during.upload_bytes - before.upload_bytes == 4596
    await engine.abort_upload("bkt", "pending", upload.upload_id)
    assert (await engine.bucket_usage("bkt")).upload_bytes == before.upload_bytes
