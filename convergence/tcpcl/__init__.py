"""Sans-IO TCP convergence layer version 4 (RFC 9174).

:class:`Session` is the protocol state machine: bytes and time in, events and bytes out; no
sockets, tasks or clock reads. :class:`MessageReader` and :func:`encode_message` are the
codec underneath it, usable on their own (``python -m convergence decode`` uses them).

The trio adapter runs sessions over TCP and TLS: :func:`open_link` (active),
:class:`TcpclListener` (passive) and :func:`open_stream_link` (any trio stream) give
established :class:`TcpclLink`\\ s. Incoming transfers go segment by segment into a
:class:`TransferSink` (in memory by default; ``LinkConfig.sink_factory``), each segment
acknowledged once its sink took it, within a :class:`ReceiveBudget` shared by the links.
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
    SessionExtensionType,
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
from .link import (
    IncomingBundleTransfer,
    LinkConfig,
    LinkStatistics,
    TcpclLink,
    TransferHandle,
    TransferOutcome,
    TransferResult,
    TransferStatus,
)
from .link_errors import (
    EstablishmentError,
    EstablishmentTimeout,
    LinkClosedError,
    LinkConnectError,
    LinkError,
    NodeIdMismatchError,
    TlsError,
    TlsRequiredError,
    TransferTooLargeError,
)
from .listener import ListenerStatistics, TcpclListener, open_link, open_stream_link
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
from .sink import (
    BudgetStatistics,
    IncomingTransferStart,
    MemorySink,
    ReceiveBudget,
    SinkFactory,
    SinkRefusal,
    TransferSink,
)
from .state import SessionState
from .tls import (
    NodeIdAuthResult,
    TlsSettings,
    authenticate_node_id,
    load_tls_settings,
    peer_node_ids_from_certificate,
)
from .tlsstream import TlsStream

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
    "SessionExtensionType",
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
    # trio adapter
    "IncomingBundleTransfer",
    "LinkConfig",
    "LinkStatistics",
    "ListenerStatistics",
    "TcpclLink",
    "TcpclListener",
    "TransferHandle",
    "TransferOutcome",
    "TransferResult",
    "TransferStatus",
    "open_link",
    "open_stream_link",
    # where incoming transfers go
    "BudgetStatistics",
    "IncomingTransferStart",
    "MemorySink",
    "ReceiveBudget",
    "SinkFactory",
    "SinkRefusal",
    "TransferSink",
    # adapter errors
    "EstablishmentError",
    "EstablishmentTimeout",
    "LinkClosedError",
    "LinkConnectError",
    "LinkError",
    "NodeIdMismatchError",
    "TlsError",
    "TlsRequiredError",
    "TransferTooLargeError",
    # TLS
    "NodeIdAuthResult",
    "TlsSettings",
    "TlsStream",
    "authenticate_node_id",
    "load_tls_settings",
    "peer_node_ids_from_certificate",
]
