"""The ``ostor`` command: run the embedded S3 server."""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ostor: an S3-compatible object store."""


@main.command()
@click.argument("data_dir", required=False, default="./data",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--address", default="127.0.0.1:9000", show_default=True,
              help="HOST:PORT to listen on (port 0 picks a free one).")
@click.option("--domain", default=None,
              help="Base domain for virtual-host-style requests (BUCKET.DOMAIN).")
@click.option("--region", default="us-east-1", show_default=True, help="Region the server reports.")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--guestapi-socket", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Guest API Unix socket (mode 0666)  [default: DATA_DIR/guestapi.sock]")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Gateway processes sharing the port (SO_REUSEPORT); above 1 a storage process "
                   "serves the name and object servers to them over Unix sockets.")
def server(data_dir: Path, address: str, domain: str | None, region: str, log_level: str,
           guestapi_socket: Path | None, workers: int) -> None:
    """Serve S3 from DATA_DIR (created on first use; the admin keys are printed)."""
    from ostor.server import ServerOptions, parse_address, run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host, port = parse_address(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--address") from None
    say = functools.partial(click.echo, err=False)
    options = ServerOptions(data_dir, host, port, domain, region, guestapi_socket=guestapi_socket)
    options = dataclasses.replace(options, workers=workers)
    run(options, lambda text: (say(text), sys.stdout.flush()))


if __name__ == "__main__":
    main()
