"""Listings against a brute-force S3 model (hypothesis), pagination, and common-prefix skipping."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostor.nameserver.memory import MemoryNameServer
from ostor.nameserver.records import ObjectRecord, Versioning
from ostor.nameserver.server import NameServer

from .conftest import NS_ID, FakeOS

E = Versioning.ENABLED
ALPHABET = "ab/é€😀"
keys_st = st.text(ALPHABET, min_size=1, max_size=6)
delims_st = st.sampled_from(["", "/", "//", "b/", "é", "😀"])
prefix_st = st.text(ALPHABET, max_size=3)


def enc(s: str) -> bytes:
    return s.encode()


def model_rollup(keys: list[str], prefix: str, delimiter: str, marker: str) -> list[tuple[str, str | None]]:
    """S3 semantics by brute force: (entry, key) pairs; entry is a key, or a CP with key None."""
    out: list[tuple[str, str | None]] = []
    for k in sorted(keys, key=enc):
        if not k.startswith(prefix):
            continue
        i = k.find(delimiter, len(prefix)) if delimiter else -1
        if i >= 0:
            cp = k[:i + len(delimiter)]
            if enc(cp) > enc(marker) and (not out or out[-1] != (cp, None)):
                out.append((cp, None))
        elif enc(k) > enc(marker):
            out.append((k, k))
    return out


async def build(ns, ops: list[tuple[str, bool]]) -> dict[str, list[tuple[str, bool]]]:
    """Apply (key, is_delete) ops on an ENABLED bucket; returns key -> versions newest first."""
    model: dict[str, list[tuple[str, bool]]] = {}
    for key, delete in ops:
        if delete:
            out = await ns.delete_name("b", key, None, E)
            model.setdefault(key, []).insert(0, (out.version_id, True))
        else:
            rec = await ns.create_name(ObjectRecord("b", key), None, E)
            model.setdefault(key, []).insert(0, (rec.version_id, False))
    return model


async def check_names(ns, model, prefix, delimiter, after, limit):
    live = [k for k, vs in model.items() if not vs[0][1]]
    full = model_rollup(live, prefix, delimiter, after)
    want = [e for e, _ in full]
    page = await ns.list_names("b", prefix, delimiter, after, limit)
    assert [(e.key, None if e.record is None else e.record.key) for e in page.entries] == full[:limit]
    assert page.truncated == (len(want) > limit)
    # paginating with after=last entry returns exactly the full listing
    got, marker = [], after
    for _ in range(200):
        page = await ns.list_names("b", prefix, delimiter, marker, max(limit, 1))
        got += [e.key for e in page.entries]
        if not page.truncated:
            break
        marker = page.entries[-1].key
    assert got == want


async def check_versions(ns, model, prefix, delimiter, limit):
    want = []
    for entry, key in model_rollup(list(model), prefix, delimiter, ""):
        want += [(entry, None)] if key is None else [(key, vid) for vid, _ in model[key]]
    got, km, vm = [], "", ""
    for _ in range(500):
        page = await ns.list_versions("b", prefix, delimiter, km, vm, max(limit, 1))
        for e in page.entries:
            if e.record is None:
                got.append((e.key, None))
            else:
                got.append((e.key, e.record.version_id))
                assert e.record.is_latest == (model[e.key][0][0] == e.record.version_id)
        if not page.truncated:
            break
        last = page.entries[-1]
        km, vm = (last.key, "") if last.record is None else (last.key, last.record.version_id)
    assert got == want


ops_st = st.lists(st.tuples(keys_st, st.sampled_from([False, False, True])), min_size=0,
                  max_size=25)
queries_st = st.lists(st.tuples(prefix_st, delims_st, st.text(ALPHABET, max_size=4), st.integers(0, 6)),
                      min_size=1, max_size=4)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_listing_matches_model(kind, tmp_path):
    counter = itertools.count()
    with asyncio.Runner() as runner:
        if kind == "sqlite":
            d = tmp_path / "ns"
            NameServer.create_service(d, NS_ID)
            shared = runner.run(NameServer.open(d, NS_ID, lambda _: FakeOS()))
        else:
            shared = None

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(ops=ops_st, queries=queries_st)
        def run(ops, queries):
            async def go():
                ns = shared if shared is not None else MemoryNameServer(NS_ID, lambda _: FakeOS())
                bucket_ns = _Rebucket(ns, f"b{next(counter)}")
                model = await build(bucket_ns, ops)
                for prefix, delimiter, after, limit in queries:
                    await check_names(bucket_ns, model, prefix, delimiter, after, limit)
                    await check_versions(bucket_ns, model, prefix, delimiter, limit)
            runner.run(go())
        try:
            run()
        finally:
            if shared is not None:
                runner.run(shared.close())


class _Rebucket:
    """Points the helpers' bucket "b" at a fresh bucket per hypothesis example."""

    def __init__(self, ns, bucket):
        self._ns, self._b = ns, bucket

    def __getattr__(self, name):
        fn = getattr(self._ns, name)

        def call(*args, **kw):
            if args and args[0] == "b":
                args = (self._b, *args[1:])
            elif args and isinstance(args[0], ObjectRecord):
                args = (ObjectRecord(self._b, args[0].key), *args[1:])
            return fn(*args, **kw)
        return call


async def test_common_prefix_skips_keys(ns):
    # 10 directories x 10,000 keys; a delimiter listing must seek past each directory, not walk it
    for d in range(10):
        await asyncio.gather(*(ns.create_name(ObjectRecord("b", f"d{d}/k{i:05}"), None, E) for i in range(10_000)))
    t = time.perf_counter()
    page = await ns.list_names("b", delimiter="/")
    dt = time.perf_counter() - t
    assert [e.key for e in page.entries] == [f"d{d}/" for d in range(10)] and not page.truncated
    t = time.perf_counter()
    vpage = await ns.list_versions("b", delimiter="/")
    dt_v = time.perf_counter() - t
    assert len(vpage.entries) == 10
    print(f"\n10 common prefixes over 100k keys: list_names {dt * 1e3:.2f} ms, list_versions {dt_v * 1e3:.2f} ms")
    assert dt < 0.05 and dt_v < 0.05
    page = await ns.list_names("b", delimiter="/", after="d3/", limit=2)
    assert [e.key for e in page.entries] == ["d4/", "d5/"] and page.truncated
    page = await ns.list_names("b", prefix="d7/", after="d7/k09997")
    assert [e.key for e in page.entries] == ["d7/k09998", "d7/k09999"]
