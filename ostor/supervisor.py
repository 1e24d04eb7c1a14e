"""``ostor server --workers N``: one storage process and N gateway processes on one port.

The process ``ostor server`` starts is the *storage process*: it owns every
name and object server of the volume (and their GC, defragmentation and guard
workers) and serves them on Unix sockets in ``DATA_DIR/run`` (see
:mod:`ostor.engine.remote`), so no two processes ever allocate in one pool file
or write one database. It also supervises N *gateway processes*, each an
aiohttp gateway with an engine over those sockets, all listening on the same
port with SO_REUSEPORT (the kernel spreads connections over them).

- The storage process creates the admin user before the gateways start, and
  reserves the port with a bound, never-listening SO_REUSEPORT socket, so that
  ``--address :0`` resolves to one port and a restarted gateway can bind it again.
- Gateway 0 serves DATA_DIR/admin.sock (and the guest API); every gateway keeps
  its own statistics record (``gateway-<i>``) and refreshes users every second.
- SIGTERM/SIGINT to the storage process stops the gateways (SIGTERM, then
  SIGKILL after a grace period), then the services. A gateway that exits on
  its own is restarted; one that finds the storage process gone exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ostor.common.errors import ServiceUnavailableError
from ostor.common.gctune import tune_for_serving
from ostor.gateway.app import Gateway
from ostor.gateway.context import GatewayConfig
from ostor.gateway.users import UserStore
from ostor.server import ENV_ACCESS_KEY, ENV_SECRET_KEY, ServerOptions, banner

log = logging.getLogger(__name__)

READY = b"ready"
START_TIMEOUT = 60.0
STOP_GRACE = 20.0
#: A gateway that dies sooner than this after starting is restarted only after RESTART_DELAY.
FAST_FAILURE = 5.0
RESTART_DELAY = 1.0


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT: it fixes the port number
    and keeps it ours while gateways come and go; it never receives connections."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class GatewayPool:
    """N gateway processes: started, watched, restarted when they die, stopped on request."""

    def __init__(self, spec: dict[str, Any], count: int) -> None:
        self.spec = spec
        self.count = count
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._stopping = False
        self._watchers: list[asyncio.Task] = []

    async def start(self) -> None:
        """Start every gateway and wait until each listens (or failed: its keeper retries)."""
        loop = asyncio.get_running_loop()
        first = [loop.create_future() for _ in range(self.count)]
        self._watchers = [asyncio.ensure_future(self._keep(i, first[i])) for i in range(self.count)]
        if not any(await asyncio.gather(*first)):
            raise RuntimeError("no gateway process could start")

    async def _spawn(self, index: int) -> None:
        spec = dict(self.spec, index=index, parent=os.getpid())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ostor.supervisor", json.dumps(spec), stdout=asyncio.subprocess.PIPE)
        self.processes[index] = proc
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != READY:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise RuntimeError(f"gateway {index} did not start (exit status {proc.returncode})")

    async def _keep(self, index: int, first: asyncio.Future) -> None:
        """Run gateway ``index`` until the pool stops, starting a new one whenever it exits."""
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._spawn(index)
                ok = True
            except (RuntimeError, OSError):
                log.exception("gateway %d failed to start", index)
                ok = False
            if first.done():
                self.restarts += ok
            else:
                first.set_result(ok)
            if ok:
                proc = self.processes[index]
                status = await proc.wait()
                if self._stopping:
                    return
                log.warning("gateway %d (pid %d) exited with status %s; starting a new one",
                            index, proc.pid, status)
            if time.monotonic() - started < FAST_FAILURE:
                await asyncio.sleep(RESTART_DELAY)  # do not spin on a gateway that cannot run

    async def stop(self) -> None:
        """SIGTERM every gateway, SIGKILL those still running after the grace period."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        running = [p for p in self.processes.values() if p.returncode is None]
        for proc in running:
            _signal(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), STOP_GRACE)
        except asyncio.TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    _signal(proc.pid, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in running))


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


async def serve_workers(options: ServerOptions, say: Callable[[str], None] = print) -> None:
    """The storage process: services on sockets, the admin user, N gateways, until SIGTERM/SIGINT."""
    from ostor.engine.engine import Engine
    from ostor.engine.remote import ServiceHost
    from ostor.engine.services import LocalServices

    data_dir = Path(options.data_dir)
    services = await LocalServices.open(data_dir)
    engine = Engine(services)
    host = ServiceHost(services, data_dir)
    placeholder = pool = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await services.start()
        await host.start()
        users = await UserStore.open(engine, data_dir)
        _, access_key, secret = await users.ensure_admin(os.environ.get(ENV_ACCESS_KEY),
                                                         os.environ.get(ENV_SECRET_KEY))
        placeholder = reserve_port(options.host, options.port)
        port = placeholder.getsockname()[1]
        spec = {"data_dir": str(data_dir), "host": options.host, "port": port, "domain": options.domain,
                "region": options.region, "guestapi_socket": str(options.guestapi_socket or "") or None,
                "log_level": logging.getLogger().getEffectiveLevel()}
        pool = GatewayPool(spec, options.workers)
        await pool.start()
        tune_for_serving()
        shown = f"[{options.host}]" if ":" in options.host else options.host
        say(banner(f"http://{shown}:{port}", access_key, secret))
        await stop.wait()
        say("ostor: shutting down")
    finally:
        if pool is not None:
            await pool.stop()
        if placeholder is not None:
            placeholder.close()
        await host.stop()
        await engine.close()


async def serve_gateway(spec: dict[str, Any]) -> None:
    """One gateway process: an engine over the storage process's sockets, S3 on the shared port."""
    from ostor.engine.remote import open_remote_engine

    data_dir, index = Path(spec["data_dir"]), spec["index"]
    stop = asyncio.Event()
    # Ctrl-C reaches the whole process group; the storage process answers it by stopping us with
    # SIGTERM, and a gateway that quit on its own first would only be restarted meanwhile.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    engine = await open_remote_engine(data_dir)
    runner = users = extras = None
    try:
        users = await UserStore.open(engine)  # the storage process already migrated and made the admin
        users.start_refresh()
        extras, log_options = await _start_extras(engine, users, data_dir, spec)
        gateway = Gateway(engine, users, GatewayConfig(region=spec["region"], domain=spec["domain"]))
        runner = gateway.runner(**log_options)
        await runner.setup()
        await web.TCPSite(runner, spec["host"], spec["port"], reuse_address=True, reuse_port=True,
                          shutdown_timeout=10).start()
        tune_for_serving()
        os.write(1, READY + b"\n")
        os.dup2(2, 1)  # nobody reads our stdout any more: a full pipe must never block us
        while not stop.is_set():
            if os.getppid() != spec["parent"]:
                log.warning("gateway %d: the storage process is gone; exiting", index)
                break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
    finally:
        if runner is not None:
            await runner.cleanup()
        # Each step on its own: with the storage process gone, the last flushes fail.
        for extra in reversed(extras or []):
            await _quietly(extra.stop())
        if users is not None:
            await _quietly(users.stop_refresh())
        await _quietly(engine.close())


async def _quietly(step: Any) -> None:
    try:
        await step
    except ServiceUnavailableError:
        log.warning("gateway shutdown: the storage process is unavailable")


async def _start_extras(engine: Any, users: UserStore, data_dir: Path,
                        spec: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Statistics for every gateway; gateway 0 also serves admin.sock and the guest API."""
    from ostor.gateway.stats import Statistics

    name = f"gateway-{spec['index']}"
    if spec["index"] != 0:
        stats = Statistics(users.bucket, name)
        await stats.load()
        stats.start()
        return [stats], {"access_log_class": stats.access_logger_class(),
                         "access_log": logging.getLogger("ostor.gateway.requests")}
    from ostor.admin.service import start_admin
    from ostor.guestapi.service import SOCKET_NAME as GUEST_SOCKET, start_guestapi

    socket_path = Path(spec["guestapi_socket"]) if spec.get("guestapi_socket") else data_dir / GUEST_SOCKET
    guest = await start_guestapi(engine, users.bucket, socket_path)
    admin = await start_admin(engine, users, data_dir, gateway_name=name, guest_api=guest.api)
    return [guest, admin], admin.access_log_options()


def _run(main: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def run_workers(options: ServerOptions, say: Callable[[str], None] = print) -> None:
    """Run the storage process (and through it the gateways) on uvloop when installed."""
    _run(serve_workers(options, say))


if __name__ == "__main__":
    _spec = json.loads(sys.argv[1])
    logging.basicConfig(level=_spec.get("log_level", logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    _run(serve_gateway(_spec))
