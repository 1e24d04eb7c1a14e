"""ostor-ctl: configure and check storage components."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ostor.common.errors import CorruptStoreError, StorageError
from ostor.engine.check import check_volume
from ostor.engine.engine import Engine


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Configure and check ostor storage components."""


@main.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--gc/--no-gc", default=True, show_default=True,
              help="Expire guards and collect garbage before checking (safe: check holds every service's lock).")
def check(data_dir: Path, gc: bool) -> None:
    """Verify every name's link against live blocks and report leaked blocks.

    Exits 0 when the volume is clean, 1 when something is damaged or leaked,
    2 when the volume cannot be opened (the message names the file).
    """
    async def run() -> bool:
        engine = await Engine.open(data_dir, start_workers=False, create=False)
        try:
            if gc:
                # No server can be running (we hold every service lock), so no create is in flight.
                await engine.collect_garbage(expire_guards_at=float("inf"))
            report = await check_volume(engine.services)
        finally:
            await engine.close()
        for line in report.lines():
            click.echo(line)
        return report.clean

    try:
        clean = asyncio.run(run())
    except (CorruptStoreError, StorageError, FileNotFoundError) as exc:
        click.echo(f"ostor-ctl check: cannot open {data_dir}: {exc}", err=True)
        sys.exit(2)
    sys.exit(0 if clean else 1)


from ostor.admin.ctl_guest import image, instance  # noqa: E402  (guest API command groups)

main.add_command(instance)
main.add_command(image)


if __name__ == "__main__":
    main()
