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
