"""Messages of the application-agent API (protocol version 1).

Every frame body (see :mod:`ucp_dtn.appapi.framing`) is a CBOR map with at least ``"v"`` (the
protocol version, ``1``) and ``"t"`` (the message type). Theory of operation:

* On connect the daemon sends :class:`Hello` (node ID, the versions it speaks).
* The client sends requests, each with an ``"id"`` of its choice (an unsigned integer); the
  daemon answers every request exactly once, with a :class:`Reply` (``"t": "ok"``) or an
  :class:`ErrorReply` (``"t": "error"``) carrying the same ``"id"``. Replies may come in another
  order than the requests (a ``send`` waits for the store, a ``node-info`` does not).
* After ``register``, the daemon pushes :class:`DeliveryPush` messages (``"t": "delivery"``),
  at most ``window`` of them unconfirmed at a time; the client confirms each with ``confirm``
  once it has dealt with the payload, and only then does the bundle leave the store. A delivery
  that is not confirmed when the connection closes is delivered again to the next registration.
* A message the daemon cannot use gets an :class:`ErrorReply` (with ``"id"`` null when it had
  no usable id) and the connection stays open; only a frame above the size limit closes it.

Request types and their fields (``?`` marks optional fields)::

    register    endpoint: text (EID, or a name under the node ID), ?window: uint (default 16)
                -> registration: uint, endpoint: text
    unregister  registration: uint                                      -> {}
    confirm     delivery: uint                                          -> {}
    send        destination: text, payload: bytes, ?lifetime: seconds, ?custody: bool,
                ?report-to: text, ?reports: [text] (received/forwarded/delivered/deleted),
                ?source: text, ?integrity: text, ?confidentiality: text  -> bundle-id: map
    node-info                                   -> node-id, peers: [map], routes: [map],
                                                   statistics: map
    connect     host: text, port: uint          -> peer: text (its node ID)
    add-route   pattern: text, next-hop: text   -> {}

``integrity`` and ``confidentiality`` name keys of the daemon's security policy: the daemon
adds a BIB and/or a BCB over the payload with them (RFC 9172; docs/security.md). A delivery
says what the daemon verified and decrypted before handing it over in ``?security``: one map
per operation, ``{"service": "integrity"|"confidentiality", "target": uint, "source": text,
"context": uint, "outcome": "verified"|"decrypted", ?"key": text, ?"signer": text}``.

A bundle ID travels as ``{"source": text, "time": uint, "seq": uint, ?"offset": uint,
?"length": uint}`` (creation time in DTN milliseconds, sequence number, fragment offset and
payload length); :func:`format_bundle_id` gives its one-line text form.

Each message is a frozen dataclass whose fields declare its wire form (type hints, and
``Wire(...)`` where they do not say it all; :mod:`ucp_dtn.wire_schema` has the rules, and the
UCP messages use the same). To add a request, write its dataclass with a ``TYPE`` and add it to
:data:`Request` (a daemon message: to :data:`ServerMessage`); then pin its bytes in
``tests/ucp_dtn/test_appapi_pinned.py``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from bpv7 import BPv7Error, BundleID, CreationTimestamp, parse_eid
from ucp_dtn.wire_schema import Wire, WireCodec, WireError, from_wire, to_wire, type_name

from .errors import AppApiProtocolError, ErrorCode

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "PROTOCOL_VERSION",
    "REPORT_KINDS",
    "SECURITY_SERVICES",
    "SUPPORTED_VERSIONS",
    "AddRouteRequest",
    "ConfirmRequest",
    "ConnectRequest",
    "DeliveryPush",
    "ErrorReply",
    "Hello",
    "NodeInfoRequest",
    "RegisterRequest",
    "Reply",
    "Request",
    "SecurityReport",
    "SendRequest",
    "ServerMessage",
    "UnregisterRequest",
    "bundle_id_from_wire",
    "bundle_id_to_wire",
    "decode_request",
    "decode_server_message",
    "encode_request",
    "encode_server_message",
    "format_bundle_id",
    "request_id_of",
]

PROTOCOL_VERSION = 1
"""The version this module speaks."""
SUPPORTED_VERSIONS = (1,)
"""Every version the daemon accepts."""
DEFAULT_WINDOW = 16
"""Unconfirmed deliveries per registration when ``register`` names no window."""
MAX_WINDOW = 1024
"""Largest window a registration may ask for."""
REPORT_KINDS = ("received", "forwarded", "delivered", "deleted")
"""Status report kinds a ``send`` may request (RFC 9171 §4.2.3 bundle processing flags)."""


# -- wire forms the type hints do not give -----------------------------------------------------


def _positive_seconds(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise WireError(f"must be a positive number of seconds, got {type_name(value)}")
    return float(value)


_SECONDS = WireCodec("a positive number of seconds", decode=_positive_seconds)
_SOFTWARE = WireCodec("text", decode=lambda value: value if type(value) is str else "unknown")
"""The daemon's software name is for people: anything but text reads as ``"unknown"``."""


@dataclass(frozen=True, slots=True)
class _WireBundleID:
    """A bundle ID as it travels (see the module docstring)."""

    source: str
    time: int
    seq: int
    offset: int | None = None
    length: int | None = None


def bundle_id_to_wire(bundle_id: BundleID) -> dict[str, Any]:
    """The wire map of ``bundle_id``."""
    wire: dict[str, Any] = to_wire(
        _WireBundleID(
            str(bundle_id.source),
            bundle_id.creation.time_ms,
            bundle_id.creation.sequence,
            bundle_id.fragment_offset,
            bundle_id.fragment_length,
        )
    )
    return wire


def _bundle_id(value: object) -> BundleID:
    wire = from_wire(_WireBundleID, value)
    try:
        source = parse_eid(wire.source)
    except BPv7Error as exc:
        raise WireError(f"must be an EID: {exc.message}", "source") from None
    if (wire.offset is None) != (wire.length is None):
        raise WireError("must have both offset and length, or neither")
    return BundleID(source, CreationTimestamp(wire.time, wire.seq), wire.offset, wire.length)


def bundle_id_from_wire(value: object, where: str = "bundle-id") -> BundleID:
    """Parse a wire bundle ID; :class:`AppApiProtocolError` if malformed."""
    try:
        return _bundle_id(value)
    except WireError as exc:
        raise AppApiProtocolError(f"{where}: {exc}") from None


_BUNDLE_ID = WireCodec("a bundle ID map", decode=_bundle_id, encode=bundle_id_to_wire)


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """Register an endpoint; deliveries for it are pushed from now on."""

    TYPE: ClassVar[str] = "register"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    endpoint: str
    """A full EID of the node (``dtn://a/inbox``, ``ipn:5.3``) or a name the daemon puts under
    its node ID (``inbox`` → ``dtn://a/inbox``; a number → ``ipn:N.number``)."""
    window: Annotated[int, Wire(always=True, min=1, max=MAX_WINDOW)] = DEFAULT_WINDOW
    """How many deliveries may be pushed before the client confirms some."""


@dataclass(frozen=True, slots=True)
class UnregisterRequest:
    """Close a registration (its unconfirmed deliveries stay in the store)."""

    TYPE: ClassVar[str] = "unregister"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    registration: int
    """The registration number ``register`` returned."""


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    """The client has dealt with a delivery: the bundle may leave the store."""

    TYPE: ClassVar[str] = "confirm"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    delivery: int
    """The delivery number from the :class:`DeliveryPush`."""


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Create a bundle and store it; the reply carries its ID once it is durably stored."""

    TYPE: ClassVar[str] = "send"
    _WIRE_ORDER: ClassVar[tuple[str, ...]] = ("request_id", "destination", "payload", "custody")
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    destination: str
    """Destination EID."""
    payload: bytes
    """The application data unit."""
    lifetime_s: Annotated[float | None, Wire(key="lifetime", codec=_SECONDS)] = None
    """Lifetime in seconds; ``None``: the node's default."""
    custody: Annotated[bool, Wire(always=True)] = False
    """Send with custody transfer (BIBE)."""
    report_to: str | None = None
    """Where status reports go; ``None``: the source."""
    reports: Annotated[frozenset[str], Wire(choices=REPORT_KINDS)] = frozenset()
    """Status reports to request (:data:`REPORT_KINDS`)."""
    source: str | None = None
    """Source EID (one of the node's endpoints); ``None``: the node ID."""
    integrity: str | None = None
    """Name of a key of the daemon's security policy: add a BIB over the payload with it."""
    confidentiality: str | None = None
    """Name of a key of the daemon's security policy: encrypt the payload with it (a BCB)."""


@dataclass(frozen=True, slots=True)
class NodeInfoRequest:
    """Ask for the node ID, peers, routes and statistics."""

    TYPE: ClassVar[str] = "node-info"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """Open a TCPCL session to ``host:port`` now."""

    TYPE: ClassVar[str] = "connect"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    host: str
    """Host name or address."""
    port: Annotated[int, Wire(min=1, max=65535)]
    """TCP port."""


@dataclass(frozen=True, slots=True)
class AddRouteRequest:
    """Add a static route."""

    TYPE: ClassVar[str] = "add-route"
    request_id: Annotated[int, Wire(key="id")]
    """The client's id of this request."""
    pattern: str
    """EID pattern (``dtn://c/*``, ``ipn:5.*``, ``*``...)."""
    next_hop: str
    """Node ID of the next hop."""


Request = (
    RegisterRequest
    | UnregisterRequest
    | ConfirmRequest
    | SendRequest
    | NodeInfoRequest
    | ConnectRequest
    | AddRouteRequest
)
"""Any request a client may send."""

# -- daemon to client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of the daemon on every connection."""

    TYPE: ClassVar[str] = "hello"
    node_id: str
    """The daemon's node ID."""
    versions: Annotated[tuple[int, ...], Wire(required=True, min=-(2**63))] = SUPPORTED_VERSIONS
    """Protocol versions it speaks."""
    software: Annotated[str, Wire(always=True, absent="unknown", codec=_SOFTWARE)] = "ucp-dtn"
    """Name and version of the daemon's software (``"unknown"`` when a daemon does not say)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Successful answer to the request ``request_id``. On the wire its result's fields sit
    beside ``"v"``, ``"t"`` and ``"id"`` in one map, so it is encoded by hand."""

    TYPE: ClassVar[str] = "ok"
    request_id: int
    """The id of the request answered."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The result (see the module docstring per request type)."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Failed request, or a message that could not be used at all."""

    TYPE: ClassVar[str] = "error"
    request_id: Annotated[int | None, Wire(key="id")]
    """The id of the request answered; ``None`` if the message had no usable id."""
    code: str
    """An :class:`~ucp_dtn.appapi.errors.ErrorCode` value."""
    message: str
    """One-line human-readable explanation."""


SECURITY_SERVICES = ("integrity", "confidentiality")
"""The BPSec services a delivery's security report names (RFC 9172 §3: BIB, BCB)."""


@dataclass(frozen=True, slots=True)
class SecurityReport:
    """One security operation the daemon verified or decrypted before a delivery (it was the
    operation's security acceptor, RFC 9172 §5.1)."""

    service: Annotated[str, Wire(choices=SECURITY_SERVICES)]
    """``integrity`` (a BIB) or ``confidentiality`` (a BCB)."""
    target: int
    """The block it protected (1: the payload)."""
    source: str
    """The security source: the node that added the operation."""
    context: int
    """The security context id (1 BIB-HMAC-SHA2, 2 BCB-AES-GCM, 3 COSE)."""
    outcome: str
    """``verified`` or ``decrypted``."""
    key: str | None = None
    """The daemon's name of the key that checked it."""
    signer: str | None = None
    """Who signed, when a certificate chain to a trusted CA said so (its bundle EID)."""

    def describe(self) -> str:
        """One line: ``integrity of the payload verified (key k, source dtn://a/, context 1)``."""
        what = "the payload" if self.target == 1 else f"block {self.target}"
        details = [f"source {self.source}", f"context {self.context}"]
        if self.key is not None:
            details.insert(0, f"key {self.key}")
        if self.signer is not None:
            details.insert(0, f"signed by {self.signer}")
        return f"{self.service} of {what} {self.outcome} ({', '.join(details)})"


@dataclass(frozen=True, slots=True)
class DeliveryPush:
    """A bundle for a registered endpoint."""

    TYPE: ClassVar[str] = "delivery"
    registration: int
    """The registration it is delivered to."""
    delivery: int
    """Number to confirm it with (unique on the connection)."""
    bundle_id: Annotated[BundleID, Wire(codec=_BUNDLE_ID)]
    """The bundle's ID."""
    destination: str
    """Its destination EID (the registered endpoint)."""
    report_to: str
    """Its report-to EID."""
    lifetime_ms: int
    """How long after its creation the bundle lives, in milliseconds (RFC 9171 §4.2.2)."""
    flags: int
    """Its bundle processing control flags (RFC 9171 §4.2.3)."""
    admin_record: Annotated[bool, Wire(absent=False)]
    """Whether the payload is an administrative record (e.g. a status report, RFC 9171 §6.1)."""
    payload: bytes
    """The application data unit."""
    security: tuple[SecurityReport, ...] = ()
    """The security operations the daemon verified or decrypted before delivering it."""

    @property
    def source(self) -> str:
        """The bundle's source node ID."""
        return str(self.bundle_id.source)


ServerMessage = Hello | Reply | ErrorReply | DeliveryPush
"""Any message the daemon sends."""


# -- bundle IDs ---------------------------------------------------------------------------------


def format_bundle_id(bundle_id: BundleID) -> str:
    """One-line text form: ``SOURCE-TIME-SEQ`` (plus ``-OFFSET-LENGTH`` for a fragment), e.g.
    ``dtn://a/-848931123456-0`` (creation time in DTN milliseconds, as dtn7 prints it)."""
    text = f"{bundle_id.source}-{bundle_id.creation.time_ms}-{bundle_id.creation.sequence}"
    if bundle_id.fragment_offset is not None:
        text += f"-{bundle_id.fragment_offset}-{bundle_id.fragment_length}"
    return text


# -- decoding -------------------------------------------------------------------------------------


def _header(message: Mapping[str, Any]) -> str:
    """Check the version; return the type."""
    version = message.get("v")
    if type(version) is not int:
        raise AppApiProtocolError(
            f"message needs a protocol version 'v' (an integer), got {type_name(version)}"
        )
    if version not in SUPPORTED_VERSIONS:
        raise AppApiProtocolError(
            f"protocol version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})",
            ErrorCode.UNSUPPORTED_VERSION,
        )
    kind = message.get("t")
    if not isinstance(kind, str):
        raise AppApiProtocolError(f"message needs a type 't' (text), got {type_name(kind)}")
    return kind


def request_id_of(message: Mapping[str, Any]) -> int | None:
    """The request id of a message, if it has a usable one (for error replies)."""
    value = message.get("id")
    return value if type(value) is int and value >= 0 else None


_REQUEST_TYPES: Mapping[str, type[Request]] = {cls.TYPE: cls for cls in typing.get_args(Request)}
_SERVER_TYPES: Mapping[str, type[ServerMessage]] = {
    cls.TYPE: cls for cls in typing.get_args(ServerMessage)
}


def _decode(cls: type[Any], message: Mapping[str, Any], kind: str) -> Any:
    try:
        return from_wire(cls, message)
    except WireError as exc:
        raise AppApiProtocolError(f"{kind}: {exc}") from None


@dataclass(frozen=True, slots=True)
class _ReplyHead:
    """The fixed part of an ``ok`` reply; the rest of its map is the result."""

    request_id: Annotated[int, Wire(key="id")]


def encode_request(request: Request) -> dict[str, Any]:
    """The wire map of ``request``: ``"v"``, ``"id"``, ``"t"``, then its fields."""
    head = {"v": PROTOCOL_VERSION, "id": request.request_id, "t": request.TYPE}
    wire: dict[str, Any] = to_wire(request, head)
    return wire


def decode_request(message: Mapping[str, Any]) -> Request:
    """Parse a request map; :class:`AppApiProtocolError` (with its error code) if it is not a
    valid request. Unknown fields are ignored (newer clients may add some)."""
    kind = _header(message)
    if request_id_of(message) is None:
        raise AppApiProtocolError(
            f"{kind}: field 'id' must be an unsigned integer, got {type_name(message.get('id'))}"
        )
    cls = _REQUEST_TYPES.get(kind)
    if cls is None:
        raise AppApiProtocolError(f"unknown request type {kind!r}", ErrorCode.UNKNOWN_TYPE)
    request: Request = _decode(cls, message, kind)
    return request


def encode_server_message(message: ServerMessage) -> dict[str, Any]:
    """The wire map of a daemon message."""
    if isinstance(message, Reply):
        return (
            {"v": PROTOCOL_VERSION}
            | dict(message.fields)
            | {"t": Reply.TYPE, "id": message.request_id}
        )
    wire: dict[str, Any] = to_wire(message, {"v": PROTOCOL_VERSION, "t": message.TYPE})
    return wire


def decode_server_message(message: Mapping[str, Any]) -> ServerMessage:
    """Parse a daemon message map; :class:`AppApiProtocolError` if malformed."""
    kind = _header(message)
    cls = _SERVER_TYPES.get(kind)
    if cls is None:
        raise AppApiProtocolError(f"unknown message type {kind!r}", ErrorCode.UNKNOWN_TYPE)
    if cls is Reply:
        head: _ReplyHead = _decode(_ReplyHead, message, kind)
        result = {key: value for key, value in message.items() if key not in ("v", "t", "id")}
        return Reply(head.request_id, result)
    decoded: ServerMessage = _decode(cls, message, kind)
    return decoded
