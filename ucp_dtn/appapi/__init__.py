"""The application-agent API of ``ucp-bpnode``: local programs use a node over a Unix socket.

Length-prefixed CBOR messages (:mod:`~ucp_dtn.appapi.framing`, :mod:`~ucp_dtn.appapi.messages`
for the protocol), served by :class:`AppApiServer` in front of a bundle node and spoken by
:class:`AppApiClient` (which the ``ucp`` command uses).
"""

from typing import TYPE_CHECKING, Any

from .client import SOCKET_ENV, AppApiClient, ClientRegistration, NodeInfo, ReceivedBundle
from .errors import (
    AppApiClosedError,
    AppApiError,
    AppApiProtocolError,
    AppApiUsageError,
    ErrorCode,
    RequestFailed,
)
from .framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameTooLargeError, decode_body, encode_frame
from .messages import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    REPORT_KINDS,
    SUPPORTED_VERSIONS,
    DeliveryPush,
    ErrorReply,
    Hello,
    Reply,
    Request,
    SecurityReport,
    ServerMessage,
    bundle_id_from_wire,
    bundle_id_to_wire,
    decode_request,
    decode_server_message,
    encode_request,
    encode_server_message,
    format_bundle_id,
)

if TYPE_CHECKING:
    from .server import (
        MAX_UNIX_PATH,
        AgentNode,
        AppApiServer,
        AppApiStatistics,
        api_eid,
        plain_data,
        resolve_endpoint,
    )

_SERVER_NAMES = frozenset(
    {
        "MAX_UNIX_PATH",
        "AgentNode",
        "AppApiServer",
        "AppApiStatistics",
        "api_eid",
        "plain_data",
        "resolve_endpoint",
    }
)


def __getattr__(name: str) -> Any:
    # The server side imports the whole bundle agent; client programs (``ucp``) should not pay
    # for that at start-up, so it is imported on first use.
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_WINDOW",
    "MAX_UNIX_PATH",
    "MAX_WINDOW",
    "PROTOCOL_VERSION",
    "REPORT_KINDS",
    "SOCKET_ENV",
    "SUPPORTED_VERSIONS",
    "AgentNode",
    "AppApiClient",
    "AppApiClosedError",
    "AppApiError",
    "AppApiProtocolError",
    "AppApiServer",
    "AppApiStatistics",
    "AppApiUsageError",
    "ClientRegistration",
    "DeliveryPush",
    "ErrorCode",
    "ErrorReply",
    "FrameDecoder",
    "FrameTooLargeError",
    "Hello",
    "NodeInfo",
    "ReceivedBundle",
    "Reply",
    "Request",
    "RequestFailed",
    "SecurityReport",
    "ServerMessage",
    "bundle_id_from_wire",
    "bundle_id_to_wire",
    "decode_body",
    "decode_request",
    "decode_server_message",
    "encode_frame",
    "encode_request",
    "encode_server_message",
    "format_bundle_id",
    "plain_data",
    "api_eid",
    "resolve_endpoint",
]
