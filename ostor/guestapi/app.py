"""The guest API's HTTP endpoints (seed 003, "REST-API"), answering only about the calling instance.

Every request is first attributed to an instance from the connection's peer
credentials, on every request (not once per connection), so deleting an
instance or turning ``security.guestapi`` off refuses a kept-alive connection's
very next request. Nothing in the request (path, query, headers, body) takes
part in choosing the instance. Errors are plain text with a newline, as Go's
``http.Error`` writes them; JSON answers are ``application/json``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from aiohttp import web

from ostor.common.errors import (
    GuestApiError, GuestBadRequest, GuestForbidden, GuestMethodNotAllowed, GuestNotFound, NoSuchImage,
    NoSuchInstance,
)
from ostor.guestapi.events import EventHub, Subscription, parse_types
from ostor.guestapi.identity import peer_credentials
from ostor.guestapi.images import ImageStore, is_fingerprint
from ostor.guestapi.model import STATES, Instance, is_guest_key
from ostor.guestapi.store import InstanceStore


WEBSOCKET_PING = 10.0
#: How often an idle plain event stream checks that its reader is still connected.
STREAM_IDLE_CHECK = 10.0
_INSTANCE = web.RequestKey("ostor.guestapi.instance", object)  # the request slot the middleware fills


def error_response(status: int, message: str) -> web.Response:
    """A plain-text error: the message and a newline."""
    return web.Response(status=status, text=message + "\n", content_type="text/plain", charset="utf-8")


def json_response(doc: Any) -> web.Response:
    """A JSON answer (with a trailing newline, as Go's encoder writes it)."""
    return web.Response(body=json.dumps(doc, ensure_ascii=False).encode() + b"\n",
                        headers={"Content-Type": "application/json"})


def text_response(text: str) -> web.Response:
    """A raw value as text."""
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def go_quote(value: str) -> str:
    """``"X"`` with escapes, the way Go's %q prints a string in Incus' messages."""
    return json.dumps(value, ensure_ascii=False)


class GuestApi:
    """Instances, images and events as the guest socket serves them."""

    def __init__(self, instances: InstanceStore, images: ImageStore, location: str | None = None) -> None:
        self.instances = instances
        self.images = images
        self.hub: EventHub = instances.hub
        self.location = location or socket.gethostname()

    @classmethod
    async def open(cls, engine: Any, records: Any, location: str | None = None) -> "GuestApi":
        """Load instances and images from the service bucket ``records`` (an ostor ServiceBucket)."""
        async def bucket_exists(name: str) -> None:
            await engine.get_bucket(name)  # NoSuchBucket

        instances = await InstanceStore.open(records, EventHub(), bucket_exists)
        images = await ImageStore.open(engine, records.name, records)
        return cls(instances, images, location)

    # -- the application -------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application with every route of the seed."""
        app = web.Application(middlewares=[self._identify], client_max_size=64 * 1024)
        app.router.add_get("/", self.get_root, allow_head=False)
        app.router.add_get("/1.0", self.get_api, allow_head=False)
        app.router.add_patch("/1.0", self.patch_api)
        app.router.add_get("/1.0/config", self.get_config, allow_head=False)
        app.router.add_get("/1.0/config/{key}", self.get_config_key, allow_head=False)
        app.router.add_get("/1.0/devices", self.get_devices, allow_head=False)
        app.router.add_get("/1.0/meta-data", self.get_meta_data, allow_head=False)
        app.router.add_get("/1.0/events", self.get_events, allow_head=False)
        app.router.add_get("/1.0/images/{fingerprint}/export", self.export_image, allow_head=False)
        return app

    def caller(self, request: web.Request) -> Instance:
        """The calling instance (GuestForbidden when none, or when its guest API is off)."""
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if sock is None:
            raise GuestForbidden("not authorized: no peer credentials")
        instance = self.instances.resolve(peer_credentials(sock))
        if instance is None:
            raise GuestForbidden("not authorized: no instance matches this caller")
        if not instance.guestapi_enabled:
            raise GuestForbidden("not authorized")
        return instance

    @web.middleware
    async def _identify(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            request[_INSTANCE] = self.caller(request)  # before routing errors: strangers learn nothing
            return await handler(request)
        except GuestApiError as exc:
            return error_response(exc.status, str(exc))
        except web.HTTPMethodNotAllowed:
            return error_response(GuestMethodNotAllowed.status, "method not allowed")
        except web.HTTPNotFound:
            return error_response(GuestNotFound.status, "not found")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error_response(exc.status, exc.reason)
            raise

    # -- endpoints -------------------------------------------------------------------------------

    async def get_root(self, request: web.Request) -> web.Response:
        """``GET /``: the supported API versions."""
        return json_response(["/1.0"])

    async def get_api(self, request: web.Request) -> web.Response:
        """``GET /1.0``: API version, host, instance type and state."""
        instance = request[_INSTANCE]
        return json_response({"api_version": "1.0", "location": self.location,
                              "instance_type": instance.type, "state": instance.state})

    async def patch_api(self, request: web.Request) -> web.Response:
        """``PATCH /1.0``: the guest reports its state (Ready or Started, exact case)."""
        instance = request[_INSTANCE]
        try:
            doc = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise GuestBadRequest(f"bad JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("state", ""), str):
            raise GuestBadRequest("bad JSON: expected an object with a string state")
        state = doc.get("state", "")
        if state not in STATES:
            raise GuestBadRequest(f"Invalid state {go_quote(state)}")
        try:
            await self.instances.set_state(instance.name, state)
        except NoSuchInstance:
            raise GuestForbidden("not authorized: no instance matches this caller") from None
        return web.Response(status=200)

    async def get_config(self, request: web.Request) -> web.Response:
        """``GET /1.0/config``: URLs of the instance's user.* and cloud-init.* keys."""
        config = request[_INSTANCE].guest_config()
        return json_response([f"/1.0/config/{key}" for key in sorted(config)])

    async def get_config_key(self, request: web.Request) -> web.Response:
        """``GET /1.0/config/{key}``: the raw value (403 outside the guest namespaces, then 404)."""
        key = request.match_info["key"]
        if not is_guest_key(key):
            raise GuestForbidden("not authorized")
        value = request[_INSTANCE].config.get(key)
        if value is None:
            raise GuestNotFound("not found")
        return text_response(value)

    async def get_devices(self, request: web.Request) -> web.Response:
        """``GET /1.0/devices``: device name to its keys."""
        return json_response(request[_INSTANCE].devices)

    async def get_meta_data(self, request: web.Request) -> web.Response:
        """``GET /1.0/meta-data``: cloud-init meta-data, then the raw ``user.meta-data``."""
        instance = request[_INSTANCE]
        head = f"#cloud-config\ninstance-id: {instance.instance_id}\nlocal-hostname: {instance.name}\n"
        return text_response(head + instance.config.get("user.meta-data", ""))

    async def export_image(self, request: web.Request) -> web.StreamResponse:
        """``GET /1.0/images/{fp}/export``: an image's bytes, streamed (security.guestapi.images)."""
        if not request[_INSTANCE].images_enabled:
            raise GuestForbidden("not authorized")
        fingerprint = request.match_info["fingerprint"]
        if not is_fingerprint(fingerprint) or self.images.get(fingerprint) is None:
            raise GuestNotFound("not found")
        try:
            reader = await self.images.open_reader(fingerprint)
        except NoSuchImage:
            raise GuestNotFound("not found") from None
        response = web.StreamResponse(headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline;filename={fingerprint}"})
        response.content_length = reader.length
        await response.prepare(request)
        async for chunk in reader.frames():
            await response.write(chunk)
        await response.write_eof()
        return response

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        """``GET /1.0/events``: a WebSocket, or without an upgrade a never-ending JSON-lines stream."""
        sub = self.hub.subscribe(request[_INSTANCE].name, parse_types(request.query.get("type")))
        try:
            websocket = web.WebSocketResponse(heartbeat=WEBSOCKET_PING)
            if websocket.can_prepare(request).ok:
                return await self._events_websocket(request, websocket, sub)
            return await self._events_stream(request, sub)
        except ConnectionError:  # the reader went away
            return web.Response(status=200)
        finally:
            self.hub.unsubscribe(sub)

    async def _events_stream(self, request: web.Request, sub: Subscription) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)  # headers go out now: the reader knows it is subscribed
        while True:
            try:
                text = await sub.next(STREAM_IDLE_CHECK)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return response
                continue
            if text is None:  # revoked: end the stream
                await response.write_eof()
                return response
            await response.write(text.encode() + b"\n")

    async def _events_websocket(self, request: web.Request, websocket: web.WebSocketResponse,
                                sub: Subscription) -> web.WebSocketResponse:
        await websocket.prepare(request)

        async def drain() -> None:
            # Reading answers pings and notices the client's close.
            async for _ in websocket:
                pass

        reader = asyncio.ensure_future(drain())
        try:
            while not websocket.closed:
                getter = asyncio.ensure_future(sub.next())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                text = getter.result()
                if text is None:
                    break
                await websocket.send_str(text)
        finally:
            reader.cancel()
            await websocket.close()
        return websocket
