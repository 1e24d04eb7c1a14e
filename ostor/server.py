"""Running the embedded server: engine in-process, S3 over aiohttp, admin socket, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ostor.common.gctune import tune_for_serving
from ostor.gateway.app import Gateway
from ostor.admin.service import start_admin
from ostor.gateway.context import GatewayConfig
from ostor.gateway.users import UserStore
from ostor.guestapi.service import SOCKET_NAME as GUEST_SOCKET, start_guestapi

ENV_ACCESS_KEY = "OSTOR_ROOT_ACCESS_KEY"
ENV_SECRET_KEY = "OSTOR_ROOT_SECRET_KEY"


@dataclass(frozen=True)
class ServerOptions:
    """What ``ostor server`` was asked to do."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9000
    domain: str | None = None
    region: str = "us-east-1"
    #: Guest API socket (None: DATA_DIR/guestapi.sock).
    guestapi_socket: Path | None = None
    #: Gateway processes; above 1 a storage process serves the services to them (ostor.supervisor).
    workers: int = 1


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too, ``:PORT`` means all interfaces) into host and port."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def banner(endpoint: str, access_key: str, secret: str) -> str:
    """The start-up message with ready-to-paste environment lines."""
    return "\n".join([
        f"ostor S3 endpoint: {endpoint}",
        f"  access key: {access_key}",
        f"  secret key: {secret}",
        "",
        "Use it with any AWS SDK or CLI:",
        f"  export AWS_ENDPOINT_URL={endpoint}",
        f"  export AWS_ACCESS_KEY_ID={access_key}",
        f"  export AWS_SECRET_ACCESS_KEY={secret}",
        "",
    ])


async def serve(options: ServerOptions, say: Callable[[str], None] = print) -> None:
    """Open the engine, serve S3 until SIGTERM/SIGINT, then stop accepting and close the engine."""
    from ostor.engine.engine import Engine  # imported here so `ostor --help` stays fast

    data_dir = Path(options.data_dir)
    engine = await Engine.open(data_dir)
    runner = None
    users = admin = guest = None
    try:
        users = await UserStore.open(engine, data_dir)
        _, access_key, secret = await users.ensure_admin(os.environ.get(ENV_ACCESS_KEY),
                                                         os.environ.get(ENV_SECRET_KEY))
        users.start_refresh()
        guest = await start_guestapi(engine, users.bucket, options.guestapi_socket or data_dir / GUEST_SOCKET)
        admin = await start_admin(engine, users, data_dir, guest_api=guest.api)  # statistics + admin.sock
        gateway = Gateway(engine, users, GatewayConfig(region=options.region, domain=options.domain))
        runner = gateway.runner(**admin.access_log_options())
        await runner.setup()
        site = web.TCPSite(runner, options.host, options.port, reuse_address=True, shutdown_timeout=10)
        await site.start()
        host, port = runner.addresses[0][:2]
        tune_for_serving()
        shown = f"[{host}]" if ":" in host else host
        say(banner(f"http://{shown}:{port}", access_key, secret))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        say("ostor: shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()
        if admin is not None:
            await admin.stop()
        if guest is not None:
            await guest.stop()
        if users is not None:
            await users.stop_refresh()
        await engine.close()


def run(options: ServerOptions, say: Callable[[str], None] = print) -> None:
    """Run :func:`serve` on uvloop when it is installed (``workers > 1``: ostor.supervisor)."""
    if options.workers > 1:
        from ostor.supervisor import run_workers

        run_workers(options, say)
        return
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(options, say))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(options, say))
