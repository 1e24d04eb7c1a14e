"""The admin service behind ``ostor-s3-admin``, and its local socket (DATA_DIR/admin.sock).

:class:`AdminService` runs the seed's user, key and bucket commands on an
engine and a user store, returning JSON-friendly dicts. The running server
serves it on a Unix socket (mode 0600; whoever can open it is the
administrator, as the seed says the tool does no authentication). The
protocol is HTTP: ``POST /v1/<command>`` with a JSON object of arguments; the
answer is line-delimited JSON: zero or more ``{"progress": {...}}`` lines, then
one ``{"result": ...}`` or ``{"error": {"type": ..., "message": ...}}``.
When no server runs, the tool builds the same service on the data directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ostor.admin.instances import GuestCommands  # guest API: instance-* and image-* commands
from ostor.common.errors import AdminError, InvalidAdminArgument, OstorError, S3Error
from ostor.common.unixsocket import bind_unix, inode_of, remove_if_ours, served_elsewhere
from ostor.gateway.stats import Statistics
from ostor.gateway.users import SERVICE_BUCKET, User, UserStore

log = logging.getLogger(__name__)

SOCKET_NAME = "admin.sock"
Progress = Callable[[int, int | None], None]


def _user_doc(user: User, with_secrets: bool = True) -> dict[str, Any]:
    return {"id": user.user_id, "email": user.email, "name": user.name, "admin": user.admin,
            "disabled": user.disabled,
            "keys": [{"id": k, "secret": s if with_secrets else None} for k, s in user.keys.items()]}


class AdminService(GuestCommands):
    """The admin commands over one engine, user store and statistics."""

    def __init__(self, engine: Any, users: UserStore, stats: Statistics | None, *, live: bool) -> None:
        self.engine = engine
        self.users = users
        self.stats = stats
        #: True inside the running server (its statistics are live in memory).
        self.live = live

    async def call(self, command: str, args: dict[str, Any], progress: Progress | None = None) -> Any:
        """Run one command by name; AdminError / S3Error for refusals."""
        method = getattr(self, "cmd_" + command.replace("-", "_"), None)
        if method is None:
            raise InvalidAdminArgument(f"unknown admin command {command!r}")
        if command == "delete-bucket":
            return await method(progress=progress or (lambda done, total: None), **args)
        return await method(**args)

    def _user(self, user_id: str | None = None, email: str | None = None) -> User:
        return self.users.find(user_id, email)

    # -- users and keys ----------------------------------------------------------------------

    async def cmd_create_user(self, email: str) -> dict[str, Any]:
        """Create a user with one key pair."""
        user, _, _ = await self.users.create_user(email)
        return _user_doc(user)

    async def cmd_query_users(self) -> list[dict[str, Any]]:
        """Every user with its keys."""
        return [_user_doc(u) for u in self.users.sorted_users()]

    async def cmd_query_user_info(self, user_id: str | None = None, email: str | None = None) -> dict[str, Any]:
        """One user with its keys."""
        return _user_doc(self._user(user_id, email))

    async def cmd_disable_user(self, user_id: str | None = None, email: str | None = None) -> dict[str, Any]:
        """Refuse the user's requests from now on."""
        user = self._user(user_id, email)
        await self.users.set_disabled(user, True)
        return _user_doc(user, False)

    async def cmd_enable_user(self, user_id: str | None = None, email: str | None = None) -> dict[str, Any]:
        """Accept the user's requests again."""
        user = self._user(user_id, email)
        await self.users.set_disabled(user, False)
        return _user_doc(user, False)

    async def cmd_delete_user(self, user_id: str | None = None, email: str | None = None) -> dict[str, Any]:
        """Delete a user who owns no bucket."""
        user = self._user(user_id, email)
        owned = [b.name for b in await self.engine.list_buckets(user.user_id)]
        await self.users.delete_user(user, owned)
        return {"id": user.user_id, "email": user.email}

    async def cmd_gen_access_key(self, user_id: str | None = None, email: str | None = None) -> dict[str, Any]:
        """A new key pair (at most two active)."""
        user = self._user(user_id, email)
        key, secret = await self.users.gen_access_key(user)
        return {"id": user.user_id, "key": key, "secret": secret}

    async def cmd_revoke_access_key(self, key: str, user_id: str | None = None,
                                    email: str | None = None) -> dict[str, Any]:
        """Remove a key pair."""
        user = self._user(user_id, email)
        await self.users.revoke_access_key(user, key)
        return {"id": user.user_id, "key": key}

    # -- buckets -----------------------------------------------------------------------------

    async def _bucket_doc(self, record: Any) -> dict[str, Any]:
        usage = await self.engine.bucket_usage(record.name)
        versioning = getattr(record.versioning, "value", record.versioning)
        return {"name": record.name, "owner": record.owner, "created_ns": record.created_ns,
                "versioning": versioning, "size": usage.bytes + usage.upload_bytes,
                "objects": usage.objects, "acl": _acl_lines(record)}

    async def cmd_list_all_buckets(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Every user bucket (of ``owner``), with owner, creation date, versioning, total size."""
        records = [b for b in await self.engine.list_buckets(owner) if b.name != SERVICE_BUCKET]
        return list(await asyncio.gather(*(self._bucket_doc(b) for b in records)))

    async def cmd_query_bucket_info(self, bucket: str) -> dict[str, Any]:
        """One bucket's metadata and ACL."""
        return await self._bucket_doc(await self.engine.get_bucket(bucket))

    def _refuse_service_bucket(self, bucket: str) -> None:
        if bucket == SERVICE_BUCKET:
            raise InvalidAdminArgument(f"{SERVICE_BUCKET} is the service bucket; it cannot be changed")

    async def cmd_change_bucket_owner(self, bucket: str, user_id: str) -> dict[str, Any]:
        """Hand a bucket to another (existing) user."""
        self._refuse_service_bucket(bucket)
        user = self._user(user_id, None)
        await self.engine.get_bucket(bucket)
        await self.engine.update_bucket(bucket, owner=user.user_id)
        return {"bucket": bucket, "owner": user.user_id}

    async def cmd_delete_bucket(self, bucket: str, progress: Progress) -> dict[str, Any]:
        """Remove a bucket with every object, version, delete marker and unfinished upload."""
        self._refuse_service_bucket(bucket)
        await self.engine.get_bucket(bucket)
        total = (await self.engine.bucket_usage(bucket)).objects
        removed = 0
        progress(0, total)
        # engine.purge_bucket in per-NS batches, so that the tool can show progress.
        for ns in self.engine.services.name_servers.values():
            while batch := await ns.purge_bucket(bucket, 500):
                removed += batch
                progress(removed, max(total, removed))
        await self.engine.purge_bucket(bucket)  # anything added meanwhile
        await self.engine.delete_bucket(bucket)
        progress(max(total, removed), max(total, removed))
        return {"bucket": bucket, "removed": removed}

    # -- statistics --------------------------------------------------------------------------

    async def cmd_usage(self, user_id: str | None = None, bucket: str | None = None) -> list[list[Any]]:
        """Requests and bytes per user, bucket and operation, over every gateway."""
        if self.stats is None:
            return []
        if self.live:
            await self.stats.flush()
        rows = await self.stats.collect(user_id, bucket, include_own=self.live)
        return [r.as_list() for r in rows]


def _acl_lines(record: Any) -> list[str]:
    """``grantee: PERMISSION`` lines; a bucket without an ACL document grants its owner FULL_CONTROL."""
    acl = record.acl
    grants = None
    if isinstance(acl, dict):
        grants = acl.get("grants")
    elif acl is not None:
        grants = getattr(acl, "grants", None)
    if not grants:
        return [f"{record.owner}: FULL_CONTROL"]
    lines = []
    for grant in grants:
        if isinstance(grant, dict):
            who = grant.get("id") or grant.get("uri") or grant.get("email") or grant.get("grantee")
            lines.append(f"{who}: {grant.get('permission')}")
        else:
            grantee = getattr(grant, "grantee", grant)
            who = getattr(grantee, "id", None) or getattr(grantee, "uri", None) or str(grantee)
            lines.append(f"{who}: {getattr(grant, 'permission', '?')}")
    return lines


def error_doc(exc: BaseException) -> dict[str, Any]:
    """How an error travels over the socket: its class name, S3 code if any, and message."""
    if isinstance(exc, S3Error):
        return {"type": "S3Error", "code": exc.code, "message": exc.message}
    return {"type": type(exc).__name__, "message": str(exc)}


class AdminSocket:
    """Serves an AdminService on DATA_DIR/admin.sock (mode 0600) inside the server process."""

    def __init__(self, service: AdminService, path: Path) -> None:
        self.service = service
        self.path = Path(path)
        self._runner: web.AppRunner | None = None
        self._inode: int | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        command = request.match_info["command"]
        try:
            args = await request.json() if request.can_read_body else {}
            if not isinstance(args, dict):
                raise InvalidAdminArgument("arguments must be a JSON object")
        except ValueError:
            return web.json_response({"error": {"type": "InvalidAdminArgument", "message": "bad JSON"}})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        pending: list[bytes] = []

        def progress(done: int, total: int | None) -> None:
            pending.append(json.dumps({"progress": {"done": done, "total": total}}).encode() + b"\n")

        task = asyncio.ensure_future(self.service.call(command, args, progress))
        while not task.done():
            await asyncio.wait([task], timeout=0.2)
            while pending:
                await response.write(pending.pop(0))
        for line in pending:
            await response.write(line)
        try:
            line = {"result": task.result()}
        except (AdminError, S3Error) as exc:
            line = {"error": error_doc(exc)}
        except OstorError as exc:
            log.warning("admin command %s failed: %s", command, type(exc).__name__)
            line = {"error": error_doc(exc)}
        except Exception as exc:
            log.exception("admin command %s failed", command)
            line = {"error": {"type": "InternalError", "message": f"{type(exc).__name__}: {exc}"}}
        await response.write(json.dumps(line).encode() + b"\n")
        await response.write_eof()
        return response

    async def start(self) -> bool:
        """Bind the socket (mode 0600); False when another live server already answers on it."""
        if self.path.exists() and served_elsewhere(self.path):
            log.warning("admin socket %s is served by another process; not starting one", self.path)
            return False
        sock = bind_unix(self.path, 0o600)  # a stale file left by a dead server is replaced
        self._inode = inode_of(self.path)
        app = web.Application()
        app.router.add_post("/v1/{command}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, shutdown_timeout=5).start()
        return True

    async def stop(self) -> None:
        """Stop serving and remove the socket if it is still ours."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        remove_if_ours(self.path, self._inode)


class AdminRuntime:
    """What the server runs for administration: statistics (persisted) and the admin socket."""

    def __init__(self, stats: Statistics, socket_: AdminSocket) -> None:
        self.stats = stats
        self.socket = socket_

    def access_log_options(self) -> dict[str, Any]:
        """AppRunner keyword arguments that route every finished request into the statistics."""
        return {"access_log_class": self.stats.access_logger_class(),
                "access_log": logging.getLogger("ostor.gateway.requests")}

    async def stop(self) -> None:
        """Close the socket, then persist the statistics one last time."""
        try:
            await self.socket.stop()
        finally:
            await self.stats.stop()


async def start_admin(engine: Any, users: UserStore, data_dir: Path, gateway_name: str = "gateway-0",
                      flush_interval: float = 10.0, guest_api: Any = None) -> AdminRuntime:
    """Load and start the statistics, and serve the admin socket in ``data_dir``.

    ``guest_api``: the live GuestApi the guest socket serves (instance-* / image-* commands act on it).
    """
    stats = Statistics(users.bucket, gateway_name)
    await stats.load()
    stats.start(flush_interval)
    service = AdminService(engine, users, stats, live=True)
    service.guest_api = guest_api
    admin_socket = AdminSocket(service, Path(data_dir) / SOCKET_NAME)
    await admin_socket.start()
    return AdminRuntime(stats, admin_socket)
