"""Fixtures for the guest API: a real `ostor server`, ostor-ctl as a process, clients under other uids.

The tests run as root and fork children that drop to unprivileged uids, so
that SO_PEERCRED on the guest socket sees genuinely different callers. The
socket lives in a world-traversable temporary directory (pytest's own tmp
tree is root-only).
"""

from __future__ import annotations

import http.client
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import ServerProcess

if os.geteuid() != 0:
    pytest.skip("guest API process tests fork children under other uids: run as root", allow_module_level=True)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket (keep-alive like any HTTPConnection)."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def request(path: str, method: str, url: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers, body)."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class Child:
    """A forked process running ``fn(sync, *args)`` as uid/gid; its return value comes back pickled.

    ``sync.ready()`` in the child releases ``wait_ready()`` in the parent, and
    ``go()`` in the parent releases ``sync.wait_go()`` in the child.
    """

    def __init__(self, uid: int, gid: int, fn: Callable[..., Any], *args: Any) -> None:
        self.result_r, result_w = os.pipe()
        self.ready_r, ready_w = os.pipe()
        go_r, self.go_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: drop privileges, run, report, never return into pytest
            code = 0
            try:
                os.close(self.result_r), os.close(self.ready_r), os.close(self.go_w)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                sync = _Sync(ready_w, go_r)
                try:
                    payload = ("ok", fn(sync, *args))
                except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                    payload = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                with os.fdopen(result_w, "wb") as out:
                    pickle.dump(payload, out)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        os.close(result_w), os.close(ready_w), os.close(go_r)

    def wait_ready(self) -> None:
        """Block until the child called ``sync.ready()``."""
        assert os.read(self.ready_r, 1) == b"R", "child died before it was ready"

    def go(self) -> None:
        """Let the child past ``sync.wait_go()``."""
        os.write(self.go_w, b"G")

    def result(self) -> Any:
        """Wait for the child and return what ``fn`` returned (AssertionError with its traceback if it failed)."""
        with os.fdopen(self.result_r, "rb") as inp:
            data = inp.read()
        os.waitpid(self.pid, 0)
        os.close(self.ready_r), os.close(self.go_w)
        assert data, "child exited without a result"
        status, value = pickle.loads(data)
        assert status == "ok", value
        return value


class _Sync:
    def __init__(self, ready_w: int, go_r: int) -> None:
        self.ready_w, self.go_r = ready_w, go_r

    def ready(self) -> None:
        os.write(self.ready_w, b"R")

    def wait_go(self) -> None:
        assert os.read(self.go_r, 1) == b"G"


def as_user(uid: int, fn: Callable[..., Any], *args: Any, gid: int | None = None) -> Any:
    """Run ``fn(sync, *args)`` in a child under ``uid`` and return its result."""
    return Child(uid, uid if gid is None else gid, fn, *args).result()


class GuestServer(ServerProcess):
    """An `ostor server` with its guest socket in a directory every uid can reach."""

    def __init__(self, data_dir: Path) -> None:
        self.socket_dir = Path(tempfile.mkdtemp(prefix="ostor-guest-"))
        os.chmod(self.socket_dir, 0o755)
        self.guest_socket = str(self.socket_dir / "guestapi.sock")
        super().__init__(data_dir, "--guestapi-socket", self.guest_socket)

    def stop(self) -> int | None:
        try:
            return super().stop()
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def ctl(data_dir: Path, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ostor-ctl on a data directory as a real process."""
    env = dict(os.environ, OSTOR_DATA=str(data_dir), PYTHONIOENCODING="utf-8")
    result = subprocess.run([sys.executable, "-m", "ostor.admin.ctl", *args], capture_output=True,
                            text=True, encoding="utf-8", env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f"ostor-ctl {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def guest_server(tmp_path_factory):
    proc = GuestServer(tmp_path_factory.mktemp("guestapi") / "data").start()
    yield proc
    proc.stop()
