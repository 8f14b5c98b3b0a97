"""Exceptions of the application-agent API.

Two families, as everywhere in ucp-dtn: the local caller used the API wrongly
(:class:`AppApiUsageError`), or the other side of the socket broke the protocol or refused a
request (:class:`AppApiProtocolError`, :class:`RequestFailed`). Messages are one line and safe to
show to a user.
"""

from __future__ import annotations

__all__ = [
    "AppApiClosedError",
    "AppApiError",
    "AppApiProtocolError",
    "AppApiUsageError",
    "ErrorCode",
    "RequestFailed",
]


class ErrorCode:
    """Error codes the daemon puts in ``error`` responses (text, so new ones need no new
    version of the protocol; a client treats an unknown code like ``internal``)."""

    BAD_REQUEST = "bad-request"
    """The request is malformed: not a CBOR map, a field missing or of the wrong type."""
    UNSUPPORTED_VERSION = "unsupported-version"
    """The message's protocol version is not one the daemon speaks."""
    UNKNOWN_TYPE = "unknown-type"
    """No request of that type exists."""
    FRAME_TOO_LARGE = "frame-too-large"
    """The length prefix announced more than the daemon accepts (the connection is closed)."""
    BAD_ENDPOINT = "bad-endpoint"
    """An endpoint ID is malformed or not one of this node's endpoints."""
    ENDPOINT_BUSY = "endpoint-busy"
    """Another application has the endpoint registered."""
    UNKNOWN_REGISTRATION = "unknown-registration"
    """No open registration of this connection has that number."""
    UNKNOWN_DELIVERY = "unknown-delivery"
    """No unconfirmed delivery of this connection has that number."""
    STORE_FULL = "store-full"
    """The bundle does not fit the node's store quota now; try again later."""
    CONNECT_FAILED = "connect-failed"
    """A TCPCL session to the given address could not be established."""
    TOO_MANY_CONNECTIONS = "too-many-connections"
    """The daemon serves as many connections as it allows; the connection is closed."""
    NODE_STOPPING = "node-stopping"
    """The daemon is shutting down."""
    INTERNAL = "internal"
    """The daemon failed to handle the request (its log says why)."""


class AppApiError(Exception):
    """Base class of every exception of :mod:`ucp_dtn.appapi`."""


class AppApiUsageError(AppApiError, ValueError):
    """The local caller used the API wrongly (a bad argument, a closed client)."""


class AppApiClosedError(AppApiError):
    """The connection to the daemon is closed (or was never opened)."""


class AppApiProtocolError(AppApiError):
    """The other side sent something the protocol does not allow (a malformed frame or
    message, or an unsupported version)."""

    def __init__(self, message: str, code: str = ErrorCode.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code
        """The :class:`ErrorCode` to report back, when the daemon detects the problem."""


class RequestFailed(AppApiError):
    """The daemon refused or could not carry out a request; ``code`` is an :class:`ErrorCode`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        """Machine-readable reason (an :class:`ErrorCode` value, or a newer one)."""
        self.message = message
        """Human-readable one-line explanation."""
