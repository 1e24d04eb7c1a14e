"""The commit thread: each batch's owed syncs, then COMMIT; syncs of queued requests run ahead."""

from __future__ import annotations

import asyncio
import errno
import queue
import sqlite3
import threading

import pytest

from ostor.common.ids import ServiceType, make_service_id, new_object_id
from ostor.nameserver.committer import BATCHES_AHEAD, CommitThread, OwedSyncs, run_owed
from ostor.nameserver.records import ObjectRecord, Segment, Versioning
from ostor.nameserver.server import NameServer

from .conftest import OS_ID, put

NS_IDS = {n: make_service_id(ServiceType.NS, n) for n in (1, 2, 3)}


@pytest.fixture
def conn(tmp_path):
    connection = sqlite3.connect(tmp_path / "t.db", isolation_level=None, check_same_thread=False)
    connection.execute("CREATE TABLE t (v)")
    yield connection
    connection.close()


def committed(conn: sqlite3.Connection, path) -> list:
    """Rows a separate connection sees."""
    other = sqlite3.connect(path)
    try:
        return [row[0] for row in other.execute("SELECT v FROM t ORDER BY v")]
    finally:
        other.close()


class Jobs:
    """Runs jobs on a CommitThread one by one and hands back what ``done`` got."""

    def __init__(self, waiting: list[OwedSyncs]) -> None:
        self.thread = CommitThread("test-commit")
        self.thread.attach(lambda: list(waiting))
        self.outcomes: queue.SimpleQueue = queue.SimpleQueue()

    def commit(self, conn: sqlite3.Connection, value: int, owed: list[OwedSyncs]) -> BaseException | None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        self.thread.commit(conn, owed, self.outcomes.put)
        outcome = self.outcomes.get(timeout=10)
        if outcome is not None:
            conn.execute("ROLLBACK")
        return outcome


def test_owed_calls_run_once_each_before_the_commit(conn, tmp_path):
    seen = []

    def call(name):
        return lambda: seen.append((name, committed(conn, tmp_path / "t.db")))

    shared = call("shared")
    jobs = Jobs([])
    try:
        assert jobs.commit(conn, 1, [OwedSyncs((call("a"), shared)), OwedSyncs((shared,))]) is None
    finally:
        jobs.thread.close()
    assert seen == [("a", []), ("shared", [])]  # before the COMMIT, and the shared call once
    assert committed(conn, tmp_path / "t.db") == [1]


def test_requests_queued_during_a_commit_are_synced_ahead_of_their_batch(conn, tmp_path):
    calls = []
    ahead = threading.Event()

    def sync_b() -> None:
        calls.append(threading.current_thread().name)
        ahead.set()

    waiting = [OwedSyncs((sync_b,))]  # queued while the first batch commits
    jobs = Jobs(waiting)
    try:
        assert jobs.commit(conn, 1, []) is None
        assert ahead.wait(10)  # run right after the COMMIT, with no job waiting
        item = waiting.pop()
        assert jobs.commit(conn, 2, [item]) is None  # its own batch: nothing owed any more
    finally:
        jobs.thread.close()
    assert calls == ["test-commit"]
    assert item.calls == () and item.error is None
    assert committed(conn, tmp_path / "t.db") == [1, 2]


def test_a_failed_sync_ahead_fails_the_batch_that_names_the_data(conn, tmp_path):
    attempts = []
    tried = threading.Event()

    def broken() -> None:
        attempts.append(1)
        tried.set()
        raise OSError(errno.EIO, "Input/output error")

    waiting = [OwedSyncs((broken,))]
    jobs = Jobs(waiting)
    try:
        assert jobs.commit(conn, 1, []) is None
        assert tried.wait(10)  # the sync ahead of need failed
        item = waiting.pop()
        outcome = jobs.commit(conn, 2, [item])
    finally:
        jobs.thread.close()
    assert isinstance(outcome, OSError) and outcome.errno == errno.EIO
    assert attempts == [1]  # not retried: a second fdatasync could falsely succeed
    assert committed(conn, tmp_path / "t.db") == [1]  # the name was never committed


def test_run_owed_raises_a_recorded_failure_without_calling_anything():
    called = []
    failed = OwedSyncs((lambda: called.append(1),))
    failed.error = OSError(errno.EIO, "earlier")
    with pytest.raises(OSError, match="earlier"):
        run_owed([OwedSyncs((lambda: called.append(2),)), failed])
    assert called == []


async def test_a_shared_thread_keeps_committing_for_a_name_server_after_another_closed(tmp_path, fake_os):
    shared = CommitThread("shared-commit")
    servers = []
    try:
        for number in (1, 2):
            directory = tmp_path / f"ns{number}"
            NameServer.create_service(directory, NS_IDS[number])
            servers.append(await NameServer.open(directory, NS_IDS[number], lambda os_id: fake_os,
                                                 committer=shared))
        await put(servers[0], "b", "k", Versioning.NONE)
        await servers[0].close()
        assert shared._thread.is_alive()  # the first name server left the shared thread running
        rec, _ = await put(servers[1], "b", "k", Versioning.NONE)
        assert (await servers[1].lookup("b", "k")).etag == rec.etag
    finally:
        for server in servers:
            await server.close()
        shared.close()
    assert not shared._thread.is_alive()


async def test_a_writer_forms_its_batch_only_when_the_thread_has_room(tmp_path, fake_os):
    # Three name servers share a thread. While it is stuck in the first one's batch and
    # holds a second one's, the third waits to form its batch, so the requests it gets
    # meanwhile commit together instead of in a batch each.
    assert BATCHES_AHEAD == 2
    shared = CommitThread("shared-commit")
    servers = []
    entered, go_on = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        assert go_on.wait(10)

    async def guarded(server, key):
        """A guard taken now, and the request naming its data, to be awaited later."""
        oid = new_object_id()
        await server.guard(OS_ID, oid)
        return lambda **kw: server.create_name(ObjectRecord("b", key, size=1, link=(Segment(OS_ID, oid, 1),)),
                                               oid, Versioning.NONE, **kw)

    try:
        for number in (1, 2, 3):
            directory = tmp_path / f"ns{number}"
            NameServer.create_service(directory, NS_IDS[number])
            servers.append(await NameServer.open(directory, NS_IDS[number], lambda os_id: fake_os,
                                                 committer=shared))
        first, second, third = servers
        name_a, name_b = await guarded(first, "a"), await guarded(second, "b")
        names_c = [await guarded(third, f"c{i}") for i in range(3)]
        pending = [asyncio.ensure_future(name_a(before_commit=(stuck,)))]
        while not entered.is_set():
            await asyncio.sleep(0.005)
        pending.append(asyncio.ensure_future(name_b()))
        await asyncio.sleep(0.05)
        before = third._writer.transactions
        for name in names_c:  # a loop turn apart: without the wait, the first forms a batch alone
            pending.append(asyncio.ensure_future(name()))
            await asyncio.sleep(0.01)
        assert third._writer.transactions == before
        go_on.set()
        await asyncio.gather(*pending)
        assert third._writer.transactions == before + 1
        assert {k async for k in keys(third)} == {"c0", "c1", "c2"}
    finally:
        go_on.set()
        for server in servers:
            await server.close()
        shared.close()


async def keys(server):
    """The keys a name server holds in bucket "b"."""
    for row in server._rconn.execute("SELECT key FROM objects WHERE bucket='b'"):
        yield row[0].decode()
