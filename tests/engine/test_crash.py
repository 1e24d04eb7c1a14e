"""Crash safety: a writer killed with SIGKILL at random moments never loses or half-writes.

After every kill: every acknowledged create reads back byte-exact, nothing that
was never begun is visible, an in-flight operation is either wholly there or
wholly absent, and after GC ``ostor-ctl check`` (a real process) is clean.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ostor.common.errors import NoSuchKey
from ostor.engine.engine import Engine
from ostor.engine.services import ServiceConfig

from .crash_writer import payload

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = int(os.environ.get("OSTOR_CRASH_ROUNDS", "12"))


def _run_writer(data_dir: Path, seed: int, lifetime: float) -> list[list[str]]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-m", "tests.engine.crash_writer", str(data_dir), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=Path(__file__).resolve().parents[2])
    time.sleep(lifetime)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    lines = [line.split() for line in out.decode().splitlines()]
    if not any(line == ["READY"] for line in lines) and b"Traceback" in err:
        raise AssertionError(f"writer failed before the kill:\n{err.decode()}")
    return [line for line in lines if len(line) == 4]


def _allowed_states(ops: list[list[str]]) -> list[tuple[str, int]]:
    """The acceptable final states of one key: after its last ACK, or after the op still in flight."""
    state: tuple[str, int] = ("absent", 0)
    in_flight: tuple[str, int] | None = None
    for kind, op, _key, gen in ops:
        after = ("absent", 0) if op == "del" else ("put", int(gen))
        if kind == "BEGIN":
            in_flight = after
        else:
            state, in_flight = after, None
    return [state] + ([in_flight] if in_flight else [])


async def _actual(engine: Engine, key: str) -> bytes | None:
    try:
        return await (await engine.get_object("crash", key)).read()
    except NoSuchKey:
        return None


def _matches(actual: bytes | None, state: tuple[str, int], key: str) -> bool:
    return actual is None if state[0] == "absent" else actual == payload(key, state[1])


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path):
    data_dir = tmp_path / "data"
    rnd = random.Random(int(os.environ.get("OSTOR_CRASH_SEED", "20261121")))
    settled: dict[str, bytes | None] = {}
    killed_mid_operation = 0
    for round_no in range(ROUNDS):
        lines = _run_writer(data_dir, round_no, rnd.uniform(0.6, 2.5))
        per_key: dict[str, list[list[str]]] = {}
        for line in lines:
            per_key.setdefault(line[2], []).append(line)
        killed_mid_operation += sum(ops[-1][0] == "BEGIN" for ops in per_key.values())

        async def verify() -> None:
            engine = await Engine.open(data_dir, ServiceConfig(ns_count=2, os_count=2), start_workers=False)
            try:
                for key, ops in per_key.items():
                    actual = await _actual(engine, key)
                    states = _allowed_states(ops)
                    assert any(_matches(actual, s, key) for s in states), (
                        f"round {round_no}: {key} holds {None if actual is None else len(actual)} bytes, "
                        f"allowed {states}")
                    settled[key] = actual
                for key, expected in settled.items():  # earlier rounds' keys never change again
                    assert await _actual(engine, key) == expected, f"round {round_no}: {key} changed"
                listed = set()
                marker = ""
                while True:
                    page = await engine.list_objects("crash", start_after=marker, max_keys=500)
                    listed.update(o.key for o in page.objects)
                    if not page.truncated:
                        break
                    marker = page.next_marker
                assert listed == {k for k, v in settled.items() if v is not None}
                await engine.collect_garbage(expire_guards_at=float("inf"))
            finally:
                await engine.close()

        asyncio.run(verify())
        check = subprocess.run([sys.executable, "-m", "ostor.admin.ctl", "check", str(data_dir)],
                               capture_output=True, text=True)
        assert check.returncode == 0, f"round {round_no}: check failed:\n{check.stdout}{check.stderr}"
    assert sum(v is not None for v in settled.values()) > 10, "the writer barely wrote anything"
    assert killed_mid_operation >= ROUNDS, "the kills did not land while operations were in flight"
