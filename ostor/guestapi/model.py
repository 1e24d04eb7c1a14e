"""Instances, their matchers and configuration rules, with no storage and no HTTP in them."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ostor.common.errors import InvalidAdminArgument

RECORD_VERSION = 1
INSTANCE_TYPES = ("container", "virtual-machine", "process")
STATES = ("Started", "Ready")
#: The only namespaces a guest may read (seed: "only the cloud-init.* and user.* keys").
GUEST_NAMESPACES = ("user.", "cloud-init.")
#: Changing one of these gives the instance a new cloud-init instance ID (so cloud-init re-runs).
CLOUD_INIT_ID_KEYS = frozenset({"cloud-init.user-data", "cloud-init.vendor-data",
                                "cloud-init.network-config"})
KEY_GUESTAPI = "security.guestapi"
KEY_GUESTAPI_IMAGES = "security.guestapi.images"
BOOLEAN_KEYS = {KEY_GUESTAPI: True, KEY_GUESTAPI_IMAGES: False}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
DEVICE_ACCESS = ("read-only", "read-write")

# Instance names become the guest's local-hostname, so they follow host-name rules.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
# Keys and device names: visible characters only, so they fit in URLs, tables and argv.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,255}$")
_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def validate_name(name: str) -> str:
    """An instance name (letters, digits, '-', starting with a letter, not ending with '-')."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("-"):
        raise InvalidAdminArgument(f"invalid instance name {name!r}: use letters, digits and '-', "
                                   "start with a letter, at most 63 characters")
    return name


def validate_key(key: str) -> str:
    """A configuration key name."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidAdminArgument(f"invalid configuration key {key!r}")
    return key


def validate_value(key: str, value: str) -> str:
    """A value for ``key``: any text, except that the boolean security keys take booleans."""
    if not isinstance(value, str):
        raise InvalidAdminArgument(f"the value of {key} must be text")
    if key in BOOLEAN_KEYS and value.lower() not in _TRUE | _FALSE:
        raise InvalidAdminArgument(f"{key} takes true or false, not {value!r}")
    return value


def validate_device(device: str, config: dict[str, str]) -> dict[str, str]:
    """A device name and its keys; a ``type=bucket`` device needs ``bucket`` and a valid ``access``."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise InvalidAdminArgument(f"invalid device name {device!r}")
    for key, value in config.items():
        validate_key(key)
        if not isinstance(value, str):
            raise InvalidAdminArgument(f"the value of {key} must be text")
    if "type" not in config:
        raise InvalidAdminArgument(f"device {device} needs a type (type=bucket, ...)")
    if config["type"] == "bucket":
        if not config.get("bucket"):
            raise InvalidAdminArgument(f"bucket device {device} needs bucket=NAME")
        if config.get("access", "read-only") not in DEVICE_ACCESS:
            raise InvalidAdminArgument(f"bucket device {device}: access is read-only or read-write, "
                                       f"not {config['access']!r}")
    return dict(config)


def is_guest_key(key: str) -> bool:
    """Whether a guest may read ``key`` through the socket."""
    return key.startswith(GUEST_NAMESPACES)


def is_true(value: str | None, default: bool) -> bool:
    """A boolean configuration value (absent or empty means ``default``)."""
    if not value:
        return default
    return value.lower() in _TRUE


@dataclass(frozen=True)
class Matchers:
    """Who an instance is: every given matcher must hold for a caller to be this instance.

    ``cgroup`` is a path prefix matched on whole path components against the
    path field of /proc/PID/cgroup (``/lxc/c1`` matches ``/lxc/c1/init`` but not
    ``/lxc/c10``); a value with ':' (``4:memory:/lxc/c1``) is matched the same way
    against whole lines.
    """

    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    cgroup: str | None = None

    def __post_init__(self) -> None:
        for name in ("uid", "gid", "pid"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidAdminArgument(f"--{name} takes a non-negative number, not {value!r}")
        if self.cgroup is not None:
            if not isinstance(self.cgroup, str) or "/" not in self.cgroup or "\n" in self.cgroup:
                raise InvalidAdminArgument(f"--cgroup takes a cgroup path such as /lxc/c1, not {self.cgroup!r}")
            if len(self.cgroup) > 1 and self.cgroup.endswith("/"):
                object.__setattr__(self, "cgroup", self.cgroup.rstrip("/") or "/")
        if self.empty:
            raise InvalidAdminArgument("an instance needs at least one matcher: --uid, --gid, --pid or --cgroup")

    @property
    def empty(self) -> bool:
        """True when no matcher is set."""
        return self.uid is None and self.gid is None and self.pid is None and self.cgroup is None

    @property
    def specificity(self) -> int:
        """How many matchers are set: when two instances match, the more specific one wins."""
        return sum(v is not None for v in (self.uid, self.gid, self.pid, self.cgroup))

    def matches(self, pid: int, uid: int, gid: int, cgroup_keys: frozenset[str]) -> bool:
        """Whether a caller with these credentials (and cgroup index keys) is this instance."""
        return ((self.uid is None or self.uid == uid) and (self.gid is None or self.gid == gid)
                and (self.pid is None or self.pid == pid)
                and (self.cgroup is None or self.cgroup in cgroup_keys))

    def as_doc(self) -> dict[str, Any]:
        """The set matchers only."""
        return {k: v for k, v in (("uid", self.uid), ("gid", self.gid), ("pid", self.pid),
                                  ("cgroup", self.cgroup)) if v is not None}

    def describe(self) -> str:
        """``uid=1000,cgroup=/lxc/c1`` for tables."""
        return ",".join(f"{k}={v}" for k, v in self.as_doc().items())


@dataclass(frozen=True)
class Instance:
    """A registered instance. Immutable: a change makes a new one (readers never see half a change)."""

    name: str
    type: str
    matchers: Matchers
    config: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)
    state: str = "Started"
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_ns: int = field(default_factory=time.time_ns)

    @property
    def guestapi_enabled(self) -> bool:
        """``security.guestapi`` (default true): may the instance use the socket at all."""
        return is_true(self.config.get(KEY_GUESTAPI), True)

    @property
    def images_enabled(self) -> bool:
        """``security.guestapi.images`` (default false): may it export images."""
        return is_true(self.config.get(KEY_GUESTAPI_IMAGES), False)

    def guest_config(self) -> dict[str, str]:
        """The keys a guest may read."""
        return {k: v for k, v in self.config.items() if is_guest_key(k)}

    def with_changes(self, **changes: Any) -> "Instance":
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def as_doc(self) -> dict[str, Any]:
        """The stored (and shown) form."""
        return {"version": RECORD_VERSION, "name": self.name, "type": self.type,
                "matchers": self.matchers.as_doc(), "config": dict(self.config),
                "devices": {k: dict(v) for k, v in self.devices.items()}, "state": self.state,
                "instance_id": self.instance_id, "created_ns": self.created_ns}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Instance":
        """Back from :meth:`as_doc`."""
        return cls(doc["name"], doc.get("type", "container"), Matchers(**doc["matchers"]),
                   dict(doc.get("config", {})), {k: dict(v) for k, v in doc.get("devices", {}).items()},
                   doc.get("state", "Started"), doc.get("instance_id") or str(uuid.uuid4()),
                   int(doc.get("created_ns", 0)))
