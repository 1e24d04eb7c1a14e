"""How the engine reaches its services: directly, or as messages.

In the embedded mode services are objects in this process. With
``ServiceConfig(messages=True)`` every call the engine makes is instead
encoded as a request message, decoded by the service's endpoint and answered
with an encoded reply (data as frames with an end-of-data flag) — exactly the
bytes a socket transport carries between processes. Tests run the engine in
both modes, so moving services behind sockets changes no engine code.
"""

from __future__ import annotations

from typing import Any

from ostor.common.errors import InternalError, message_error_types
from ostor.common.messages import Codec, ServiceClient, ServiceEndpoint, loopback
from ostor.nameserver.protocol import NAME_SERVER_OPERATIONS, NAME_SERVER_TYPES
from ostor.objectserver.protocol import OBJECT_SERVER_OPERATIONS, OBJECT_SERVER_TYPES


def service_codec() -> Codec:
    """The codec both ends of a service connection use."""
    return Codec(message_error_types() + NAME_SERVER_TYPES + OBJECT_SERVER_TYPES,
                 fallback_error=InternalError)


def name_server_client(service: Any, codec: Codec) -> ServiceClient:
    """A name server reached through the message protocol (loopback in this process)."""
    endpoint = ServiceEndpoint(service, NAME_SERVER_OPERATIONS, codec)
    return ServiceClient(loopback(endpoint), NAME_SERVER_OPERATIONS, codec,
                         {"service_id": service.service_id})


def object_server_client(service: Any, codec: Codec) -> ServiceClient:
    """An object server reached through the message protocol (loopback in this process)."""
    endpoint = ServiceEndpoint(service, OBJECT_SERVER_OPERATIONS, codec)
    return ServiceClient(loopback(endpoint), OBJECT_SERVER_OPERATIONS, codec,
                         {"service_id": service.service_id})
