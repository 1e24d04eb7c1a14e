"""The per-request context handlers receive, and the gateway's typed configuration."""

from __future__ import annotations

import functools
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ostor.gateway.auth.sigv4 import AuthResult
from ostor.gateway.body import RequestBody
from ostor.gateway.users import User


@dataclass(frozen=True)
class GatewayConfig:
    """Gateway settings with their defaults."""

    #: Region reported by GetBucketLocation and accepted as a LocationConstraint.
    region: str = "us-east-1"
    #: Base domain for virtual-host-style requests (bucket.DOMAIN); None: path style only.
    domain: str | None = None
    #: Largest request document (XML) read into memory.
    max_xml_bytes: int = 2 * 1024 * 1024
    #: Request body buffer per connection (aiohttp pauses reading at twice this; its default is 64 KiB).
    read_buffer_bytes: int = 256 * 1024


#: Per-request slots (aiohttp request storage): the IDs, and whether the status line went out.
REQUEST_ID = web.RequestKey("ostor.request_id", str)
HOST_ID = web.RequestKey("ostor.host_id", str)
PREPARED = web.RequestKey("ostor.prepared", bool)


def stamp(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Give a response, before it is prepared, the headers every S3 answer carries."""
    headers = response.headers
    headers["x-amz-request-id"] = request[REQUEST_ID]
    headers["x-amz-id-2"] = request[HOST_ID]
    headers["Server"] = "ostor"


@dataclass
class RequestContext:
    """One parsed request: target, query, authenticated user and body."""

    request: web.BaseRequest
    engine: Any
    config: GatewayConfig
    request_id: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    auth: AuthResult
    #: Where large bodies are hashed (ostor.common.hashing).
    hash_executor: Executor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def body(self) -> RequestBody:
        """The request's payload, decoded and verified as it streams (made when a handler asks)."""
        return RequestBody(self.request, self.auth, self.hash_executor)

    @property
    def user(self) -> User | None:
        """The authenticated user (None: anonymous)."""
        return self.auth.user

    @property
    def owner_id(self) -> str:
        """The user ID objects and buckets are owned by."""
        return self.auth.user.user_id if self.auth.user else ""

    @property
    def headers(self):
        """The request headers (case-insensitive)."""
        return self.request.headers

    async def prepare(self, response: web.StreamResponse) -> Any:
        """Stamp and send a streamed response's status line and headers; returns its writer.

        Once this ran, an error can no longer become an S3 error document: the
        gateway cuts the connection instead.
        """
        stamp(self.request, response)
        self.request[PREPARED] = True
        return await response.prepare(self.request)

    @property
    def resource(self) -> str:
        """The resource path for error documents."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key is not None else "")


def xml_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An S3 XML response."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/xml")
