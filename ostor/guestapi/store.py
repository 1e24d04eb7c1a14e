"""Instances in the service bucket, indexed in memory; every change is durable, then visible, then an event.

Each instance is one small JSON object ``guestapi/instances/<name>`` in the
service bucket (as users are). The running server holds the only live copy in
memory: the admin socket and the guest socket share one :class:`InstanceStore`,
so a change is visible to guests as soon as the admin command returns. Changes
are serialised by one lock, so events leave in the order changes were made.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ostor.common.errors import (
    DeviceAlreadyExists, InstanceAlreadyExists, InvalidAdminArgument, NoSuchConfigKey, NoSuchDevice,
    NoSuchInstance,
)
from ostor.guestapi.events import EventHub
from ostor.guestapi.identity import MatcherIndex, PeerCredentials
from ostor.guestapi.model import (
    CLOUD_INIT_ID_KEYS, INSTANCE_TYPES, STATES, Instance, Matchers, validate_device, validate_key,
    validate_name, validate_value,
)

PREFIX = "guestapi/instances/"


class RecordBucket(Protocol):
    """JSON records by key (the service bucket of :mod:`ostor.gateway.users` fits)."""

    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def put(self, key: str, doc: dict[str, Any]) -> str: ...
    async def delete(self, key: str) -> None: ...
    async def load_all(self, prefix: str) -> dict[str, dict[str, Any]]: ...


class InstanceStore:
    """Every registered instance, by name and by matcher, with change events."""

    def __init__(self, bucket: RecordBucket, hub: EventHub | None = None,
                 bucket_exists: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.bucket = bucket
        self.hub = hub or EventHub()
        #: Raises (NoSuchBucket) when a bucket device names a bucket that does not exist.
        self.bucket_exists = bucket_exists
        self._instances: dict[str, Instance] = {}
        self._index = MatcherIndex()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, bucket: RecordBucket, hub: EventHub | None = None,
                   bucket_exists: Callable[[str], Awaitable[None]] | None = None) -> "InstanceStore":
        """Load every instance record."""
        store = cls(bucket, hub, bucket_exists)
        for doc in (await bucket.load_all(PREFIX)).values():
            store._install(Instance.from_doc(doc))
        return store

    # -- reads (no awaits: a guest request sees one consistent instance) ------------------------

    def get(self, name: str) -> Instance | None:
        """The instance called ``name``, or None."""
        return self._instances.get(name)

    def require(self, name: str) -> Instance:
        """The instance called ``name`` (NoSuchInstance)."""
        instance = self._instances.get(name)
        if instance is None:
            raise NoSuchInstance(f"no instance {name!r}")
        return instance

    def all(self) -> list[Instance]:
        """Every instance, by name."""
        return [self._instances[n] for n in sorted(self._instances)]

    def __len__(self) -> int:
        return len(self._instances)

    def resolve(self, creds: PeerCredentials) -> Instance | None:
        """The instance a caller with these credentials is (None: no instance, or ambiguous)."""
        return self._index.resolve(creds, self._instances.get)

    # -- changes -------------------------------------------------------------------------------

    def _install(self, instance: Instance) -> None:
        old = self._instances.get(instance.name)
        if old is not None:
            self._index.remove(old)
        self._instances[instance.name] = instance
        self._index.add(instance)

    async def _save(self, instance: Instance) -> None:
        await self.bucket.put(PREFIX + instance.name, instance.as_doc())
        self._install(instance)

    async def create(self, name: str, matchers: Matchers, type_: str = "container") -> Instance:
        """Register an instance (InstanceAlreadyExists; refused if another has exactly these matchers)."""
        validate_name(name)
        if type_ not in INSTANCE_TYPES:
            raise InvalidAdminArgument(f"instance type is one of {', '.join(INSTANCE_TYPES)}, not {type_!r}")
        async with self._lock:
            if name in self._instances:
                raise InstanceAlreadyExists(f"instance {name!r} already exists")
            twin = next((self._instances[n] for n in self._index.sharing(matchers)
                         if self._instances[n].matchers == matchers), None)
            if twin is not None:
                raise InvalidAdminArgument(f"instance {twin.name!r} already has these matchers "
                                           f"({matchers.describe()}); callers would be ambiguous")
            instance = Instance(name, type_, matchers)
            await self._save(instance)
            return instance

    async def delete(self, name: str) -> Instance:
        """Unregister an instance: its open connections are refused from their next request on."""
        async with self._lock:
            instance = self.require(name)
            # Forget it in memory first: revocation must not wait for the disk.
            self._index.remove(instance)
            del self._instances[name]
            self.hub.close_instance(name)
            await self.bucket.delete(PREFIX + name)
            return instance

    async def set_config(self, name: str, values: dict[str, str]) -> Instance:
        """Set keys; user.* changes become config events, cloud-init data changes renew the instance ID."""
        for key, value in values.items():
            validate_value(validate_key(key), value)
        async with self._lock:
            old = self.require(name)
            return await self._change_config(old, {**old.config, **values})

    async def unset_config(self, name: str, keys: list[str]) -> Instance:
        """Remove keys (NoSuchConfigKey for one that is not set; nothing changes then)."""
        async with self._lock:
            old = self.require(name)
            missing = [k for k in keys if k not in old.config]
            if missing:
                raise NoSuchConfigKey(f"instance {name!r} has no key {missing[0]!r}")
            return await self._change_config(old, {k: v for k, v in old.config.items() if k not in keys})

    async def _change_config(self, old: Instance, config: dict[str, str]) -> Instance:
        changed = sorted(k for k in set(old.config) | set(config) if old.config.get(k) != config.get(k))
        if not changed:
            return old
        instance_id = old.instance_id
        if CLOUD_INIT_ID_KEYS.intersection(changed):
            instance_id = str(uuid.uuid4())
        new = old.with_changes(config=config, instance_id=instance_id)
        await self._save(new)
        if not new.guestapi_enabled:
            self.hub.close_instance(new.name)
            return new
        for key in changed:
            if key.startswith("user."):
                self.hub.publish(new.name, "config", {"key": key, "old_value": old.config.get(key, ""),
                                                      "value": config.get(key, "")})
        return new

    async def add_device(self, name: str, device: str, config: dict[str, str]) -> Instance:
        """Attach a device (DeviceAlreadyExists); a bucket device's bucket must exist."""
        config = validate_device(device, config)
        if config["type"] == "bucket" and self.bucket_exists is not None:
            await self.bucket_exists(config["bucket"])
        async with self._lock:
            old = self.require(name)
            if device in old.devices:
                raise DeviceAlreadyExists(f"instance {name!r} already has a device {device!r}")
            return await self._change_device(old, device, config, "added")

    async def update_device(self, name: str, device: str, values: dict[str, str]) -> Instance:
        """Change some keys of a device (an ``updated`` event)."""
        async with self._lock:
            old = self.require(name)
            if device not in old.devices:
                raise NoSuchDevice(f"instance {name!r} has no device {device!r}")
            config = validate_device(device, {**old.devices[device], **values})
            if config["type"] == "bucket" and self.bucket_exists is not None:
                await self.bucket_exists(config["bucket"])
            if config == old.devices[device]:
                return old
            return await self._change_device(old, device, config, "updated")

    async def remove_device(self, name: str, device: str) -> Instance:
        """Detach a device (NoSuchDevice)."""
        async with self._lock:
            old = self.require(name)
            if device not in old.devices:
                raise NoSuchDevice(f"instance {name!r} has no device {device!r}")
            return await self._change_device(old, device, None, "removed")

    async def _change_device(self, old: Instance, device: str, config: dict[str, str] | None,
                             action: str) -> Instance:
        devices = dict(old.devices)
        shown = config if config is not None else devices[device]
        if config is None:
            del devices[device]
        else:
            devices[device] = config
        new = old.with_changes(devices=devices)
        await self._save(new)
        if new.guestapi_enabled:
            self.hub.publish(new.name, "device", {"action": action, "name": device, "config": dict(shown)})
        return new

    async def set_state(self, name: str, state: str) -> Instance:
        """Record the state a guest reported (Started or Ready)."""
        if state not in STATES:
            raise InvalidAdminArgument(f"invalid state {state!r}")
        async with self._lock:
            old = self.require(name)
            if old.state == state:
                return old
            new = old.with_changes(state=state)
            await self._save(new)
            return new
