"""Admin commands for the guest API: instances, their configuration and devices, and images.

Mixed into :class:`ostor.admin.service.AdminService`. Inside the running
server ``guest_api`` is the very :class:`GuestApi` the guest socket serves, so
a change is visible to guests (and produces its events) as soon as the
command returns. Without a server the commands load the records from the
data directory's service bucket and change them there.
"""

from __future__ import annotations

from typing import Any

from ostor.common.errors import InvalidAdminArgument
from ostor.guestapi.app import GuestApi
from ostor.guestapi.images import Image
from ostor.guestapi.model import Instance, Matchers


def instance_doc(instance: Instance) -> dict[str, Any]:
    """How an instance travels to ostor-ctl."""
    doc = instance.as_doc()
    doc.pop("version", None)
    return doc


def image_doc(image: Image) -> dict[str, Any]:
    """How an image travels to ostor-ctl."""
    doc = image.as_doc()
    doc.pop("version", None)
    return doc


def _text_map(values: Any, what: str) -> dict[str, str]:
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in values.items()):
        raise InvalidAdminArgument(f"{what} must map names to text")
    return values


class GuestCommands:
    """``instance-*`` and ``image-*`` admin commands."""

    engine: Any
    users: Any
    #: Set by the server to the live guest API; loaded on first use otherwise.
    guest_api: GuestApi | None = None

    async def _guest(self) -> GuestApi:
        if self.guest_api is None:
            self.guest_api = await GuestApi.open(self.engine, self.users.bucket)
        return self.guest_api

    # -- instances -------------------------------------------------------------------------------

    async def cmd_instance_create(self, name: str, type: str = "container", uid: int | None = None,
                                  gid: int | None = None, pid: int | None = None,
                                  cgroup: str | None = None) -> dict[str, Any]:
        """Register an instance with its matchers."""
        guest = await self._guest()
        instance = await guest.instances.create(name, Matchers(uid, gid, pid, cgroup), type)
        return instance_doc(instance)

    async def cmd_instance_list(self) -> list[dict[str, Any]]:
        """Every instance."""
        return [instance_doc(i) for i in (await self._guest()).instances.all()]

    async def cmd_instance_show(self, name: str) -> dict[str, Any]:
        """One instance with its configuration and devices."""
        return instance_doc((await self._guest()).instances.require(name))

    async def cmd_instance_delete(self, name: str) -> dict[str, Any]:
        """Unregister an instance (its connections are refused from their next request)."""
        instance = await (await self._guest()).instances.delete(name)
        return {"name": instance.name}

    async def cmd_instance_set(self, name: str, config: dict[str, str]) -> dict[str, Any]:
        """Set configuration keys."""
        guest = await self._guest()
        return instance_doc(await guest.instances.set_config(name, _text_map(config, "config")))

    async def cmd_instance_unset(self, name: str, keys: list[str]) -> dict[str, Any]:
        """Remove configuration keys."""
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InvalidAdminArgument("keys must be a list of names")
        return instance_doc(await (await self._guest()).instances.unset_config(name, keys))

    async def cmd_instance_get(self, name: str, key: str) -> dict[str, Any]:
        """One key's value (None when unset)."""
        instance = (await self._guest()).instances.require(name)
        return {"name": name, "key": key, "value": instance.config.get(key)}

    async def cmd_instance_device_add(self, name: str, device: str, config: dict[str, str]) -> dict[str, Any]:
        """Attach a device."""
        guest = await self._guest()
        return instance_doc(await guest.instances.add_device(name, device, _text_map(config, "config")))

    async def cmd_instance_device_set(self, name: str, device: str, config: dict[str, str]) -> dict[str, Any]:
        """Change keys of a device."""
        guest = await self._guest()
        return instance_doc(await guest.instances.update_device(name, device, _text_map(config, "config")))

    async def cmd_instance_device_remove(self, name: str, device: str) -> dict[str, Any]:
        """Detach a device."""
        return instance_doc(await (await self._guest()).instances.remove_device(name, device))

    # -- images ----------------------------------------------------------------------------------

    async def cmd_image_import(self, path: str, alias: str | None = None) -> dict[str, Any]:
        """Store a file (read by the server: admin socket users are the host's administrators)."""
        return image_doc(await (await self._guest()).images.import_file(path, alias))

    async def cmd_image_list(self) -> list[dict[str, Any]]:
        """Every image."""
        return [image_doc(i) for i in (await self._guest()).images.all()]

    async def cmd_image_delete(self, image: str) -> dict[str, Any]:
        """Remove an image by fingerprint or alias."""
        return image_doc(await (await self._guest()).images.delete(image))
