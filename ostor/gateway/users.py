"""Users and access keys of the gateway, kept in DATA_DIR/gateway/users.json for now.

A later issue moves users to the service bucket; until then this file (mode
0600) is the only place secrets live. The admin user is created on first start.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
_KEY_SUFFIX = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass
class User:
    """A user: 16-hex ID, display name, and its access keys (access key ID -> secret)."""

    user_id: str
    name: str
    keys: dict[str, str] = field(default_factory=dict)
    admin: bool = False


def new_user_id() -> str:
    """A fresh 16-hex-digit user ID."""
    return secrets.token_hex(8)


def new_access_key(user_id: str) -> str:
    """An access key ID: the user ID plus 4 upper-case alphanumerics (20 characters)."""
    return user_id.upper() + "".join(secrets.choice(_KEY_SUFFIX) for _ in range(4))


def new_secret() -> str:
    """A 40-character secret key."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


class UserStore:
    """Users loaded from (and saved to) a JSON file; lookups by access key are in memory."""

    def __init__(self, path: Path, users: list[User]) -> None:
        self.path = path
        self.users = users
        self._by_key = {key: (user, secret) for user in users for key, secret in user.keys.items()}

    @classmethod
    def load(cls, path: Path) -> "UserStore":
        """Read the store (an empty one when the file does not exist yet)."""
        if not path.exists():
            return cls(path, [])
        doc = json.loads(path.read_text())
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown users file version {doc.get('version')!r}")
        return cls(path, [User(u["id"], u["name"], dict(u["keys"]), bool(u.get("admin")))
                          for u in doc["users"]])

    def save(self) -> None:
        """Write the file atomically with mode 0600 (it holds secrets)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": FORMAT_VERSION,
               "users": [{"id": u.user_id, "name": u.name, "keys": u.keys, "admin": u.admin}
                         for u in self.users]}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._by_key = {key: (user, secret) for user in self.users for key, secret in user.keys.items()}

    def lookup(self, access_key: str) -> tuple[User, str] | None:
        """The user and secret of an access key ID, or None."""
        return self._by_key.get(access_key)

    def admin(self) -> User | None:
        """The admin user, if one exists."""
        return next((u for u in self.users if u.admin), None)

    def ensure_admin(self, access_key: str | None = None, secret: str | None = None) -> tuple[User, str, str]:
        """Create the admin on first start, or set its keys from the environment.

        Returns ``(user, access key, secret)`` of the key to print.
        """
        user = self.admin()
        if user is None:
            user = User(new_user_id(), "admin", {}, admin=True)
            self.users.append(user)
        if access_key and secret:
            if user.keys != {access_key: secret}:
                user.keys = {access_key: secret}
                self.save()
        elif not user.keys:
            user.keys = {new_access_key(user.user_id): new_secret()}
            self.save()
        key, value = next(iter(user.keys.items()))
        return user, key, value
