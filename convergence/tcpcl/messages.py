"""TCPCLv4 contact header and messages as values, and their encoding (RFC 9174 §4.2 to §6.1).

Each message kind is a small frozen dataclass; :func:`encode_message` turns any of them into
bytes. Decoding lives in :mod:`convergence.tcpcl.reader` (it is incremental).

Constructors validate field ranges and raise :class:`LocalProtocolError` for values the wire
format cannot carry, so a message that exists can always be encoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from .codes import (
    MAGIC,
    VERSION,
    ContactFlags,
    ExtensionFlags,
    MessageType,
    MsgRejectReason,
    SegmentFlags,
    SessTermFlags,
    SessTermReason,
    TransferExtensionType,
    XferRefuseReason,
)
from .errors import DecodeError, LocalProtocolError

__all__ = [
    "ContactHeader",
    "ExtensionItem",
    "Keepalive",
    "Message",
    "MsgReject",
    "SessInit",
    "SessTerm",
    "XferAck",
    "XferRefuse",
    "XferSegment",
    "encode_contact_header",
    "encode_extension_items",
    "encode_message",
    "encode_segment_header",
    "find_transfer_length",
]

_U8 = 0xFF
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF

_CONTACT = struct.Struct(">4sBB")
_ITEM_HEAD = struct.Struct(">BHH")
_SESS_INIT_HEAD = struct.Struct(">BHQQH")
_U32_S = struct.Struct(">I")
_U64_S = struct.Struct(">Q")
_SEG_HEAD = struct.Struct(">BBQ")
_XFER_ACK = struct.Struct(">BBQQ")
_XFER_REFUSE = struct.Struct(">BBQ")
_THREE_OCTETS = struct.Struct(">BBB")
_KEEPALIVE = bytes([MessageType.KEEPALIVE])
_NO_CONTACT_FLAGS = ContactFlags(0)
_NO_ITEM_FLAGS = ExtensionFlags(0)
_NO_TERM_FLAGS = SessTermFlags(0)


def _check_range(name: str, value: int, limit: int) -> None:
    if not 0 <= value <= limit:
        raise LocalProtocolError(f"{name} {value} is outside 0..{limit}")


@dataclass(frozen=True, slots=True)
class ContactHeader:
    """The contact header each entity sends first on a new connection (RFC 9174 §4.2)."""

    version: int = VERSION
    """TCPCL version; 4 for this protocol (a version-3 peer sends 3)."""
    flags: ContactFlags = _NO_CONTACT_FLAGS
    """Contact header flags; reserved bits are kept as received and otherwise ignored."""

    def __post_init__(self) -> None:
        _check_range("version", self.version, _U8)
        _check_range("flags", int(self.flags), _U8)

    @property
    def can_tls(self) -> bool:
        """Whether the sender set CAN_TLS (it is willing to start TLS)."""
        return ContactFlags.CAN_TLS in self.flags


@dataclass(frozen=True, slots=True)
class ExtensionItem:
    """One session extension item (RFC 9174 §4.8) or transfer extension item (§5.2.5).

    Both use the same type-length-value container.
    """

    item_type: int
    """Item Type (16 bits); see :class:`~convergence.tcpcl.codes.TransferExtensionType`."""
    value: bytes = b""
    """Item Value; at most 65535 octets."""
    flags: ExtensionFlags = _NO_ITEM_FLAGS
    """Item Flags; CRITICAL means the receiver must understand the item type."""

    def __post_init__(self) -> None:
        _check_range("item type", self.item_type, _U16)
        _check_range("item flags", int(self.flags), _U8)
        if len(self.value) > _U16:
            raise LocalProtocolError(f"extension item value of {len(self.value)} octets > 65535")

    @property
    def critical(self) -> bool:
        """Whether the CRITICAL flag is set."""
        return ExtensionFlags.CRITICAL in self.flags

    @classmethod
    def transfer_length(cls, total_length: int, *, critical: bool = False) -> ExtensionItem:
        """A Transfer Length extension item (RFC 9174 §5.2.5.1) announcing ``total_length``."""
        _check_range("total length", total_length, _U64)
        flags = ExtensionFlags.CRITICAL if critical else ExtensionFlags(0)
        return cls(TransferExtensionType.TRANSFER_LENGTH, _U64_S.pack(total_length), flags)


def find_transfer_length(items: Iterable[ExtensionItem]) -> int | None:
    """The Total Length of the Transfer Length item in ``items``, or ``None`` if absent.

    :raises DecodeError: on a malformed or repeated Transfer Length item.
    """
    found: int | None = None
    for item in items:
        if item.item_type != TransferExtensionType.TRANSFER_LENGTH:
            continue
        # RFC 9174 §5.2.5.1: "Multiple Transfer Length extension items SHALL NOT occur within
        # the same transfer."
        if found is not None:
            raise DecodeError("more than one Transfer Length extension item")
        # RFC 9174 §5.2.5.1, Figure 26: the value is a single "Total Length (U64)".
        if len(item.value) != _U64_S.size:
            raise DecodeError(f"Transfer Length item of {len(item.value)} octets, expected 8")
        (found,) = _U64_S.unpack(item.value)
    return found


@dataclass(frozen=True, slots=True)
class SessInit:
    """SESS_INIT: one entity's session parameters (RFC 9174 §4.6)."""

    keepalive_interval: int
    """Keepalive Interval in seconds (16 bits); 0 asks to disable keepalives."""
    segment_mru: int
    """Largest single-segment data payload the sender will receive (64 bits)."""
    transfer_mru: int
    """Largest total bundle size the sender will receive (64 bits)."""
    node_id: str = ""
    """The sender's Node ID URI; empty means "not disclosed" (§4.6)."""
    extensions: tuple[ExtensionItem, ...] = ()
    """Session extension items, in order (§4.8)."""

    def __post_init__(self) -> None:
        _check_range("keepalive interval", self.keepalive_interval, _U16)
        _check_range("segment MRU", self.segment_mru, _U64)
        _check_range("transfer MRU", self.transfer_mru, _U64)
        if len(self.node_id.encode("utf-8")) > _U16:
            raise LocalProtocolError("node ID longer than 65535 octets")


@dataclass(frozen=True, slots=True)
class XferSegment:
    """XFER_SEGMENT: one segment of a bundle transfer (RFC 9174 §5.2.2)."""

    flags: SegmentFlags
    """START on the first segment, END on the last (both for a single-segment transfer)."""
    transfer_id: int
    """Transfer ID (64 bits) shared by every message of the transfer."""
    data: bytes | memoryview = field(default=b"", repr=False)
    """The segment's data contents (a ``memoryview`` when decoded without copying)."""
    extensions: tuple[ExtensionItem, ...] = ()
    """Transfer extension items; present only on the START segment (§5.2.2)."""

    def __post_init__(self) -> None:
        _check_range("segment flags", int(self.flags), _U8)
        _check_range("transfer ID", self.transfer_id, _U64)
        # RFC 9174 §5.2.2: "The Transfer Extension Length and Transfer Extension Item fields
        # SHALL only be present when the 'START' flag is set to 1 on the message."
        if self.extensions and SegmentFlags.START not in self.flags:
            raise LocalProtocolError("transfer extension items require the START flag")

    @property
    def start(self) -> bool:
        """Whether this is the first segment of its transfer."""
        return SegmentFlags.START in self.flags

    @property
    def end(self) -> bool:
        """Whether this is the last segment of its transfer."""
        return SegmentFlags.END in self.flags


@dataclass(frozen=True, slots=True)
class XferAck:
    """XFER_ACK: cumulative acknowledgement of a transfer's segments (RFC 9174 §5.2.3)."""

    flags: SegmentFlags
    """The flags of the XFER_SEGMENT being acknowledged, echoed (§5.2.3)."""
    transfer_id: int
    """Transfer ID of the acknowledged transfer."""
    acknowledged_length: int
    """Sum of the data lengths of all segments received so far in this transfer."""

    def __post_init__(self) -> None:
        _check_range("ack flags", int(self.flags), _U8)
        _check_range("transfer ID", self.transfer_id, _U64)
        _check_range("acknowledged length", self.acknowledged_length, _U64)


@dataclass(frozen=True, slots=True)
class XferRefuse:
    """XFER_REFUSE: the receiver refuses (the rest of) a transfer (RFC 9174 §5.2.4)."""

    reason: XferRefuseReason | int
    """Refusal reason; unknown codes stay plain ``int``."""
    transfer_id: int
    """Transfer ID of the refused transfer."""

    def __post_init__(self) -> None:
        _check_range("refuse reason", int(self.reason), _U8)
        _check_range("transfer ID", self.transfer_id, _U64)


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE: no content; sent when a session would otherwise be silent (§5.1.1)."""


@dataclass(frozen=True, slots=True)
class SessTerm:
    """SESS_TERM: begins or acknowledges the end of a session (RFC 9174 §6.1)."""

    reason: SessTermReason | int
    """Termination reason; unknown codes stay plain ``int``."""
    flags: SessTermFlags = _NO_TERM_FLAGS
    """REPLY when acknowledging the peer's SESS_TERM."""

    def __post_init__(self) -> None:
        _check_range("termination reason", int(self.reason), _U8)
        _check_range("termination flags", int(self.flags), _U8)

    @property
    def reply(self) -> bool:
        """Whether this SESS_TERM acknowledges an earlier one."""
        return SessTermFlags.REPLY in self.flags


@dataclass(frozen=True, slots=True)
class MsgReject:
    """MSG_REJECT: the sender could not handle a message (RFC 9174 §5.1.2)."""

    reason: MsgRejectReason | int
    """Rejection reason; unknown codes stay plain ``int``."""
    message_type: int
    """The message header octet of the rejected message."""

    def __post_init__(self) -> None:
        _check_range("reject reason", int(self.reason), _U8)
        _check_range("rejected message type", self.message_type, _U8)


#: Any TCPCLv4 message that follows the contact header.
Message = SessInit | XferSegment | XferAck | XferRefuse | Keepalive | SessTerm | MsgReject


def encode_contact_header(header: ContactHeader) -> bytes:
    """The six octets of a contact header (RFC 9174 §4.2, Figure 16)."""
    return _CONTACT.pack(MAGIC, header.version, int(header.flags))


def encode_extension_items(items: Iterable[ExtensionItem]) -> bytes:
    """The concatenated TLV encoding of extension items (RFC 9174 Figures 20 and 25)."""
    parts: list[bytes] = []
    for item in items:
        parts.append(_ITEM_HEAD.pack(int(item.flags), item.item_type, len(item.value)))
        parts.append(item.value)
    return b"".join(parts)


def encode_segment_header(
    flags: SegmentFlags,
    transfer_id: int,
    data_length: int,
    extensions: Iterable[ExtensionItem] = (),
) -> bytes:
    """Everything of an XFER_SEGMENT up to (not including) its data (RFC 9174 Figure 22).

    Lets a sender write a large payload from its own buffer without copying it.
    """
    head = _SEG_HEAD.pack(MessageType.XFER_SEGMENT, int(flags), transfer_id)
    length = _U64_S.pack(data_length)
    if SegmentFlags.START not in flags:
        return head + length
    ext = encode_extension_items(extensions)
    if len(ext) > _U32:
        raise LocalProtocolError("transfer extension items longer than 2**32-1 octets")
    return b"".join((head, _U32_S.pack(len(ext)), ext, length))


def encode_message(message: Message) -> bytes:
    """The wire encoding of one message (RFC 9174 §4.5 to §6.1)."""
    if isinstance(message, XferSegment):
        head = encode_segment_header(
            message.flags, message.transfer_id, len(message.data), message.extensions
        )
        return head + bytes(message.data)
    if isinstance(message, XferAck):
        return _XFER_ACK.pack(
            MessageType.XFER_ACK,
            int(message.flags),
            message.transfer_id,
            message.acknowledged_length,
        )
    if isinstance(message, XferRefuse):
        return _XFER_REFUSE.pack(MessageType.XFER_REFUSE, int(message.reason), message.transfer_id)
    if isinstance(message, Keepalive):
        return _KEEPALIVE
    if isinstance(message, SessTerm):
        return _THREE_OCTETS.pack(MessageType.SESS_TERM, int(message.flags), int(message.reason))
    if isinstance(message, MsgReject):
        return _THREE_OCTETS.pack(MessageType.MSG_REJECT, int(message.reason), message.message_type)
    if isinstance(message, SessInit):
        node = message.node_id.encode("utf-8")
        ext = encode_extension_items(message.extensions)
        if len(ext) > _U32:
            raise LocalProtocolError("session extension items longer than 2**32-1 octets")
        head = _SESS_INIT_HEAD.pack(
            MessageType.SESS_INIT,
            message.keepalive_interval,
            message.segment_mru,
            message.transfer_mru,
            len(node),
        )
        return b"".join((head, node, _U32_S.pack(len(ext)), ext))
    raise LocalProtocolError(f"not a TCPCLv4 message: {message!r}")
