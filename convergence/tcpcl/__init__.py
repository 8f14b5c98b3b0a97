"""Sans-IO TCP convergence layer version 4 (RFC 9174).

:class:`Session` is the protocol state machine: bytes and time in, events and bytes out; no
sockets, tasks or clock reads. :class:`MessageReader` and :func:`encode_message` are the
codec underneath it, usable on their own (``python -m convergence decode`` uses them).
"""

from .codes import (
    DEFAULT_PORT,
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
from .config import SessionConfig, TlsPolicy
from .errors import DecodeError, LocalProtocolError, RemoteProtocolError, TcpclError
from .events import (
    Event,
    IncomingTransfer,
    IncomingTransferAborted,
    MessageRejected,
    SegmentReceived,
    SessionClosed,
    SessionEstablished,
    SessionTerminating,
    StartTls,
    TransferCompleted,
    TransferProgress,
    TransferReceived,
    TransferRefused,
)
from .messages import (
    ContactHeader,
    ExtensionItem,
    Keepalive,
    Message,
    MsgReject,
    SessInit,
    SessTerm,
    XferAck,
    XferRefuse,
    XferSegment,
    encode_contact_header,
    encode_message,
    encode_segment_header,
    find_transfer_length,
)
from .negotiation import SessionParameters
from .reader import MessageReader
from .session import Session, SessionStatistics
from .state import SessionState

__all__ = [
    # codes
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
    # errors
    "DecodeError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TcpclError",
    # messages and codec
    "ContactHeader",
    "ExtensionItem",
    "Keepalive",
    "Message",
    "MessageReader",
    "MsgReject",
    "SessInit",
    "SessTerm",
    "XferAck",
    "XferRefuse",
    "XferSegment",
    "encode_contact_header",
    "encode_message",
    "encode_segment_header",
    "find_transfer_length",
    # session
    "Session",
    "SessionConfig",
    "SessionParameters",
    "SessionState",
    "SessionStatistics",
    "TlsPolicy",
    # events
    "Event",
    "IncomingTransfer",
    "IncomingTransferAborted",
    "MessageRejected",
    "SegmentReceived",
    "SessionClosed",
    "SessionEstablished",
    "SessionTerminating",
    "StartTls",
    "TransferCompleted",
    "TransferProgress",
    "TransferReceived",
    "TransferRefused",
]
