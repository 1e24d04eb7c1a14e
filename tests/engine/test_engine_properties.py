"""Property test: random put / overwrite / delete / read / restart sequences on the real engine.

Every read is byte-exact against a dict model, listings match the model, and
after GC the volume check finds no damaged and no leaked block.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ostor.common.errors import NoSuchKey
from ostor.engine.check import check_volume
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig
from ostor.engine.types import ByteRange

KEYS = ["a", "a/b", "a/c", "dir/x", "dir/y/z", "é/ü", "top"]
SIZES = [0, 1, 4095, 4096, 4097, 30 * 1024, 129 * 1024, 8 * 1024 * 1024 + 1]
CONFIG = ServiceConfig(ns_count=3, os_count=2)


class EngineMachine(RuleBasedStateMachine):
    """The engine against a dict of key -> bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="ostor-prop-"))
        self.model: dict[str, bytes] = {}
        self.engine = self.run(Engine.open(self.dir, CONFIG, start_workers=False))
        self.run(self.engine.create_bucket("prop", "owner"))

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    @rule(key=st.sampled_from(KEYS), size=st.sampled_from(SIZES), seed=st.integers(0, 3))
    def put(self, key, size, seed):
        data = random.Random(f"{key}{size}{seed}").randbytes(size)
        record = self.run(self.engine.put_object("prop", key, data))
        assert record.size == size
        self.model[key] = data

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key):
        self.run(self.engine.delete_object("prop", key))
        self.model.pop(key, None)

    @rule(key=st.sampled_from(KEYS), first=st.integers(0, 9_000_000), span=st.integers(1, 300_000))
    def read_range(self, key, first, span):
        if key not in self.model:
            return
        data = self.model[key]
        if first >= len(data):
            return
        reader = self.run(self.engine.get_object("prop", key, byte_range=ByteRange(first, first + span - 1)))
        assert self.run(reader.read()) == data[first:first + span]

    @rule()
    def restart(self):
        self.run(self.engine.close())
        self.engine = self.run(Engine.open(self.dir, CONFIG, start_workers=False))

    @rule()
    def gc(self):
        self.run(self.engine.collect_garbage())

    @precondition(lambda self: True)
    @invariant()
    def every_key_reads_back(self):
        for key in KEYS:
            try:
                got = self.run(self.run(self.engine.get_object("prop", key)).read())
            except NoSuchKey:
                got = None
            assert got == self.model.get(key), key
        listed = self.run(self.engine.list_objects("prop"))
        assert [o.key for o in listed.objects] == sorted(self.model)

    def teardown(self):
        try:
            self.run(self.engine.collect_garbage())
            report = self.run(check_volume(self.engine.services))
            assert report.clean, "\n".join(report.lines())
            assert report.pending == 0
        finally:
            self.run(self.engine.close())
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)


EngineMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestEngineProperties = EngineMachine.TestCase
