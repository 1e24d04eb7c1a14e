"""Engine fixtures: the real services on disk, and the in-memory twins."""

import pytest

from ostor.engine.engine import Engine
from ostor.engine.services import LocalServices, ServiceConfig


@pytest.fixture(params=["disk", "memory"])
async def engine(request, tmp_path):
    if request.param == "disk":
        eng = await Engine.open(tmp_path / "data", ServiceConfig(ns_count=4, os_count=4), start_workers=False)
    else:
        eng = Engine(LocalServices.in_memory(4, 4))
    await eng.create_bucket("bkt", "alice")
    yield eng
    await eng.close()


@pytest.fixture
async def disk_engine(tmp_path):
    eng = await Engine.open(tmp_path / "data", ServiceConfig(ns_count=4, os_count=4), start_workers=False)
    await eng.create_bucket("bkt", "alice")
    yield eng
    await eng.close()
