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
                ?source: text                                           -> bundle-id: map
    node-info                                   -> node-id, peers: [map], routes: [map],
                                                   statistics: map
    connect     host: text, port: uint          -> peer: text (its node ID)
    add-route   pattern: text, next-hop: text   -> {}

A bundle ID travels as ``{"source": text, "time": uint, "seq": uint, ?"offset": uint,
?"length": uint}`` (creation time in DTN milliseconds, sequence number, fragment offset and
payload length); :func:`format_bundle_id` gives its one-line text form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpv7 import BundleID, CreationTimestamp, DecodeError, parse_eid

from .errors import AppApiProtocolError, ErrorCode

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "PROTOCOL_VERSION",
    "REPORT_KINDS",
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


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """Register an endpoint; deliveries for it are pushed from now on."""

    request_id: int
    """The client's id of this request."""
    endpoint: str
    """A full EID of the node (``dtn://a/inbox``, ``ipn:5.3``) or a name the daemon puts under
    its node ID (``inbox`` → ``dtn://a/inbox``; a number → ``ipn:N.number``)."""
    window: int = DEFAULT_WINDOW
    """How many deliveries may be pushed before the client confirms some."""


@dataclass(frozen=True, slots=True)
class UnregisterRequest:
    """Close a registration (its unconfirmed deliveries stay in the store)."""

    request_id: int
    """The client's id of this request."""
    registration: int
    """The registration number ``register`` returned."""


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    """The client has dealt with a delivery: the bundle may leave the store."""

    request_id: int
    """The client's id of this request."""
    delivery: int
    """The delivery number from the :class:`DeliveryPush`."""


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Create a bundle and store it; the reply carries its ID once it is durably stored."""

    request_id: int
    """The client's id of this request."""
    destination: str
    """Destination EID."""
    payload: bytes
    """The application data unit."""
    lifetime_s: float | None = None
    """Lifetime in seconds; ``None``: the node's default."""
    custody: bool = False
    """Send with custody transfer (BIBE)."""
    report_to: str | None = None
    """Where status reports go; ``None``: the source."""
    reports: frozenset[str] = frozenset()
    """Status reports to request (:data:`REPORT_KINDS`)."""
    source: str | None = None
    """Source EID (one of the node's endpoints); ``None``: the node ID."""


@dataclass(frozen=True, slots=True)
class NodeInfoRequest:
    """Ask for the node ID, peers, routes and statistics."""

    request_id: int
    """The client's id of this request."""


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """Open a TCPCL session to ``host:port`` now."""

    request_id: int
    """The client's id of this request."""
    host: str
    """Host name or address."""
    port: int
    """TCP port."""


@dataclass(frozen=True, slots=True)
class AddRouteRequest:
    """Add a static route."""

    request_id: int
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

    node_id: str
    """The daemon's node ID."""
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    """Protocol versions it speaks."""
    software: str = "ucp-dtn"
    """Name and version of the daemon's software."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Successful answer to the request ``request_id``."""

    request_id: int
    """The id of the request answered."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The result (see the module docstring per request type)."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Failed request, or a message that could not be used at all."""

    request_id: int | None
    """The id of the request answered; ``None`` if the message had no usable id."""
    code: str
    """An :class:`~ucp_dtn.appapi.errors.ErrorCode` value."""
    message: str
    """One-line human-readable explanation."""


@dataclass(frozen=True, slots=True)
class DeliveryPush:
    """A bundle for a registered endpoint."""

    registration: int
    """The registration it is delivered to."""
    delivery: int
    """Number to confirm it with (unique on the connection)."""
    bundle_id: BundleID
    """The bundle's ID."""
    destination: str
    """Its destination EID (the registered endpoint)."""
    report_to: str
    """Its report-to EID."""
    lifetime_ms: int
    """Its lifetime in milliseconds."""
    flags: int
    """Its bundle processing control flags (RFC 9171 §4.2.3)."""
    admin_record: bool
    """Whether the payload is an administrative record (e.g. a status report, RFC 9171 §6.1)."""
    payload: bytes
    """The application data unit."""

    @property
    def source(self) -> str:
        """The bundle's source node ID."""
        return str(self.bundle_id.source)


ServerMessage = Hello | Reply | ErrorReply | DeliveryPush
"""Any message the daemon sends."""


# -- bundle IDs ---------------------------------------------------------------------------------


def bundle_id_to_wire(bundle_id: BundleID) -> dict[str, Any]:
    """The wire map of ``bundle_id``."""
    wire: dict[str, Any] = {
        "source": str(bundle_id.source),
        "time": bundle_id.creation.time_ms,
        "seq": bundle_id.creation.sequence,
    }
    if bundle_id.fragment_offset is not None:
        wire["offset"] = bundle_id.fragment_offset
        wire["length"] = bundle_id.fragment_length
    return wire


def bundle_id_from_wire(value: object, where: str = "bundle-id") -> BundleID:
    """Parse a wire bundle ID; :class:`AppApiProtocolError` if malformed."""
    if not isinstance(value, dict):
        raise AppApiProtocolError(f"{where} must be a map, got {_type_name(value)}")
    fields = _Fields(value, where)
    source = fields.text("source")
    try:
        source_eid = parse_eid(source)
        creation = CreationTimestamp(fields.uint("time"), fields.uint("seq"))
    except DecodeError as exc:
        raise AppApiProtocolError(f"{where}: {exc.message}") from None
    offset = fields.optional_uint("offset")
    length = fields.optional_uint("length")
    if (offset is None) != (length is None):
        raise AppApiProtocolError(f"{where}: offset and length go together")
    return BundleID(source_eid, creation, offset, length)


def format_bundle_id(bundle_id: BundleID) -> str:
    """One-line text form: ``SOURCE-TIME-SEQ`` (plus ``-OFFSET-LENGTH`` for a fragment), e.g.
    ``dtn://a/-848931123456-0`` (creation time in DTN milliseconds, as dtn7 prints it)."""
    text = f"{bundle_id.source}-{bundle_id.creation.time_ms}-{bundle_id.creation.sequence}"
    if bundle_id.fragment_offset is not None:
        text += f"-{bundle_id.fragment_offset}-{bundle_id.fragment_length}"
    return text


# -- field access -------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    names = {
        str: "text",
        bytes: "bytes",
        bool: "bool",
        int: "integer",
        float: "float",
        dict: "map",
        list: "array",
    }
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


class _Fields:
    """Typed access to the fields of one message map; errors name the message and field."""

    def __init__(self, message: Mapping[str, Any], what: str) -> None:
        self._message = message
        self._what = what

    def _get(self, key: str) -> object:
        if key not in self._message:
            raise AppApiProtocolError(f"{self._what}: field {key!r} is missing")
        return self._message[key]

    def _wrong(self, key: str, expected: str, value: object) -> AppApiProtocolError:
        return AppApiProtocolError(
            f"{self._what}: field {key!r} must be {expected}, got {_type_name(value)}"
        )

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "text", value)
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._message.get(key) is None else self.text(key)

    def uint(self, key: str) -> int:
        value = self._get(key)
        if type(value) is not int or value < 0:
            raise self._wrong(key, "an unsigned integer", value)
        return value

    def optional_uint(self, key: str) -> int | None:
        return None if self._message.get(key) is None else self.uint(key)

    def boolean(self, key: str, default: bool = False) -> bool:
        if self._message.get(key) is None:
            return default
        value = self._message[key]
        if not isinstance(value, bool):
            raise self._wrong(key, "a bool", value)
        return value

    def blob(self, key: str) -> bytes:
        value = self._get(key)
        if not isinstance(value, bytes):
            raise self._wrong(key, "bytes", value)
        return value

    def optional_seconds(self, key: str) -> float | None:
        if self._message.get(key) is None:
            return None
        value = self._message[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self._wrong(key, "a positive number of seconds", value)
        return float(value)

    def text_list(self, key: str) -> list[str]:
        value = self._message.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(key, "an array of text", value)
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self._wrong(key, "a map", value)
        return value


def _header(message: Mapping[str, Any]) -> str:
    """Check the version; return the type."""
    version = message.get("v")
    if type(version) is not int:
        raise AppApiProtocolError(
            f"message needs a protocol version 'v' (an integer), got {_type_name(version)}"
        )
    if version not in SUPPORTED_VERSIONS:
        raise AppApiProtocolError(
            f"protocol version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})",
            ErrorCode.UNSUPPORTED_VERSION,
        )
    kind = message.get("t")
    if not isinstance(kind, str):
        raise AppApiProtocolError(f"message needs a type 't' (text), got {_type_name(kind)}")
    return kind


def request_id_of(message: Mapping[str, Any]) -> int | None:
    """The request id of a message, if it has a usable one (for error replies)."""
    value = message.get("id")
    return value if type(value) is int and value >= 0 else None


# -- requests: encode / decode --------------------------------------------------------------


def encode_request(request: Request) -> dict[str, Any]:
    """The wire map of ``request``."""
    head: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request.request_id}
    match request:
        case RegisterRequest(endpoint=endpoint, window=window):
            return head | {"t": "register", "endpoint": endpoint, "window": window}
        case UnregisterRequest(registration=registration):
            return head | {"t": "unregister", "registration": registration}
        case ConfirmRequest(delivery=delivery):
            return head | {"t": "confirm", "delivery": delivery}
        case SendRequest():
            wire = head | {
                "t": "send",
                "destination": request.destination,
                "payload": request.payload,
                "custody": request.custody,
            }
            if request.lifetime_s is not None:
                wire["lifetime"] = request.lifetime_s
            if request.report_to is not None:
                wire["report-to"] = request.report_to
            if request.reports:
                wire["reports"] = sorted(request.reports)
            if request.source is not None:
                wire["source"] = request.source
            return wire
        case NodeInfoRequest():
            return head | {"t": "node-info"}
        case ConnectRequest(host=host, port=port):
            return head | {"t": "connect", "host": host, "port": port}
        case AddRouteRequest(pattern=pattern, next_hop=next_hop):
            return head | {"t": "add-route", "pattern": pattern, "next-hop": next_hop}
    raise TypeError(f"not a request: {request!r}")  # pragma: no cover


def decode_request(message: Mapping[str, Any]) -> Request:
    """Parse a request map; :class:`AppApiProtocolError` (with its error code) if it is not a
    valid request. Unknown fields are ignored (newer clients may add some)."""
    kind = _header(message)
    request_id = request_id_of(message)
    if request_id is None:
        raise AppApiProtocolError(
            f"{kind}: field 'id' must be an unsigned integer, got {_type_name(message.get('id'))}"
        )
    fields = _Fields(message, kind)
    if kind == "register":
        window = fields.optional_uint("window")
        if window is not None and not 1 <= window <= MAX_WINDOW:
            raise AppApiProtocolError(f"register: window must be within 1..{MAX_WINDOW}")
        return RegisterRequest(
            request_id, fields.text("endpoint"), DEFAULT_WINDOW if window is None else window
        )
    if kind == "unregister":
        return UnregisterRequest(request_id, fields.uint("registration"))
    if kind == "confirm":
        return ConfirmRequest(request_id, fields.uint("delivery"))
    if kind == "send":
        reports = fields.text_list("reports")
        unknown = sorted(set(reports) - set(REPORT_KINDS))
        if unknown:
            raise AppApiProtocolError(
                f"send: unknown status report kind {unknown[0]!r} "
                f"(known: {', '.join(REPORT_KINDS)})"
            )
        return SendRequest(
            request_id,
            destination=fields.text("destination"),
            payload=fields.blob("payload"),
            lifetime_s=fields.optional_seconds("lifetime"),
            custody=fields.boolean("custody"),
            report_to=fields.optional_text("report-to"),
            reports=frozenset(reports),
            source=fields.optional_text("source"),
        )
    if kind == "node-info":
        return NodeInfoRequest(request_id)
    if kind == "connect":
        port = fields.uint("port")
        if not 1 <= port <= 65535:
            raise AppApiProtocolError(f"connect: port {port} out of range 1..65535")
        return ConnectRequest(request_id, fields.text("host"), port)
    if kind == "add-route":
        return AddRouteRequest(request_id, fields.text("pattern"), fields.text("next-hop"))
    raise AppApiProtocolError(f"unknown request type {kind!r}", ErrorCode.UNKNOWN_TYPE)


# -- daemon messages: encode / decode -------------------------------------------------------


def encode_server_message(message: ServerMessage) -> dict[str, Any]:
    """The wire map of a daemon message."""
    head: dict[str, Any] = {"v": PROTOCOL_VERSION}
    match message:
        case Hello(node_id=node_id, versions=versions, software=software):
            return head | {
                "t": "hello",
                "node-id": node_id,
                "versions": list(versions),
                "software": software,
            }
        case Reply(request_id=request_id, fields=fields):
            return head | dict(fields) | {"t": "ok", "id": request_id}
        case ErrorReply(request_id=request_id, code=code, message=text):
            return head | {"t": "error", "id": request_id, "code": code, "message": text}
        case DeliveryPush():
            return head | {
                "t": "delivery",
                "registration": message.registration,
                "delivery": message.delivery,
                "bundle-id": bundle_id_to_wire(message.bundle_id),
                "destination": message.destination,
                "report-to": message.report_to,
                "lifetime-ms": message.lifetime_ms,
                "flags": message.flags,
                "admin-record": message.admin_record,
                "payload": message.payload,
            }
    raise TypeError(f"not a daemon message: {message!r}")  # pragma: no cover


def decode_server_message(message: Mapping[str, Any]) -> ServerMessage:
    """Parse a daemon message map; :class:`AppApiProtocolError` if malformed."""
    kind = _header(message)
    fields = _Fields(message, kind)
    if kind == "hello":
        versions = message.get("versions")
        if not isinstance(versions, list) or not all(type(v) is int for v in versions):
            raise AppApiProtocolError("hello: field 'versions' must be an array of integers")
        software = message.get("software")
        return Hello(
            fields.text("node-id"),
            tuple(versions),
            software if isinstance(software, str) else "unknown",
        )
    if kind == "ok":
        rest = {key: value for key, value in message.items() if key not in ("v", "t", "id")}
        return Reply(fields.uint("id"), rest)
    if kind == "error":
        return ErrorReply(fields.optional_uint("id"), fields.text("code"), fields.text("message"))
    if kind == "delivery":
        return DeliveryPush(
            registration=fields.uint("registration"),
            delivery=fields.uint("delivery"),
            bundle_id=bundle_id_from_wire(fields.mapping("bundle-id")),
            destination=fields.text("destination"),
            report_to=fields.text("report-to"),
            lifetime_ms=fields.uint("lifetime-ms"),
            flags=fields.uint("flags"),
            admin_record=fields.boolean("admin-record"),
            payload=fields.blob("payload"),
        )
    raise AppApiProtocolError(f"unknown message type {kind!r}", ErrorCode.UNKNOWN_TYPE)
