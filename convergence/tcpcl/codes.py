"""Wire constants and codes of TCPCLv4 (RFC 9174).

Every enum member cites the RFC section that defines it. Values read from the wire that no
member covers stay plain ``int`` (see :func:`coerce`): RFC 9174 §5.2.4 and §6.1 ask the
receiver to treat unknown reason codes as "Unknown", not to reject the message.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from ..quantities import DEFAULT_TCPCL_PORT

__all__ = [
    "DEFAULT_PORT",
    "MAGIC",
    "VERSION",
    "ContactFlags",
    "ExtensionFlags",
    "MessageType",
    "MsgRejectReason",
    "SegmentFlags",
    "SessTermFlags",
    "SessTermReason",
    "TransferExtensionType",
    "XferRefuseReason",
    "coerce",
]

#: RFC 9174 §4.2: "magic: A four-octet field that always contains the octet sequence
#: 0x64 0x74 0x6E 0x21, i.e., the text string "dtn!" in US-ASCII".
MAGIC = b"dtn!"

#: RFC 9174 §4.2: "Version: A one-octet field value containing the value 4".
VERSION = 4

#: TCPCL's IANA port (RFC 9174 §8.1), defined once in :mod:`convergence.quantities`.
DEFAULT_PORT = DEFAULT_TCPCL_PORT


class ContactFlags(enum.IntFlag):
    """Contact Header flags (RFC 9174 §4.2, Table 1). Reserved bits are kept, then ignored."""

    #: §4.2: "If bit is set, indicates that the sending peer has enabled TLS security."
    CAN_TLS = 0x01


class MessageType(enum.IntEnum):
    """Message Header type codes (RFC 9174 §4.5, Table 2; registry §9.5, Table 14)."""

    #: §5.2.2: one segment of bundle data.
    XFER_SEGMENT = 0x01
    #: §5.2.3: acknowledges reception of a data segment.
    XFER_ACK = 0x02
    #: §5.2.4: the transmission of the current bundle SHALL be stopped.
    XFER_REFUSE = 0x03
    #: §5.1.1: keeps the session active.
    KEEPALIVE = 0x04
    #: §6.1: one entity wishes to cleanly terminate the session.
    SESS_TERM = 0x05
    #: §5.1.2: a message rejection.
    MSG_REJECT = 0x06
    #: §4.6: the session parameter inputs from one of the entities.
    SESS_INIT = 0x07


class SegmentFlags(enum.IntFlag):
    """XFER_SEGMENT / XFER_ACK message flags (RFC 9174 §5.2.2, Table 5)."""

    #: §5.2.2: "indicates that this is the last segment of the transfer."
    END = 0x01
    #: §5.2.2: "indicates that this is the first segment of the transfer."
    START = 0x02


class SessTermFlags(enum.IntFlag):
    """SESS_TERM message flags (RFC 9174 §6.1, Table 8)."""

    #: §6.1: "indicates that this message is an acknowledgement of an earlier SESS_TERM".
    REPLY = 0x01


class ExtensionFlags(enum.IntFlag):
    """Session and transfer extension item flags (RFC 9174 §4.8 Table 3, §5.2.5 Table 7)."""

    #: §4.8 / §5.2.5: "indicates that the receiving peer must handle the extension item."
    CRITICAL = 0x01


class SessionExtensionType(enum.IntEnum):
    """Session extension item types. RFC 9174 §9.3 registers none; it reserves 0x8000 to 0xFFFF
    "for Private or Experimental Use"."""

    #: ucp-dtn (private use): "when a transfer of mine is cut short, I send only the part you did
    #: not acknowledge, as a bundle fragment; when a transfer of yours is, I keep the part I
    #: acknowledged as a fragment" (RFC 9171 §5.8 reactive fragmentation, cut at the TCPCL
    #: acknowledged length). Non-critical: a peer that does not know it ignores it (§4.8).
    REACTIVE_FRAGMENTATION = 0xFD01


class TransferExtensionType(enum.IntEnum):
    """Transfer extension item types (RFC 9174 §9.4, Table 13)."""

    #: §5.2.5.1: "The Transfer Length extension SHALL be assigned transfer extension type
    #: ID 0x0001."
    TRANSFER_LENGTH = 0x0001


class XferRefuseReason(enum.IntEnum):
    """XFER_REFUSE reason codes (RFC 9174 §5.2.4, Table 6; registry §9.6)."""

    #: "Reason for refusal is unknown or not specified."
    UNKNOWN = 0x00
    #: "The receiver already has the complete bundle."
    COMPLETED = 0x01
    #: "The receiver's resources are exhausted."
    NO_RESOURCES = 0x02
    #: "The receiver has encountered a problem that requires the bundle to be retransmitted
    #: in its entirety."
    RETRANSMIT = 0x03
    #: "Some issue with the bundle data or the transfer extension data was encountered."
    NOT_ACCEPTABLE = 0x04
    #: "A failure processing the Transfer Extension Items has occurred."
    EXTENSION_FAILURE = 0x05
    #: "The receiving entity is in the process of terminating the session."
    SESSION_TERMINATING = 0x06


class SessTermReason(enum.IntEnum):
    """SESS_TERM reason codes (RFC 9174 §6.1, Table 9; registry §9.7)."""

    #: "A termination reason is not available."
    UNKNOWN = 0x00
    #: "The session is being terminated due to idleness."
    IDLE_TIMEOUT = 0x01
    #: "The entity cannot conform to the specified TCPCL protocol version."
    VERSION_MISMATCH = 0x02
    #: "The entity is too busy to handle the current session."
    BUSY = 0x03
    #: "The entity cannot interpret or negotiate a Contact Header or SESS_INIT option."
    CONTACT_FAILURE = 0x04
    #: "The entity has run into some resource limit and cannot continue the session."
    RESOURCE_EXHAUSTION = 0x05


class MsgRejectReason(enum.IntEnum):
    """MSG_REJECT reason codes (RFC 9174 §5.1.2, Table 4; registry §9.8)."""

    #: "A message was received with a Message Type code unknown to the TCPCL entity."
    MESSAGE_TYPE_UNKNOWN = 0x01
    #: "A message was received but the TCPCL entity cannot comply with the message contents."
    MESSAGE_UNSUPPORTED = 0x02
    #: "A message was received while the session is in a state in which the message is not
    #: expected."
    MESSAGE_UNEXPECTED = 0x03


_E = TypeVar("_E", bound=enum.IntEnum)


def coerce(enum_cls: type[_E], value: int) -> _E | int:
    """Return ``enum_cls(value)``, or the plain ``int`` when no member has that value."""
    try:
        return enum_cls(value)
    except ValueError:
        return value
