"""The k-way merge of per-shard listings returns exactly what one sorted list would."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ostor.engine.listing import MIN_FIRST_FETCH, merge_pages
from ostor.nameserver.records import ListEntry, ListPage, ObjectRecord

from .s3model import model_entries


def _shard_fetcher(keys, prefix, delimiter, calls):
    async def fetch(after, limit):
        calls.append(limit)
        rows = model_entries(keys, prefix, delimiter, after)
        page = rows[:limit]
        entries = [ListEntry(name, None if is_prefix else ObjectRecord("b", name)) for name, is_prefix in page]
        return ListPage(entries, len(rows) > limit)
    return fetch


def _split(keys, shards, seed):
    rnd = random.Random(seed)
    out = [[] for _ in range(shards)]
    for key in keys:
        # Names of one directory live on one shard, like the real placement.
        out[hash((seed, key[: key.rfind("/") + 1])) % shards if rnd.random() < 0.7 else rnd.randrange(shards)].append(key)
    return out


keys_strategy = st.lists(st.text(alphabet="ab/é-", min_size=1, max_size=6), max_size=40, unique=True)


@settings(max_examples=300, deadline=None)
@given(keys=keys_strategy, prefix=st.sampled_from(["", "a", "a/", "b/a", "é"]),
       delimiter=st.sampled_from(["", "/", "a/", "-"]), after=st.text(alphabet="ab/", max_size=4),
       limit=st.integers(1, 7), shards=st.integers(1, 5), seed=st.integers(0, 10))
async def test_merge_matches_model(keys, prefix, delimiter, after, limit, shards, seed):
    expected = model_entries(keys, prefix, delimiter, after)
    fetchers = [_shard_fetcher(part, prefix, delimiter, []) for part in _split(keys, shards, seed)]
    page = await merge_pages(fetchers, after, limit, lambda e: e.key)
    assert [(e.key, e.is_prefix) for e in page.entries] == expected[:limit]
    assert page.truncated == (len(expected) > limit)
    # Resuming after the last entry walks the rest without repeats or gaps.
    walked = [(e.key, e.is_prefix) for e in page.entries]
    while page.truncated:
        page = await merge_pages(fetchers, walked[-1][0], limit, lambda e: e.key)
        walked += [(e.key, e.is_prefix) for e in page.entries]
    assert walked == expected


async def test_common_prefix_spanning_shards_is_emitted_once():
    shards = [["photos/1.jpg", "photos/2.jpg"], ["photos/3.jpg", "zeta"], ["photos/4.jpg", "alpha"]]
    fetchers = [_shard_fetcher(s, "", "/", []) for s in shards]
    page = await merge_pages(fetchers, "", 2, lambda e: e.key)
    assert [(e.key, e.is_prefix) for e in page.entries] == [("alpha", False), ("photos/", True)]
    assert page.truncated
    page = await merge_pages(fetchers, "photos/", 5, lambda e: e.key)
    assert [e.key for e in page.entries] == ["zeta"] and not page.truncated


async def test_zero_limit():
    page = await merge_pages([_shard_fetcher(["a"], "", "", [])], "", 0, lambda e: e.key)
    assert page.entries == [] and not page.truncated


async def test_a_page_from_one_shard_reads_little_of_the_others():
    """A recursive listing's page mostly comes from one shard (one directory): the other
    shards are read in small steps, not a whole page each."""
    limit = 100
    shards = [[f"d/{i:04d}" for i in range(1000)]] + [[f"e{n}/{i:04d}" for i in range(1000)] for n in range(3)]
    calls = [[] for _ in shards]
    fetchers = [_shard_fetcher(keys, "", "", c) for keys, c in zip(shards, calls)]
    page = await merge_pages(fetchers, "", limit, lambda e: e.key)
    assert [e.key for e in page.entries] == shards[0][:limit] and page.truncated
    assert sum(map(sum, calls)) <= 2 * (limit + 1)
    assert all(sum(c) <= MIN_FIRST_FETCH for c in calls[1:])
