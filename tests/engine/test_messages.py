"""The message protocol: records, errors and frames survive encoding; the engine works through it."""

from __future__ import annotations

import os

import pytest

from ostor.common.errors import GuardMissingError, NoSuchKey, PreconditionFailed, TruncatedStreamError
from ostor.common.frames import FRAME_SIZE, Frame, OneFrame
from ostor.common.hashing import HASH_BATCH_BYTES
from ostor.common.ids import new_object_id
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig
from ostor.engine.transport import service_codec
from ostor.nameserver.records import ObjectRecord, PartRecord, Segment, Versioning

from .test_engine_objects import (  # the same behaviour tests, now through messages
    test_conditional_writes, test_copy, test_listing_across_name_servers_matches_model,
    test_put_get_head_delete, test_ranges, test_streamed_body_and_empty_object, test_versioning,
)
from .test_engine_multipart import test_upload_complete_subset_and_read

BEHAVIOUR = [test_conditional_writes, test_copy, test_listing_across_name_servers_matches_model,
             test_put_get_head_delete, test_ranges, test_streamed_body_and_empty_object, test_versioning,
             test_upload_complete_subset_and_read]


def test_records_and_errors_round_trip():
    codec = service_codec()
    segment = Segment(0x1000000000000004, os.urandom(16), 5)
    record = ObjectRecord("b", "k/é", "v1", size=5, etag='"x"', metadata={"a": "1"},
                          link=(segment,), parts=(PartRecord(1, 5, '"y"', segment, 7, {"CRC32": "AAAA"}),))
    assert codec.decode(codec.encode(record)) == record
    assert codec.decode(codec.encode(Versioning.SUSPENDED)) is Versioning.SUSPENDED
    error = codec.decode(codec.encode(NoSuchKey(headers={"x-amz-delete-marker": "true"}, Key="k")))
    assert type(error) is NoSuchKey and error.headers == {"x-amz-delete-marker": "true"} and error.fields == {"Key": "k"}
    oid = new_object_id()
    guard = codec.decode(codec.encode(GuardMissingError(oid)))
    assert type(guard) is GuardMissingError and guard.object_id == oid


@pytest.fixture
async def engine(tmp_path):
    eng = await Engine.open(tmp_path / "data", ServiceConfig(ns_count=3, os_count=2, messages=True),
                            start_workers=False)
    await eng.create_bucket("bkt", "alice")
    yield eng
    await eng.close()


@pytest.mark.parametrize("behaviour", BEHAVIOUR, ids=[t.__name__ for t in BEHAVIOUR])
async def test_engine_behaviour_through_messages(engine, behaviour):
    await behaviour(engine)


async def test_calls_really_are_messages(engine, monkeypatch):
    from ostor.common.messages import Codec, ServiceClient
    from ostor.nameserver.records import WriteCondition

    ns_id = engine.services.placement.bucket_name_server("bkt")
    assert isinstance(engine.services.name_servers[ns_id], ServiceClient)
    encoded = []
    original = Codec.encode
    monkeypatch.setattr(Codec, "encode", lambda self, value: encoded.append(value) or original(self, value))
    await engine.put_object("bkt", "x", b"1")
    assert any(isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], int) for v in encoded)
    with pytest.raises(PreconditionFailed):  # an error raised in the service comes back typed
        await engine.put_object("bkt", "x", b"2", condition=WriteCondition(if_none_match_star=True))


async def test_frames_stream_with_end_of_data(engine):
    os_id = engine.services.placement.object_servers[0]
    client = engine.services.object_server(os_id)

    async def frames():
        yield Frame(b"a" * 10, False)
        yield Frame(b"b" * 10, True)

    oid = new_object_id()
    assert (await client.create(oid, frames())).size == 20
    got = [f async for f in client.read(oid, 5, 10)]
    assert b"".join(f.data for f in got) == b"a" * 5 + b"b" * 5 and got[-1].eod

    async def truncated():
        yield Frame(b"c" * 10, False)

    with pytest.raises(TruncatedStreamError):
        await client.create(new_object_id(), truncated())

    async def broken():
        yield Frame(b"d" * 10, False)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):  # the caller's own error stays the caller's
        await client.create(new_object_id(), broken())
    assert await client.delete([oid]) == 1


async def test_one_frame_is_a_whole_small_payload():
    assert HASH_BATCH_BYTES <= FRAME_SIZE  # the engine's small bodies always fit one frame
    frames = [frame async for frame in OneFrame(b"abc")]
    assert [(bytes(f.data), f.eod) for f in frames] == [(b"abc", True)]
    assert [(bytes(f.data), f.eod) async for f in OneFrame(b"")] == [(b"", True)]
    with pytest.raises(ValueError):
        OneFrame(bytes(FRAME_SIZE + 1))
