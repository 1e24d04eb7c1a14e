"""How ostor-s3-admin reaches the store: the running server's admin socket, or the data directory.

A server that runs owns the volume (it holds every service's lock), so the
tool must go through DATA_DIR/admin.sock; when no server answers there, the
tool opens the volume itself and runs the same :class:`AdminService`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import click

from ostor.common.errors import (
    AdminError, InternalError, InvalidAdminArgument, OstorError, S3Error, admin_error_class, error_class,
)
from ostor.engine.volume import VOLUME_FILE, VolumeLayout
from ostor.admin.service import SOCKET_NAME, AdminService
from ostor.gateway.stats import Statistics
from ostor.gateway.users import UserStore

Progress = Callable[[int, int | None], None]


class AdminUnavailable(OstorError):
    """Neither a running server nor the data directory could be used."""


def rebuild_error(doc: dict[str, Any]) -> OstorError:
    """The exception an ``{"error": ...}`` line from the socket stands for (by type, not text)."""
    message = doc.get("message", "")
    if doc.get("type") == "S3Error":
        try:
            return error_class(doc.get("code", ""))(message)
        except KeyError:
            return InternalError(message)
    try:
        return admin_error_class(doc.get("type", ""))(message)
    except KeyError:
        return InternalError(message)


def server_is_listening(path: Path) -> bool:
    """Whether a live process accepts connections on the admin socket."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:  # no socket file, or a stale one (connection refused)
        return False
    finally:
        probe.close()


def volume_id(data_dir: Path) -> str | None:
    """The 16-hex ID of the volume in ``data_dir``, or None when there is no volume.json."""
    if not (Path(data_dir) / VOLUME_FILE).exists():
        return None
    return f"{VolumeLayout.load(Path(data_dir)).volume_id:016x}"


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    # Split by hand: a result line (every user of a large volume) can exceed readline's limit.
    pending = b""
    async for chunk in stream.iter_any():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


async def call_socket(path: Path, command: str, args: dict[str, Any], progress: Progress | None) -> Any:
    """Run a command on the server behind ``path``."""
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.post(f"http://ostor-admin/v1/{command}", json=args) as response:
            async for raw in _lines(response.content):
                line = json.loads(raw)
                if "progress" in line:
                    if progress is not None:
                        progress(line["progress"]["done"], line["progress"]["total"])
                elif "error" in line:
                    raise rebuild_error(line["error"])
                elif "result" in line:
                    return line["result"]
    raise AdminUnavailable("the server closed the admin connection without an answer")


async def call_local(data_dir: Path, command: str, args: dict[str, Any], progress: Progress | None) -> Any:
    """Run a command with the volume opened in this process (no server is running)."""
    from ostor.engine.engine import Engine

    if volume_id(data_dir) is None:
        raise AdminUnavailable(f"{data_dir} holds no ostor volume (no {VOLUME_FILE}); "
                               "start `ostor server` once or pass --data")
    try:
        engine = await Engine.open(Path(data_dir), start_workers=False, create=False)
    except OstorError as exc:
        raise AdminUnavailable(f"cannot open {data_dir}: {exc} (is a server running without "
                               f"its admin socket?)") from exc
    try:
        users = await UserStore.open(engine, Path(data_dir))
        service = AdminService(engine, users, Statistics(users.bucket), live=False)
        return await service.call(command, args, progress)
    finally:
        await engine.close()


async def call(data_dir: Path, command: str, args: dict[str, Any], progress: Progress | None = None) -> Any:
    """Run ``command``: through the running server when one listens, else on the data directory."""
    path = Path(data_dir) / SOCKET_NAME
    if server_is_listening(path):
        return await call_socket(path, command, args, progress)
    return await call_local(data_dir, command, args, progress)


__all__ = ["AdminError", "AdminUnavailable", "S3Error", "call", "volume_id"]


#: Exit codes of the admin tools: refused, bad arguments, store unreachable (0 is done).
EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


def fail(tool: str, command: str, message: str, code: int) -> NoReturn:
    """Print ``<tool> <command>: <message>`` on stderr and exit with ``code``."""
    click.echo(f"{tool} {command}: {message}", err=True)
    sys.exit(code)


def run_command(tool: str, command: str, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run an admin call to completion; refusals become a readable message and an exit code."""
    try:
        return asyncio.run(coro)
    except InvalidAdminArgument as exc:
        fail(tool, command, str(exc), EXIT_USAGE)
    except AdminError as exc:
        fail(tool, command, str(exc), EXIT_REFUSED)
    except S3Error as exc:
        fail(tool, command, f"{exc.code}: {exc.message}", EXIT_REFUSED)
    except AdminUnavailable as exc:
        fail(tool, command, str(exc), EXIT_UNAVAILABLE)
    except OSError as exc:
        fail(tool, command, f"cannot reach the store: {exc}", EXIT_UNAVAILABLE)


def data_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--data DIR`` (env OSTOR_DATA)."""
    @click.option("--data", "data_dir", envvar="OSTOR_DATA", default="./data", show_default=True,
                  type=click.Path(file_okay=False, path_type=Path), help="Data directory (env OSTOR_DATA).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)
    return wrapper
