"""``ostor-ctl instance …`` and ``ostor-ctl image …``: administer the guest API.

The commands act on the running server through DATA_DIR/admin.sock (a change
is visible on the guest socket at once), or on the data directory when no
server runs. ``--data DIR`` / ``OSTOR_DATA`` select it, as for ostor-s3-admin.

Exit codes: 0 done, 1 refused (unknown instance, device exists, ...), 2 bad
arguments, 3 the store cannot be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ostor.admin.client import call, data_option, run_command
from ostor.admin.render import iso_time

TOOL = "ostor-ctl"
FORMATS = click.Choice(["table", "json"])


def run(command: str, data_dir: Path, args: dict[str, Any]) -> Any:
    """Run an admin command (socket or local); refusals become messages and exit codes."""
    args = {k: v for k, v in args.items() if v is not None}
    return run_command(TOOL, command.replace("-", " "), call(data_dir, command, args))


def parse_pairs(pairs: tuple[str, ...], *, allow_key_value: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` arguments (split at the first '='); ``KEY VALUE`` too when allowed."""
    if allow_key_value and len(pairs) == 2 and "=" not in pairs[0]:
        return {pairs[0]: pairs[1]}
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"expected KEY=VALUE, got {pair!r}")
        values[key] = value
    return values


def _table(columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    # Not a terminal: wide enough that scripts get one line per row.
    Console(width=None if sys.stdout.isatty() else 400, highlight=False, markup=False).print(table)


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True))


# -- instances -----------------------------------------------------------------------------------

@click.group()
def instance() -> None:
    """Register instances and set what they read from the guest API socket."""


@instance.command("create")
@click.argument("name")
@click.option("--uid", type=int, default=None, help="Callers with this user ID.")
@click.option("--gid", type=int, default=None, help="Callers with this group ID.")
@click.option("--pid", type=int, default=None, help="The caller with this process ID.")
@click.option("--cgroup", default=None, help="Callers in this cgroup path (or below), from /proc/PID/cgroup.")
@click.option("--type", "type_", default="container", show_default=True,
              type=click.Choice(["container", "virtual-machine", "process"]))
@data_option
def instance_create(name: str, uid: int | None, gid: int | None, pid: int | None, cgroup: str | None,
                    type_: str, data_dir: Path) -> None:
    """Register instance NAME; a caller is NAME when all the given matchers hold."""
    doc = run("instance-create", data_dir, {"name": name, "type": type_, "uid": uid, "gid": gid,
                                            "pid": pid, "cgroup": cgroup})
    click.echo(f"Instance {doc['name']} created ({_matchers(doc)})")


def _matchers(doc: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in doc["matchers"].items())


@instance.command("list")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@data_option
def instance_list(fmt: str, data_dir: Path) -> None:
    """Every instance: name, type, matchers, state."""
    docs = run("instance-list", data_dir, {})
    if fmt == "json":
        _json(docs)
        return
    _table(["NAME", "TYPE", "MATCHERS", "STATE"],
           [[d["name"], d["type"], _matchers(d), d["state"]] for d in docs])


@instance.command("show")
@click.argument("name")
@data_option
def instance_show(name: str, data_dir: Path) -> None:
    """One instance with its matchers, configuration and devices (JSON)."""
    _json(run("instance-show", data_dir, {"name": name}))


@instance.command("delete")
@click.argument("name")
@data_option
def instance_delete(name: str, data_dir: Path) -> None:
    """Unregister NAME: its open connections are refused from their next request."""
    run("instance-delete", data_dir, {"name": name})
    click.echo(f"Instance {name} deleted")


@instance.command("set")
@click.argument("name")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@data_option
def instance_set(name: str, pairs: tuple[str, ...], data_dir: Path) -> None:
    """Set configuration keys (``KEY=VALUE``…, or one ``KEY VALUE``)."""
    run("instance-set", data_dir, {"name": name, "config": parse_pairs(pairs, allow_key_value=True)})


@instance.command("unset")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@data_option
def instance_unset(name: str, keys: tuple[str, ...], data_dir: Path) -> None:
    """Remove configuration keys."""
    run("instance-unset", data_dir, {"name": name, "keys": list(keys)})


@instance.command("get")
@click.argument("name")
@click.argument("key")
@data_option
def instance_get(name: str, key: str, data_dir: Path) -> None:
    """Print one key's value (an empty line when it is not set)."""
    value = run("instance-get", data_dir, {"name": name, "key": key})["value"]
    click.echo(value or "")


@instance.group("device")
def device() -> None:
    """Attach and detach devices (type=bucket bucket=NAME access=read-only|read-write, or any other)."""


@device.command("add")
@click.argument("name")
@click.argument("device_name", metavar="DEVICE")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@data_option
def device_add(name: str, device_name: str, pairs: tuple[str, ...], data_dir: Path) -> None:
    """Attach DEVICE to instance NAME."""
    run("instance-device-add", data_dir, {"name": name, "device": device_name, "config": parse_pairs(pairs)})
    click.echo(f"Device {device_name} added to {name}")


@device.command("set")
@click.argument("name")
@click.argument("device_name", metavar="DEVICE")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@data_option
def device_set(name: str, device_name: str, pairs: tuple[str, ...], data_dir: Path) -> None:
    """Change keys of an attached device."""
    run("instance-device-set", data_dir, {"name": name, "device": device_name, "config": parse_pairs(pairs)})


@device.command("remove")
@click.argument("name")
@click.argument("device_name", metavar="DEVICE")
@data_option
def device_remove(name: str, device_name: str, data_dir: Path) -> None:
    """Detach DEVICE from instance NAME."""
    run("instance-device-remove", data_dir, {"name": name, "device": device_name})
    click.echo(f"Device {device_name} removed from {name}")


# -- images --------------------------------------------------------------------------------------

@click.group()
def image() -> None:
    """Public images that instances with security.guestapi.images=true can export."""


@image.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--alias", default=None, help="A name for the image.")
@data_option
def image_import(file: Path, alias: str | None, data_dir: Path) -> None:
    """Store FILE as an image; prints its fingerprint (SHA-256 of the content)."""
    doc = run("image-import", data_dir, {"path": str(file.resolve()), "alias": alias})
    click.echo(doc["fingerprint"])


@image.command("list")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@data_option
def image_list(fmt: str, data_dir: Path) -> None:
    """Every image: fingerprint, alias, size, date."""
    docs = run("image-list", data_dir, {})
    if fmt == "json":
        _json(docs)
        return
    _table(["FINGERPRINT", "ALIAS", "SIZE", "CREATED"],
           [[d["fingerprint"], d["alias"] or "", str(d["size"]), iso_time(d["created_ns"])] for d in docs])


@image.command("delete")
@click.argument("ref", metavar="FP")
@data_option
def image_delete(ref: str, data_dir: Path) -> None:
    """Remove an image (fingerprint, alias or unique fingerprint prefix)."""
    doc = run("image-delete", data_dir, {"image": ref})
    click.echo(f"Image {doc['fingerprint']} deleted")
