"""ostor-s3-admin: manage S3 users, access keys and buckets (seed, "Managing S3 Users").

Every command takes ``-V <volume id>`` as in the seed (checked against the
volume in the data directory) and ``--data DIR`` / ``OSTOR_DATA``. The tool
talks to the running server through DATA_DIR/admin.sock, or opens the data
directory itself when no server runs. As the seed says, it does no
authentication of its own: access to the socket and the directory is the check.

Exit codes: 0 done, 1 refused (unknown user, key limit, bucket owned, ...),
2 bad arguments or wrong volume, 3 the store cannot be reached.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ostor.admin import render
from ostor.admin.client import EXIT_UNAVAILABLE, EXIT_USAGE, call, data_option, fail, run_command, volume_id
from ostor.common.errors import CorruptStoreError, VolumeMismatch

TOOL = "ostor-s3-admin"


def _fail(command: str, message: str, code: int) -> None:
    fail(TOOL, command, message, code)


def _check_volume(command: str, data_dir: Path, volume: str | None) -> None:
    if volume is None:
        return
    try:
        found = volume_id(data_dir)
    except CorruptStoreError as exc:
        _fail(command, str(exc), EXIT_UNAVAILABLE)
        return
    if found is None:
        click.echo(f"ostor-s3-admin {command}: warning: {data_dir} has no volume.json; "
                   f"-V {volume} not checked", err=True)
    elif found != volume.lower():
        error = VolumeMismatch(f"no volume {volume} here: {data_dir} holds volume {found}")
        _fail(command, str(error), EXIT_USAGE)


def run(command: str, data_dir: Path, volume: str | None, args: dict[str, Any],
        progress: Callable[[int, int | None], None] | None = None) -> Any:
    """Check -V, run the command (socket or local), turn refusals into messages and exit codes."""
    _check_volume(command, data_dir, volume)
    args = {k: v for k, v in args.items() if v is not None}
    return run_command(TOOL, command, call(data_dir, command, args, progress))


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add -V and --data to a command."""
    return click.option("-V", "--volume", "volume", metavar="VOLUME_ID", default=None,
                        help="Volume ID (16 hex digits, see `ostor-ctl get-config`).")(data_option(func))


def who(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add -e EMAIL / -i USER_ID (one is needed)."""
    @click.option("-e", "--email", default=None, help="User e-mail.")
    @click.option("-i", "--id", "user_id", default=None, help="S3 user ID (16 hex digits).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("email") and not kwargs.get("user_id"):
            raise click.UsageError("give the user's e-mail (-e) or S3 ID (-i)")
        return func(*args, **kwargs)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Manage S3 users, access keys and buckets of an ostor volume."""


@main.command("create-user")
@click.option("-e", "--email", required=True, help="E-mail of the new user.")
@common
def create_user(email: str, volume: str | None, data_dir: Path) -> None:
    """Create a user with a random S3 ID and one access key pair."""
    click.echo(render.created_user(run("create-user", data_dir, volume, {"email": email})))


@main.command("query-users")
@click.option("-a", "--show-secrets", is_flag=True, help="Show secret access keys.")
@click.option("-X", "--xml", "as_xml", is_flag=True, help="Print XML.")
@common
def query_users(show_secrets: bool, as_xml: bool, volume: str | None, data_dir: Path) -> None:
    """List every user and its access key pairs."""
    users = run("query-users", data_dir, volume, {})
    click.echo(render.users_xml(users, show_secrets) if as_xml else render.users_table(users, show_secrets))


@main.command("query-user-info")
@who
@common
def query_user_info(email: str | None, user_id: str | None, volume: str | None, data_dir: Path) -> None:
    """Show one user with its access key pairs."""
    user = run("query-user-info", data_dir, volume, {"email": email, "user_id": user_id})
    click.echo(render.user_info(user))


def _user_command(name: str, verb: str) -> None:
    @main.command(name, help=f"{verb.capitalize()} a user (its requests are {'refused' if verb == 'disable' else 'accepted'} at once).")
    @who
    @common
    def command(email: str | None, user_id: str | None, volume: str | None, data_dir: Path) -> None:
        user = run(name, data_dir, volume, {"email": email, "user_id": user_id})
        click.echo(f"{verb.capitalize()}d user: user id={user['id']}")


_user_command("disable-user", "disable")
_user_command("enable-user", "enable")


@main.command("delete-user")
@who
@common
def delete_user(email: str | None, user_id: str | None, volume: str | None, data_dir: Path) -> None:
    """Delete a user and its keys (refused while the user owns buckets)."""
    user = run("delete-user", data_dir, volume, {"email": email, "user_id": user_id})
    click.echo(f"Deleted user: user id={user['id']}")


@main.command("gen-access-key")
@who
@common
def gen_access_key(email: str | None, user_id: str | None, volume: str | None, data_dir: Path) -> None:
    """Generate a new access key pair (at most 2 active pairs per user)."""
    click.echo(render.generated_key(run("gen-access-key", data_dir, volume, {"email": email, "user_id": user_id})))


@main.command("revoke-access-key")
@who
@click.option("-k", "--key", required=True, help="Access key ID to revoke.")
@common
def revoke_access_key(email: str | None, user_id: str | None, key: str, volume: str | None,
                      data_dir: Path) -> None:
    """Revoke one access key pair of a user (refused at once)."""
    doc = run("revoke-access-key", data_dir, volume, {"email": email, "user_id": user_id, "key": key})
    click.echo(render.revoked_key(doc))


@main.command("list-all-buckets")
@click.option("-i", "--id", "user_id", default=None, help="Only buckets owned by this user ID.")
@click.option("-X", "--xml", "as_xml", is_flag=True, help="Print XML.")
@common
def list_all_buckets(user_id: str | None, as_xml: bool, volume: str | None, data_dir: Path) -> None:
    """List every bucket: owner, creation date, versioning, total size (objects + unfinished uploads)."""
    buckets = run("list-all-buckets", data_dir, volume, {"owner": user_id})
    click.echo(render.buckets_xml(buckets) if as_xml else render.buckets_table(buckets))


@main.command("query-bucket-info")
@click.option("-b", "--bucket", required=True, help="Bucket name.")
@common
def query_bucket_info(bucket: str, volume: str | None, data_dir: Path) -> None:
    """Show a bucket's metadata and ACL."""
    click.echo(render.bucket_info(run("query-bucket-info", data_dir, volume, {"bucket": bucket})))


@main.command("change-bucket-owner")
@click.option("-b", "--bucket", required=True, help="Bucket name.")
@click.option("-i", "--id", "user_id", required=True, help="S3 ID of the new owner.")
@common
def change_bucket_owner(bucket: str, user_id: str, volume: str | None, data_dir: Path) -> None:
    """Pass ownership of a bucket to another user."""
    doc = run("change-bucket-owner", data_dir, volume, {"bucket": bucket, "user_id": user_id})
    click.echo(render.changed_owner(doc))


@main.command("delete-bucket")
@click.option("-b", "--bucket", required=True, help="Bucket name.")
@common
def delete_bucket(bucket: str, volume: str | None, data_dir: Path) -> None:
    """Delete a bucket with all its objects, old versions and unfinished multipart uploads."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("deleting {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(bucket, total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        doc = run("delete-bucket", data_dir, volume, {"bucket": bucket}, progress)
    click.echo(f"Deleted bucket {doc['bucket']}: {doc['removed']} entries removed")


@main.command("usage")
@click.option("-i", "--id", "user_id", default=None, help="Only this user's requests.")
@click.option("-b", "--bucket", default=None, help="Only requests on this bucket.")
@click.option("-X", "--xml", "as_xml", is_flag=True, help="Print XML.")
@common
def usage(user_id: str | None, bucket: str | None, as_xml: bool, volume: str | None, data_dir: Path) -> None:
    """Requests by S3 operation and bytes in/out, per user and bucket, over every gateway."""
    rows = run("usage", data_dir, volume, {"user_id": user_id, "bucket": bucket})
    if as_xml:
        click.echo(render.usage_xml(rows))
        return
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    console.print(render.usage_table(rows))


if __name__ == "__main__":
    main()
