"""Users and access keys, stored in the service bucket and cached in memory (seed, "Service Bucket").

Every user is one small JSON object ``users/<user id>`` and every access key one
object ``keys/<access key id>`` in the bucket ``ostor-service``, which belongs to
no S3 user (owner ``0000000000000000``), so only the admin reaches it over S3.
The gateway answers key lookups from memory (seed, "Data Caching"); changes
made through this store update the cache at once and bump ``meta/users-epoch``
so that other processes over the same volume reload within a second.

Secrets are never logged: ``User`` and ``KeyPair`` hide them from ``repr``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostor.common.errors import (
    AccessDenied, AccessKeyLimitExceeded, BucketAlreadyExists, BucketAlreadyOwnedByYou,
    InvalidAdminArgument, NoSuchAccessKey, NoSuchKey, NoSuchUser, UserAlreadyExists, UserOwnsBuckets,
)
from ostor.common.worker import Worker

log = logging.getLogger(__name__)

SERVICE_BUCKET = "ostor-service"
#: Owner of the service bucket: no user has this ID (the seed's XML shows it as OwnerId).
SERVICE_OWNER = "0000000000000000"
RECORD_VERSION = 1
MAX_ACTIVE_KEYS = 2
EPOCH_KEY = "meta/users-epoch"
_KEY_SUFFIX = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_USER_ID = re.compile(r"^[0-9a-f]{16}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass
class User:
    """A user: 16-hex ID, display name, e-mail, its access keys (ID -> secret), flags."""

    user_id: str
    name: str
    keys: dict[str, str] = field(default_factory=dict, repr=False)
    admin: bool = False
    email: str = ""
    disabled: bool = False
    created_ns: int = 0


def new_user_id() -> str:
    """A fresh 16-hex-digit (lower-case) user ID."""
    return secrets.token_hex(8)


def new_access_key(user_id: str) -> str:
    """An access key ID: the user ID plus 4 upper-case alphanumerics (20 characters)."""
    return user_id + "".join(secrets.choice(_KEY_SUFFIX) for _ in range(4))


def new_secret() -> str:
    """A 40-character secret key."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


class ServiceBucket:
    """JSON records in the service bucket, through the engine's object API."""

    def __init__(self, engine: Any, name: str = SERVICE_BUCKET) -> None:
        self.engine = engine
        self.name = name

    async def ensure(self) -> None:
        """Create the bucket on first start."""
        try:
            await self.engine.create_bucket(self.name, SERVICE_OWNER)
        except (BucketAlreadyOwnedByYou, BucketAlreadyExists):
            pass

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record at ``key``, or None."""
        try:
            reader = await self.engine.get_object(self.name, key)
        except NoSuchKey:
            return None
        return json.loads(await reader.read())

    async def put(self, key: str, doc: dict[str, Any]) -> str:
        """Write a record (durable when this returns); returns its ETag."""
        record = await self.engine.put_object(self.name, key, json.dumps(doc, sort_keys=True).encode(),
                                              owner=SERVICE_OWNER, content_type="application/json")
        return record.etag

    async def delete(self, key: str) -> None:
        """Remove a record (absent is fine)."""
        await self.engine.delete_object(self.name, key)

    async def etag(self, key: str) -> str | None:
        """The ETag of a record, or None: a cheap change stamp."""
        try:
            return (await self.engine.head_object(self.name, key)).etag
        except NoSuchKey:
            return None

    async def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, page by page."""
        found: list[str] = []
        after = ""
        while True:
            page = await self.engine.list_objects(self.name, prefix=prefix, start_after=after, max_keys=1000)
            found.extend(record.key for record in page.objects)
            if not page.truncated or page.next_marker is None:
                return found
            after = page.next_marker

    async def load_all(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every record under ``prefix`` by key (records deleted meanwhile are skipped)."""
        keys = await self.keys(prefix)
        docs = await asyncio.gather(*(self.get(k) for k in keys))
        return {k: d for k, d in zip(keys, docs) if d is not None}


class UserStore:
    """Users and keys from the service bucket, with an in-memory index by access key ID."""

    def __init__(self, bucket: ServiceBucket) -> None:
        self.bucket = bucket
        self.users: dict[str, User] = {}
        self._by_key: dict[str, tuple[User, str]] = {}
        self._epoch: str | None = None
        self._lock = asyncio.Lock()
        self._refresher: Worker | None = None

    @classmethod
    async def open(cls, engine: Any, data_dir: Path | None = None) -> "UserStore":
        """Create the service bucket if needed, migrate DATA_DIR/gateway/users.json, load everything."""
        store = cls(ServiceBucket(engine))
        await store.bucket.ensure()
        await store.reload()
        if data_dir is not None:
            await store._migrate(Path(data_dir) / "gateway" / "users.json")
        return store

    # -- cache -------------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read every user and key record (another process changed them)."""
        epoch = await self.bucket.etag(EPOCH_KEY)
        user_docs = await self.bucket.load_all("users/")
        key_docs = await self.bucket.load_all("keys/")
        users = {}
        for doc in user_docs.values():
            users[doc["id"]] = User(doc["id"], doc.get("name") or doc.get("email", ""), {},
                                    bool(doc.get("admin")), doc.get("email", ""),
                                    bool(doc.get("disabled")), int(doc.get("created_ns", 0)))
        for doc in sorted(key_docs.values(), key=lambda d: (d.get("created_ns", 0), d["id"])):
            owner = users.get(doc["user"])
            if owner is not None:  # a key whose user was deleted half-way is ignored
                owner.keys[doc["id"]] = doc["secret"]
        self._install(users)
        self._epoch = epoch

    def _install(self, users: dict[str, User]) -> None:
        self.users = users
        self._by_key = {key: (user, secret) for user in users.values() for key, secret in user.keys.items()}

    def start_refresh(self, interval: float = 1.0) -> None:
        """Poll the change stamp so that changes made by other processes are seen within ``interval``."""
        async def step() -> bool:
            if await self.bucket.etag(EPOCH_KEY) != self._epoch:
                async with self._lock:
                    await self.reload()
            return False

        self._refresher = Worker("user-cache-refresh", step, interval)
        self._refresher.start()

    async def stop_refresh(self) -> None:
        """Stop polling."""
        if self._refresher is not None:
            await self._refresher.stop()
            self._refresher = None

    async def _changed(self) -> None:
        # Rebuild the index (so revoked keys and disabled users are refused at once) and
        # tell other processes; our own stamp is remembered so we do not reload for it.
        self._install(self.users)
        self._epoch = await self.bucket.put(EPOCH_KEY, {"version": RECORD_VERSION, "at": time.time_ns(),
                                                        "nonce": secrets.token_hex(8)})

    # -- records -----------------------------------------------------------------------------

    async def _save_user(self, user: User) -> None:
        await self.bucket.put(f"users/{user.user_id}", {
            "version": RECORD_VERSION, "id": user.user_id, "name": user.name, "email": user.email,
            "admin": user.admin, "disabled": user.disabled, "created_ns": user.created_ns})

    async def _save_key(self, user: User, key: str, secret: str) -> None:
        await self.bucket.put(f"keys/{key}", {"version": RECORD_VERSION, "id": key, "user": user.user_id,
                                              "secret": secret, "created_ns": time.time_ns()})

    async def _migrate(self, path: Path) -> None:
        """Move users of the pre-service-bucket JSON file into the bucket, then remove the file."""
        if not path.exists():
            return
        doc = json.loads(path.read_text())
        async with self._lock:
            for entry in doc.get("users", []):
                if entry["id"] in self.users:
                    continue
                user = User(entry["id"], entry.get("name", ""), {}, bool(entry.get("admin")),
                            entry.get("email", ""), False, time.time_ns())
                await self._save_user(user)
                for key, secret in entry.get("keys", {}).items():
                    await self._save_key(user, key, secret)
                    user.keys[key] = secret
                self.users[user.user_id] = user
            await self._changed()
        path.unlink()
        log.info("migrated %d users from %s into the service bucket", len(doc.get("users", [])), path)

    # -- lookups -----------------------------------------------------------------------------

    def lookup(self, access_key: str) -> tuple[User, str] | None:
        """The user and secret of an active access key ID, or None; AccessDenied for a disabled user."""
        found = self._by_key.get(access_key)
        if found is not None and found[0].disabled:
            raise AccessDenied("The account of this access key is disabled.")
        return found

    def admin(self) -> User | None:
        """The admin user, if one exists."""
        return next((u for u in self.users.values() if u.admin), None)

    def find(self, user_id: str | None = None, email: str | None = None) -> User:
        """The user with this ID or e-mail (NoSuchUser)."""
        if user_id:
            user = self.users.get(user_id.lower())
            if user is not None:
                return user
            raise NoSuchUser(f"no user with id {user_id}")
        if email:
            for user in self.users.values():
                if user.email.lower() == email.lower():
                    return user
            raise NoSuchUser(f"no user with e-mail {email}")
        raise InvalidAdminArgument("give a user e-mail (-e) or user ID (-i)")

    def sorted_users(self) -> list[User]:
        """Every user, ordered by ID."""
        return sorted(self.users.values(), key=lambda u: u.user_id)

    # -- changes -----------------------------------------------------------------------------

    async def ensure_admin(self, access_key: str | None = None, secret: str | None = None) -> tuple[User, str, str]:
        """Create the admin on first start, or set its keys from the environment.

        Returns ``(user, access key, secret)`` of the key to print.
        """
        async with self._lock:
            user = self.admin()
            changed = False
            if user is None:
                user = User(new_user_id(), "admin", {}, True, "", False, time.time_ns())
                await self._save_user(user)
                self.users[user.user_id] = user
                changed = True
            if access_key and secret:
                if user.keys != {access_key: secret}:
                    for old in list(user.keys):
                        await self.bucket.delete(f"keys/{old}")
                    await self._save_key(user, access_key, secret)
                    user.keys = {access_key: secret}
                    changed = True
            elif not user.keys:
                key, value = new_access_key(user.user_id), new_secret()
                await self._save_key(user, key, value)
                user.keys[key] = value
                changed = True
            if changed:
                await self._changed()
        key, value = next(iter(user.keys.items()))
        return user, key, value

    async def create_user(self, email: str) -> tuple[User, str, str]:
        """A new user with one key pair (UserAlreadyExists for a known e-mail)."""
        if not _EMAIL.match(email or ""):
            raise InvalidAdminArgument(f"not an e-mail address: {email!r}")
        async with self._lock:
            if any(u.email.lower() == email.lower() for u in self.users.values()):
                raise UserAlreadyExists(f"a user with e-mail {email} already exists")
            user_id = new_user_id()
            while user_id in self.users or user_id == SERVICE_OWNER:
                user_id = new_user_id()
            user = User(user_id, email, {}, False, email, False, time.time_ns())
            await self._save_user(user)
            key, secret = new_access_key(user_id), new_secret()
            await self._save_key(user, key, secret)
            user.keys[key] = secret
            self.users[user_id] = user
            await self._changed()
        return user, key, secret

    async def set_disabled(self, user: User, disabled: bool) -> None:
        """Disable (refused at once) or enable a user; the admin cannot be disabled."""
        if user.admin and disabled:
            raise InvalidAdminArgument("the admin user cannot be disabled")
        async with self._lock:
            user.disabled = disabled
            await self._save_user(user)
            await self._changed()

    async def delete_user(self, user: User, owned_buckets: list[str]) -> None:
        """Delete a user and its keys (UserOwnsBuckets while it owns any bucket)."""
        if user.admin:
            raise InvalidAdminArgument("the admin user cannot be deleted")
        if owned_buckets:
            raise UserOwnsBuckets(f"user {user.user_id} owns {len(owned_buckets)} bucket(s) "
                                  f"({', '.join(owned_buckets[:5])}); delete or hand them over first")
        async with self._lock:
            for key in list(user.keys):
                await self.bucket.delete(f"keys/{key}")
            user.keys.clear()  # refused at once, even if the user record below fails to go
            await self.bucket.delete(f"users/{user.user_id}")
            self.users.pop(user.user_id, None)
            await self._changed()

    async def gen_access_key(self, user: User) -> tuple[str, str]:
        """A new key pair for the user (AccessKeyLimitExceeded beyond two active pairs)."""
        async with self._lock:
            if len(user.keys) >= MAX_ACTIVE_KEYS:
                raise AccessKeyLimitExceeded(
                    f"user {user.user_id} already has {MAX_ACTIVE_KEYS} active access key pairs; "
                    "revoke one first")
            key, secret = new_access_key(user.user_id), new_secret()
            while key in self._by_key:
                key = new_access_key(user.user_id)
            await self._save_key(user, key, secret)
            user.keys[key] = secret
            await self._changed()
        return key, secret

    async def revoke_access_key(self, user: User, key: str) -> None:
        """Remove one key pair of the user (NoSuchAccessKey); refused at once afterwards."""
        async with self._lock:
            if key not in user.keys:
                raise NoSuchAccessKey(f"user {user.user_id} has no access key {key}")
            del user.keys[key]
            self._install(self.users)
            await self.bucket.delete(f"keys/{key}")
            await self._changed()


def is_user_id(value: str) -> bool:
    """Whether ``value`` looks like a user ID (16 lower-case hex digits)."""
    return bool(_USER_ID.match(value))

